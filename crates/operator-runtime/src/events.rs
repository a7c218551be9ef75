//! Publishing Kubernetes Events, the same way in both operators: notes cut to what the
//! API server accepts, and a failed publish only logged, since a lost Event must not fail
//! the reconcile that already did the work.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

/// The kind of an Event, as `kubectl get events` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// Publishes an Event about `object` (and `related`, when given) with `reason` and `note`,
/// the note cut to [`NOTE_MAX_BYTES`].
pub async fn publish(
    recorder: &Recorder,
    object: &ObjectReference,
    severity: Severity,
    reason: &str,
    note: &str,
    related: Option<ObjectReference>,
) {
    let event = Event {
        type_: match severity {
            Severity::Normal => EventType::Normal,
            Severity::Warning => EventType::Warning,
        },
        reason: reason.to_owned(),
        note: Some(self::note(note).to_owned()),
        action: "Reconcile".into(),
        secondary: related,
    };
    if let Err(error) = recorder.publish(&event, object).await {
        tracing::warn!(%reason, %error, "cannot publish Event");
    }
}

/// Longest Event note the API server accepts. The limit counts bytes, not characters, so a
/// note of 1,000 characters of non-ASCII text is refused whole.
pub const NOTE_MAX_BYTES: usize = 1024;

/// `note` cut to what the API server accepts, at a character boundary.
pub fn note(note: &str) -> &str {
    cut_to_bytes(note, NOTE_MAX_BYTES)
}

/// The longest prefix of `text` that fits in `budget` bytes and ends on a character
/// boundary, so the result stays valid UTF-8.
pub fn cut_to_bytes(text: &str, budget: usize) -> &str {
    if text.len() <= budget {
        return text;
    }
    let mut end = budget;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_fit_the_byte_limit_at_a_character_boundary() {
        // 1, 2, 3 and 4 bytes per character, and a mix that ends mid-character at the limit.
        let texts = [
            "a".repeat(2000),
            "é".repeat(1000),
            "€".repeat(1000),
            "🐘".repeat(1000),
            format!("a{}", "€".repeat(600)),
        ];
        for text in &texts {
            let cut = note(text);
            assert!(cut.len() <= NOTE_MAX_BYTES, "{} bytes", cut.len());
            assert!(text.starts_with(cut));
            // Nothing more would have fitted: the next character crosses the limit.
            let next = text[cut.len()..].chars().next().map_or(0, char::len_utf8);
            assert!(cut.len() + next > NOTE_MAX_BYTES, "{} bytes", cut.len());
        }
    }

    #[test]
    fn short_notes_are_kept_whole() {
        for text in ["", "Backup nightly succeeded", &"€".repeat(341)] {
            assert_eq!(note(text), text);
        }
    }
}
