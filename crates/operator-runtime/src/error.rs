//! What the runtime needs to know about an operator's reconcile errors, and the one error
//! both operators share: an object that does not decode.

use std::time::Duration;

use kube::Resource;
use kube::core::DeserializeGuard;

use crate::error_backoff;
use crate::events;

/// An error a reconcile ends with. Each operator has one enum, one variant per pipeline
/// step; this says how the runtime counts it and when it tries again.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    /// Every value [`ReconcileError::category`] returns, so the error counter exports each
    /// from the start and `rate()` sees the first failure.
    const CATEGORIES: &'static [&'static str];

    /// The label of the error counter: stable and low-cardinality, never from the message.
    fn category(&self) -> &'static str;

    /// Whether trying again can help. When not (an invalid object, a rejected spec), the
    /// controller waits for the object to change instead.
    fn is_retryable(&self) -> bool;

    /// The wait before the first retry; it doubles with each further failure of the same
    /// object, up to five minutes. Errors someone has to fix by hand (credentials, a bucket)
    /// start slower than API hiccups.
    fn first_retry(&self) -> Duration {
        error_backoff::BASE
    }
}

/// The Event reason of an object that does not decode, the same for every kind.
pub const INVALID_OBJECT: &str = "InvalidObject";

/// The longest decode error kept. An Event's note holds [`events::NOTE_MAX_BYTES`], and names
/// the object too (up to 253 bytes) and says what to do; the error gets what is left. Cut here
/// rather than by the Event, which would lose the end of the note.
const MAX_DECODE_ERROR: usize = 600;

/// An object the API server accepted that the operator's types cannot read: an older or
/// looser CRD schema, or a field edited to a wrong type where the schema does not check it.
/// Retrying cannot fix it, and its status cannot be trusted enough to be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} {name} does not match the CRD schema ({message}); it is ignored until it \
     changes: correct it with kubectl edit, or delete and recreate it"
)]
pub struct InvalidObject {
    pub kind: String,
    pub name: String,
    /// The decode error, cut to fit an Event's note beside the rest.
    pub message: String,
}

impl InvalidObject {
    /// Object `name` of `kind` failed to decode with `decode_error` (pure).
    pub fn new(kind: &str, name: &str, decode_error: &str) -> InvalidObject {
        InvalidObject {
            kind: kind.to_owned(),
            name: name.to_owned(),
            message: shorten(decode_error.trim(), MAX_DECODE_ERROR),
        }
    }
}

/// The object in `guard` (watches decode through kube's `DeserializeGuard`, so one object
/// that does not decode cannot stall the watch of its whole kind), or, when it did not
/// decode, an [`InvalidObject`] error after a Warning Event on the object that says why it
/// is ignored.
pub async fn decoded<'a, K>(
    guard: &'a DeserializeGuard<K>,
    recorder: &kube::runtime::events::Recorder,
) -> Result<&'a K, InvalidObject>
where
    K: Resource<DynamicType = ()>,
{
    match &guard.0 {
        Ok(object) => Ok(object),
        Err(invalid) => {
            let name = invalid.metadata.name.as_deref().unwrap_or_default();
            let error = InvalidObject::new(&K::kind(&()), name, &invalid.error);
            let object = guard.object_ref(&());
            let note = error.to_string();
            let warning = events::Severity::Warning;
            events::publish(recorder, &object, warning, INVALID_OBJECT, &note, None).await;
            Err(error)
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut. serde names
/// the offending value first, so the beginning is what to keep.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    format!("{}...", events::cut_to_bytes(text, max - "...".len()))
}

pub use error_text::describe;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_the_object_and_the_decode_error_and_says_what_to_do() {
        let note = InvalidObject::new(
            "Backup",
            "nightly",
            "invalid type: string \"seven\", expected u32",
        )
        .to_string();
        assert!(note.contains("Backup nightly"), "{note}");
        assert!(note.contains(r#"string "seven", expected u32"#), "{note}");
        assert!(note.contains("kubectl"), "{note}");
    }

    #[test]
    fn a_long_decode_error_is_cut_so_the_note_fits_an_event() {
        let longest_name = "n".repeat(253);
        let decode_error = format!("unknown variant `{}`", "é".repeat(5000));
        let note = InvalidObject::new("Restore", &longest_name, &decode_error).to_string();
        assert!(note.len() <= events::NOTE_MAX_BYTES, "{} bytes", note.len());
        assert!(note.contains(&longest_name));
        assert!(note.contains("unknown variant `éé"), "{note}");
        assert!(note.contains("..."), "{note}");
    }
}
