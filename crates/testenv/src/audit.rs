//! The API server's audit log, read back to count who wrote what.
//!
//! Counting on the server's side sees every write an operator makes, including those its own
//! metrics would miss (retries inside the client, writes from a forgotten code path).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;

const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// One request as the audit log recorded it (`audit.k8s.io/v1` Event at Metadata level, the
/// fields tests use).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: String,
    pub verb: String,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub user: AuditUser,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub object_ref: Option<AuditObjectRef>,
    #[serde(default)]
    pub response_status: Option<AuditResponseStatus>,
    pub request_received_timestamp: DateTime<Utc>,
    pub stage_timestamp: DateTime<Utc>,
}

/// Who made the request.
#[derive(Clone, Debug, Deserialize)]
pub struct AuditUser {
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The object a request was about.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditObjectRef {
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub api_group: Option<String>,
    pub api_version: Option<String>,
    pub subresource: Option<String>,
}

/// The answer's status; only `code` is recorded at Metadata level for successes.
#[derive(Clone, Debug, Deserialize)]
pub struct AuditResponseStatus {
    pub code: Option<i32>,
}

impl AuditEvent {
    /// The HTTP status the API server answered with.
    pub fn code(&self) -> Option<i32> {
        self.response_status.as_ref()?.code
    }

    /// The namespace of the object written; `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        self.object_ref.as_ref()?.namespace.as_deref()
    }

    /// `resource` or `resource/subresource`, e.g. `statefulsets` or `databases/status`.
    pub fn resource(&self) -> String {
        let Some(object) = &self.object_ref else {
            return String::new();
        };
        let resource = object.resource.as_deref().unwrap_or_default();
        match &object.subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        }
    }
}

/// One line per event, for assertion messages:
/// `2026-11-25T10:00:00.123Z patch statefulsets ns/name -> 200`.
impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let object = self.object_ref.clone().unwrap_or_default();
        let target = match (&object.namespace, &object.name) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            (None, Some(name)) => name.clone(),
            (Some(ns), None) => format!("{ns}/*"),
            (None, None) => String::new(),
        };
        write!(
            f,
            "{} {} {} {target} -> {}",
            self.request_received_timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.verb,
            self.resource(),
            self.code()
                .map_or_else(|| "?".to_string(), |c| c.to_string())
        )
    }
}

/// Completed write requests by `username` received at or after `since`, oldest first.
///
/// Reads the log at `path` and the backups the API server rotated it into: it starts a new
/// file every 100 MB (the default `--audit-log-maxsize`), keeping the old one beside it as
/// `audit-<time>.log`, and a window of time may span the two.
pub(crate) fn writes(path: &Path, username: &str, since: DateTime<Utc>) -> Result<Vec<AuditEvent>> {
    let mut events = Vec::new();
    for file in log_files(path, since)? {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            // Rotated away, or pruned, between listing and reading.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let found = parse_writes(&text, username, since)
            .with_context(|| format!("parsing {}", file.display()))?;
        events.extend(found);
    }
    events.sort_by_key(|e| e.request_received_timestamp);
    Ok(events)
}

/// `path` and its rotated backups (`<stem>-<time>.<extension>` in the same directory) last
/// written at or after `since`: an older backup holds nothing from that time on.
fn log_files(path: &Path, since: DateTime<Utc>) -> Result<Vec<PathBuf>> {
    let (Some(dir), Some(stem), Some(extension)) = (
        path.parent(),
        path.file_stem().and_then(|s| s.to_str()),
        path.extension().and_then(|e| e.to_str()),
    ) else {
        return Ok(vec![path.to_path_buf()]);
    };
    let (prefix, suffix) = (format!("{stem}-"), format!(".{extension}"));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(&prefix) && name.ends_with(&suffix)) {
            continue;
        }
        let modified = entry.metadata().and_then(|m| m.modified());
        if modified.map_or(true, |m| DateTime::<Utc>::from(m) >= since) {
            files.push(entry.path());
        }
    }
    files.push(path.to_path_buf());
    Ok(files)
}

