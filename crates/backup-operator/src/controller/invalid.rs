//! Objects this operator's types cannot read: a Backup or Restore that the API server accepted
//! but that does not decode (an older or looser CRD schema, or a field edited to a wrong type
//! where the schema does not check it).
//!
//! The controllers watch `DeserializeGuard`s, so such an object arrives as an error instead
//! of failing the watch, which would stall every other object of its kind. Its reconcile says
//! once, in a Warning Event on the object, why it is ignored, then waits for it to change:
//! retrying cannot fix it, and its status cannot be trusted enough to be written.

use kube::Resource;
use kube::core::DeserializeGuard;

use super::context::Context;
use super::error::Error;

/// The Event reason, the same as the database-operator's for its Databases.
pub const REASON: &str = "InvalidObject";

/// The longest decode error kept. An Event's note holds [`api::events::NOTE_MAX_BYTES`], and
/// names the object too (up to 253 bytes) and says what to do; the error gets what is left.
/// Cut here rather than by the Event, which keeps the end of a note and would lose the name.
const MAX_DECODE_ERROR: usize = 600;

/// The object inside `guard`, or, when it did not decode, an [`Error::InvalidObject`] after a
/// Warning Event about it.
pub async fn readable<'a, K>(guard: &'a DeserializeGuard<K>, ctx: &Context) -> Result<&'a K, Error>
where
    K: Resource<DynamicType = ()>,
{
    match &guard.0 {
        Ok(object) => Ok(object),
        Err(invalid) => {
            let name = invalid.metadata.name.as_deref().unwrap_or_default();
            let error = invalid_object(&K::kind(&()), name, &invalid.error);
            ctx.event(guard, true, REASON, error.to_string()).await;
            Err(error)
        }
    }
}

/// The error for object `name` of `kind` that failed to decode with `decode_error` (pure),
/// short enough to be an Event's note whole.
pub fn invalid_object(kind: &str, name: &str, decode_error: &str) -> Error {
    Error::InvalidObject {
        kind: kind.to_owned(),
        name: name.to_owned(),
        message: shorten(decode_error.trim(), MAX_DECODE_ERROR),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut. serde names
/// the offending value first, so the beginning is what to keep.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    format!("{}...", api::events::cut_to_bytes(text, max - "...".len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_the_object_and_the_decode_error_and_says_what_to_do() {
        let error = invalid_object(
            "Backup",
            "nightly",
            "invalid type: string \"seven\", expected u32",
        );
        let note = error.to_string();
        assert!(note.contains("Backup nightly"), "{note}");
        assert!(note.contains(r#"string "seven", expected u32"#), "{note}");
        assert!(note.contains("kubectl"), "{note}");
        assert_eq!(error.category(), "invalid_object");
        assert!(error.is_permanent());
    }

    #[tokio::test]
    async fn the_controller_waits_for_a_change_instead_of_retrying() {
        use kube::runtime::controller::Action;
        use std::sync::Arc;

        let (ctx, _server) = crate::controller::fixtures::scenario(Vec::new());
        let guard: DeserializeGuard<api::Backup> = serde_json::from_value(serde_json::json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod"}, "spec": {"databaseRef": 5}
        }))
        .unwrap();
        let error = invalid_object("Backup", "nightly", "invalid type: integer `5`");
        let action = crate::controller::error_policy(Arc::new(guard), &error, ctx.clone());
        assert_eq!(action, Action::await_change());
        let errors = &ctx.metrics.reconcile_errors;
        assert_eq!(errors.with_label_values(&["invalid_object"]).get(), 1);
    }

    #[test]
    fn a_long_decode_error_is_cut_so_the_note_fits_an_event() {
        let longest_name = "n".repeat(253);
        let decode_error = format!("unknown variant `{}`", "é".repeat(5000));
        let note = invalid_object("Restore", &longest_name, &decode_error).to_string();
        assert!(
            note.len() <= api::events::NOTE_MAX_BYTES,
            "{} bytes",
            note.len()
        );
        assert!(note.contains(&longest_name));
        assert!(note.contains("unknown variant `éé"), "{note}");
        assert!(note.contains("..."), "{note}");
    }
}
