//! Errors of a reconcile, one enum per pipeline step, each with a stable category that the
//! error counter uses as its label (never a `Debug` string: that would explode cardinality).

use thiserror::Error;

/// The owned objects, in the order they are applied. A failure names the stage it stopped
/// at, and the Database's phase says so (Provisioning, Configuring, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Secret,
    Services,
    /// The ServiceAccount, Role and RoleBinding of the PostgreSQL Pods.
    InstanceAccount,
    StatefulSet,
    /// Replacing a Pod with one of the newest spec.
    Rollout,
    Volumes,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Secret => "Secret",
            Stage::Services => "Service",
            Stage::InstanceAccount => "ServiceAccount",
            Stage::StatefulSet => "StatefulSet",
            Stage::Rollout => "Pod",
            Stage::Volumes => "PersistentVolumeClaim",
        }
    }
}

/// Reading what the Database depends on failed.
#[derive(Debug, Error)]
pub enum GatherError {
    #[error("cannot read {kind} {name}: {source}")]
    Read {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Undecodable(#[from] runtime::InvalidObject),
}

/// Applying an owned object failed.
#[derive(Debug, Error)]
pub enum ApplyError {
    #[error("cannot apply {} {name}: {source}", stage.as_str())]
    Apply {
        stage: Stage,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot serialise {} {name}: {source}", stage.as_str())]
    Serialize {
        stage: Stage,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ApplyError {
    pub fn stage(&self) -> Stage {
        match self {
            ApplyError::Apply { stage, .. } | ApplyError::Serialize { stage, .. } => *stage,
        }
    }

    /// The API server refused the object itself (400/422): retrying the same object cannot
    /// succeed, only a change to the Database can.
    pub fn is_rejected(&self) -> bool {
        match self {
            ApplyError::Apply {
                source: kube::Error::Api(status),
                ..
            } => status.code == 400 || status.code == 422,
            ApplyError::Apply { .. } => false,
            ApplyError::Serialize { .. } => true,
        }
    }

    /// A message for the Database's status: what failed and what to do. The credentials
    /// Secret's error is reduced to its HTTP reason, so the API server's message, which may
    /// quote field values, never carries the password into a condition.
    pub fn user_message(&self) -> String {
        let stage = self.stage();
        let name = match self {
            ApplyError::Apply { name, .. } | ApplyError::Serialize { name, .. } => name,
        };
        let cause = match self {
            ApplyError::Apply {
                source: kube::Error::Api(status),
                ..
            } if stage == Stage::Secret => format!("{} ({})", status.reason, status.code),
            ApplyError::Apply {
                source: kube::Error::Api(status),
                ..
            } => status.message.clone(),
            ApplyError::Apply { source, .. } => source.to_string(),
            ApplyError::Serialize { source, .. } => source.to_string(),
        };
        let next = match (self.is_rejected(), stage) {
            (true, Stage::Volumes) => {
                "the claim's StorageClass must allow volume expansion and the claim must be bound; fix that, then grow the claim by hand or change the Database to retry"
            }
            (true, _) => "the API server rejected it; correct the Database spec",
            (false, _) => {
                "retrying with backoff; check the operator's RBAC and the API server if this persists"
            }
        };
        let cause = truncate(&cause);
        format!("applying {} {name} failed: {cause}; {next}", stage.as_str())
    }
}

/// API server messages can hold whole object diffs; a condition needs the gist.
fn truncate(message: &str) -> String {
    const MAX: usize = 400;
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &message[..cut]),
        None => message.to_string(),
    }
}

/// Writing the Database's status failed.
#[derive(Debug, Error)]
pub enum StatusError {
    #[error("cannot patch the status of Database {name}: {source}")]
    Patch {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Everything a reconcile can fail with.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    InvalidObject(#[from] runtime::InvalidObject),
    #[error(
        "Database {name} has no metadata.{field}, which objects from the API server always have"
    )]
    MissingMetadata { name: String, field: &'static str },
    #[error(transparent)]
    Gather(#[from] GatherError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Status(#[from] StatusError),
}

impl runtime::ReconcileError for Error {
    const CATEGORIES: &'static [&'static str] = &[
        "invalid_object",
        "gather",
        "apply_rejected",
        "apply",
        "status",
    ];

    /// Stable, low-cardinality label for `database_operator_reconcile_errors_total`.
    fn category(&self) -> &'static str {
        match self {
            Error::InvalidObject(_) | Error::MissingMetadata { .. } => "invalid_object",
            Error::Gather(_) => "gather",
            Error::Apply(e) if e.is_rejected() => "apply_rejected",
            Error::Apply(_) => "apply",
            Error::Status(_) => "status",
        }
    }

    /// An invalid or rejected Database waits for a change; the others back off and retry.
    fn is_retryable(&self) -> bool {
        match self {
            Error::InvalidObject(_) | Error::MissingMetadata { .. } => false,
            Error::Apply(e) => !e.is_rejected(),
            Error::Gather(_) | Error::Status(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::ReconcileError as _;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, reason)
                .with_code(code)
                .boxed(),
        )
    }

    fn apply(stage: Stage, code: u16) -> ApplyError {
        ApplyError::Apply {
            stage,
            name: "shop".into(),
            source: api_error(code, "Invalid", "data[password]: value hunter2 is invalid"),
        }
    }

    #[test]
    fn categories_and_permanence() {
        let rows: [(Error, &str, bool); 5] = [
            (
                Error::MissingMetadata {
                    name: "shop".into(),
                    field: "namespace",
                },
                "invalid_object",
                true,
            ),
            (
                Error::Apply(apply(Stage::StatefulSet, 422)),
                "apply_rejected",
                true,
            ),
            (Error::Apply(apply(Stage::StatefulSet, 500)), "apply", false),
            (
                Error::Gather(GatherError::Read {
                    kind: "Backup".into(),
                    name: "seed".into(),
                    source: api_error(403, "Forbidden", "no"),
                }),
                "gather",
                false,
            ),
            (
                Error::Status(StatusError::Patch {
                    name: "shop".into(),
                    source: api_error(409, "Conflict", "no"),
                }),
                "status",
                false,
            ),
        ];
        for (error, category, permanent) in rows {
            assert_eq!(error.category(), category, "{error}");
            assert!(Error::CATEGORIES.contains(&category));
            assert_eq!(error.is_retryable(), !permanent, "{error}");
        }
    }

    #[test]
    fn secret_errors_never_quote_the_api_server() {
        let message = apply(Stage::Secret, 422).user_message();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("Invalid (422)"), "{message}");
        let message = apply(Stage::StatefulSet, 422).user_message();
        assert!(message.contains("correct the Database spec"), "{message}");
    }
}
