//! Errors of a reconcile, one variant per pipeline step, each with a stable category that
//! the `backup_operator_reconcile_errors_total` metric uses as its label. Problems with the
//! user's objects (a missing Database, a failed run) are not errors: they go into status
//! and Events. What is here is what a retry can fix, and one permanent error: an object that
//! does not decode (`runtime::InvalidObject`), which has no readable status to report in.

use std::time::Duration;

use kube::runtime::finalizer;

use super::artifacts::ArtifactsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidObject(#[from] runtime::InvalidObject),

    /// An object the reconcile depends on does not decode; retried, since its watch wakes the
    /// reconcile when someone corrects it.
    #[error("{0}; waiting for it to be corrected")]
    Unreadable(runtime::InvalidObject),

    #[error("could not read {what} {name} from the API server; it is retried")]
    Gather {
        what: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },

    #[error("could not {verb} {what} {name}; it is retried")]
    Apply {
        verb: &'static str,
        what: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },

    #[error("could not write the status of {name}; it is retried")]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },

    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),

    #[error("removing the artifacts of Backup {name} failed ({reason}); it is retried")]
    Cleanup { name: String, reason: String },

    #[error("the finalizer of Backup {name} could not be handled")]
    Finalizer {
        name: String,
        #[source]
        source: Box<finalizer::Error<Error>>,
    },
}

impl runtime::ReconcileError for Error {
    const CATEGORIES: &'static [&'static str] = &[
        "invalid_object",
        "gather",
        "apply",
        "status",
        "storage",
        "cleanup",
        "finalizer",
    ];

    /// Label value for metrics: never derived from the message, so it stays stable.
    fn category(&self) -> &'static str {
        match self {
            Error::InvalidObject(_) => "invalid_object",
            Error::Gather { .. } | Error::Unreadable(_) => "gather",
            Error::Apply { .. } => "apply",
            Error::Status { .. } => "status",
            Error::Artifacts(_) => "storage",
            Error::Cleanup { .. } => "cleanup",
            Error::Finalizer { source, .. } => match source.as_ref() {
                finalizer::Error::ApplyFailed(inner) | finalizer::Error::CleanupFailed(inner) => {
                    inner.category()
                }
                _ => "finalizer",
            },
        }
    }

    /// Only a change to the object can help an object that does not decode.
    fn is_retryable(&self) -> bool {
        !matches!(self, Error::InvalidObject(_))
    }

    /// API hiccups pass quickly; storage and clean-up Jobs usually need someone to fix
    /// credentials or a bucket, so their retries start slower.
    fn first_retry(&self) -> Duration {
        match self.category() {
            "storage" => Duration::from_secs(60),
            "cleanup" => Duration::from_secs(120),
            _ => Duration::from_secs(10),
        }
    }
}

/// Shorthand for the gather step.
pub fn gather(what: &'static str, name: &str) -> impl FnOnce(kube::Error) -> Error {
    let name = name.to_string();
    move |source| Error::Gather { what, name, source }
}

/// Shorthand for the apply step.
pub fn apply(
    verb: &'static str,
    what: &'static str,
    name: &str,
) -> impl FnOnce(kube::Error) -> Error {
    let name = name.to_string();
    move |source| Error::Apply {
        verb,
        what,
        name,
        source,
    }
}

pub fn status(name: &str) -> impl FnOnce(kube::Error) -> Error {
    let name = name.to_string();
    move |source| Error::Status { name, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::ReconcileError as _;

    fn api_error() -> kube::Error {
        kube::Error::LinesCodecMaxLineLengthExceeded
    }

    #[test]
    fn every_category_is_listed() {
        let finalizer = |source| Error::Finalizer {
            name: "nightly".into(),
            source: Box::new(source),
        };
        let cleanup = || Error::Cleanup {
            name: "nightly".into(),
            reason: "the Job failed".into(),
        };
        let errors = [
            Error::InvalidObject(runtime::InvalidObject::new(
                "Backup",
                "nightly",
                "invalid type",
            )),
            gather("Database", "shop")(api_error()),
            apply("create", "Job", "nightly-1")(api_error()),
            status("nightly")(api_error()),
            Error::Artifacts(ArtifactsError::Storage {
                location: "s3://backups".into(),
                reason: "denied".into(),
            }),
            cleanup(),
            finalizer(finalizer::Error::AddFinalizer(api_error())),
            finalizer(finalizer::Error::CleanupFailed(cleanup())),
        ];
        for error in &errors {
            assert!(Error::CATEGORIES.contains(&error.category()), "{error}");
        }
        let mut seen: Vec<_> = errors.iter().map(Error::category).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), Error::CATEGORIES.len(), "{seen:?}");
    }
}
