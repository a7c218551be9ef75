//! The one-line result of `prepare-recovery`, as the controller reads it back from the
//! recovery Job's termination message into the Restore's status.

use serde::{Deserialize, Serialize};

/// What a data directory was prepared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoverySummary {
    /// Run id of the base backup unpacked.
    pub base_backup: String,
    /// The timeline recovery follows.
    pub timeline: u32,
    /// RFC 3339; absent when recovering to the end of the archive.
    #[serde(default)]
    pub target_time: Option<String>,
    /// WAL files fetched.
    #[serde(default)]
    pub wal_files: u64,
    /// Every record before this LSN is in the fetched files.
    pub restorable_to: String,
    #[serde(default)]
    pub partial_tail: Option<String>,
}

/// Tagged by `result`, as `prepare-recovery` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result")]
pub enum RecoveryOutcome {
    Succeeded(RecoverySummary),
    Failed { error: String },
}

impl RecoveryOutcome {
    pub fn parse(message: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_prepare_recovery_writes() {
        let line = r#"{"result":"Succeeded","baseBackup":"20261206T070000Z","timeline":2,"targetTime":"2026-12-06T07:30:00Z","walFiles":7,"restorableTo":"0/5000000","partialTail":null}"#;
        let RecoveryOutcome::Succeeded(summary) = RecoveryOutcome::parse(line).unwrap() else {
            panic!("not a success");
        };
        assert_eq!(summary.base_backup, "20261206T070000Z");
        assert_eq!(summary.timeline, 2);
        assert_eq!(summary.target_time.as_deref(), Some("2026-12-06T07:30:00Z"));
        assert_eq!(summary.restorable_to, "0/5000000");
        let failed =
            r#"{"result":"Failed","error":"WAL segment 000000010000000000000004 is corrupt"}"#;
        assert_eq!(
            RecoveryOutcome::parse(failed).unwrap(),
            RecoveryOutcome::Failed {
                error: "WAL segment 000000010000000000000004 is corrupt".into()
            }
        );
    }
}