fn parse_writes(text: &str, username: &str, since: DateTime<Utc>) -> Result<Vec<AuditEvent>> {
    // Matching the raw text first skips parsing the bulk of the log (the other users).
    let needle = format!("\"username\":{}", serde_json::to_string(username)?);
    let mut events = Vec::new();
    for line in text.split_inclusive('\n') {
        // The API server may be half-way through writing the last line.
        if !line.ends_with('\n') || !line.contains(&needle) {
            continue;
        }
        let event: AuditEvent =
            serde_json::from_str(line).with_context(|| format!("audit line {line}"))?;
        if event.stage == "ResponseComplete"
            && event.user.username == username
            && WRITE_VERBS.contains(&event.verb.as_str())
            && event.request_received_timestamp >= since
        {
            events.push(event);
        }
    }
    events.sort_by_key(|e| e.request_received_timestamp);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPERATOR: &str = "system:serviceaccount:database-operator-system:database-operator";

    fn line(user: &str, verb: &str, stage: &str, at: &str) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"{stage}","requestURI":"/apis/apps/v1/namespaces/ns/statefulsets/db","verb":"{verb}","user":{{"username":"{user}","groups":["system:serviceaccounts"]}},"userAgent":"database-operator","objectRef":{{"resource":"statefulsets","namespace":"ns","name":"db","apiGroup":"apps","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"{at}","stageTimestamp":"{at}"}}"#
        ) + "\n"
    }

    #[test]
    fn keeps_only_completed_writes_of_the_user_since_the_time() {
        let since: DateTime<Utc> = "2026-01-01T00:00:01Z".parse().unwrap();
        let text = [
            line(
                OPERATOR,
                "patch",
                "ResponseComplete",
                "2026-01-01T00:00:00.500000Z",
            ),
            line(
                OPERATOR,
                "patch",
                "ResponseComplete",
                "2026-01-01T00:00:02.000000Z",
            ),
            line(
                OPERATOR,
                "get",
                "ResponseComplete",
                "2026-01-01T00:00:02.000000Z",
            ),
            line(
                OPERATOR,
                "create",
                "ResponseStarted",
                "2026-01-01T00:00:02.000000Z",
            ),
            line(
                "system:kube-scheduler",
                "create",
                "ResponseComplete",
                "2026-01-01T00:00:02.000000Z",
            ),
        ]
        .concat();
        let events = parse_writes(&text, OPERATOR, since).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].code(), Some(200));
        assert_eq!(events[0].resource(), "statefulsets");
        assert!(
            events[0]
                .to_string()
                .ends_with("patch statefulsets ns/db -> 200"),
            "{}",
            events[0]
        );
    }

    #[test]
    fn reads_the_rotated_logs_written_to_since_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let at = |t: &str| line(OPERATOR, "patch", "ResponseComplete", t);
        let since: DateTime<Utc> = "2026-01-01T00:00:01Z".parse().unwrap();
        let rotated = dir.path().join("audit-2026-01-01T00-00-03.000.log");
        std::fs::write(&rotated, at("2026-01-01T00:00:02Z")).unwrap();
        let stale = dir.path().join("audit-2025-12-31T00-00-00.000.log");
        std::fs::write(&stale, at("2026-01-01T00:00:05Z")).unwrap();
        let last_written =
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_139_200); // 2025-12-31
        std::fs::File::options()
            .append(true)
            .open(&stale)
            .unwrap()
            .set_modified(last_written)
            .unwrap();
        let current = dir.path().join("audit.log");
        std::fs::write(&current, at("2026-01-01T00:00:04Z")).unwrap();
        std::fs::write(dir.path().join("audit-policy.yaml"), "not a log").unwrap();

        let events = writes(&current, OPERATOR, since).unwrap();
        let times: Vec<_> = events
            .iter()
            .map(|e| e.request_received_timestamp.to_rfc3339())
            .collect();
        // The stale backup's event is a made-up one no real log could hold: it shows the
        // file was skipped unread.
        assert_eq!(
            times,
            ["2026-01-01T00:00:02+00:00", "2026-01-01T00:00:04+00:00"]
        );
    }

    #[test]
    fn ignores_a_half_written_last_line() {
        let mut text = line(
            OPERATOR,
            "patch",
            "ResponseComplete",
            "2026-01-01T00:00:02Z",
        );
        text.push_str(r#"{"kind":"Event","user":{"username":"system:serviceaccount:database-operator-system:database-operator"#);
        let events = parse_writes(&text, OPERATOR, DateTime::<Utc>::MIN_UTC).unwrap();
        assert_eq!(events.len(), 1);
    }
}
