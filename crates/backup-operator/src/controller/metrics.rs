//! Prometheus metrics of the controller, named `backup_operator_<noun>_<unit>`.
//!
//! Labels stay low-cardinality, with one deliberate exception:
//! `backup_operator_last_success_timestamp_seconds` has one series per Backup, so staleness
//! is one PromQL line (`time() - backup_operator_last_success_timestamp_seconds > 86400`).
//! It is filled from the Backups' `status.lastBackupTime` at scrape time, so it survives an
//! operator restart and a deleted Backup's series disappears with it.
//! `backup_operator_last_verified_timestamp_seconds` is its twin for restore drills, with a
//! series only for Backups with `spec.verification`.
//! `backup_operator_wal_archive_age_seconds` and `backup_operator_archive_healthy` have a
//! series per physical Backup, from `status.archive.lastArchivedTime` and the
//! `ArchiveHealthy` condition, filled the same way.

use std::sync::{Arc, Mutex};

use api::Backup;
use kube::ResourceExt as _;
use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use runtime::{ReconcileError as _, ReconcileMetrics};

use super::error::Error;
use super::time::from_time;

/// The `controller` label values of the reconcile metrics, one per controller.
pub const CONTROLLERS: [&str; 3] = ["backup", "restore", "initial-restore"];

/// The `result` label values of `backup_operator_runs_total` and `_restores_total`.
pub const RESULTS: [&str; 2] = ["succeeded", "failed"];

pub struct Metrics {
    registry: Registry,
    /// Backup runs by result, one of [`RESULTS`].
    pub runs: IntCounterVec,
    pub run_duration: Histogram,
    pub bytes_written: IntCounter,
    /// Restores by result, one of [`RESULTS`].
    pub restores: IntCounterVec,
    /// Restore drills by result, one of [`RESULTS`].
    pub verifications: IntCounterVec,
    /// Reconciles by controller and result, errors by category, the reconcile timer and the
    /// leader gauge.
    pub reconciles: Arc<ReconcileMetrics>,
    last_success: GaugeVec,
    last_verified: GaugeVec,
    archive_age: GaugeVec,
    archive_healthy: GaugeVec,
    /// Scrapes reset and refill `last_success`; one at a time.
    render: Mutex<()>,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let runs = IntCounterVec::new(
            Opts::new(
                "backup_operator_runs_total",
                "Backup runs finished, by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        // From seconds to hours: small databases dump in seconds, large ones take hours.
        let buckets = prometheus::exponential_buckets(1.0, 3.0, 11).expect("valid buckets");
        let run_duration = Histogram::with_opts(
            HistogramOpts::new(
                "backup_operator_run_duration_seconds",
                "Duration of backup Jobs",
            )
            .buckets(buckets),
        )
        .expect("valid metric");
        let bytes_written = IntCounter::new(
            "backup_operator_bytes_written_total",
            "Bytes of verified artifacts written by backup runs",
        )
        .expect("valid metric");
        let restores = IntCounterVec::new(
            Opts::new(
                "backup_operator_restores_total",
                "Restores finished, by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        let last_success = GaugeVec::new(
            Opts::new(
                "backup_operator_last_success_timestamp_seconds",
                "Unix time of the newest verified artifact of each Backup",
            ),
            &["namespace", "backup"],
        )
        .expect("valid metric");
        let verifications = IntCounterVec::new(
            Opts::new(
                "backup_operator_verifications_total",
                "Restore drills finished, by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        let last_verified = GaugeVec::new(
            Opts::new(
                "backup_operator_last_verified_timestamp_seconds",
                "Unix time a restore drill of each Backup with spec.verification last passed; \
                 the Backup's creation time until the first passes",
            ),
            &["namespace", "backup"],
        )
        .expect("valid metric");
        let archive_age = GaugeVec::new(
            Opts::new(
                "backup_operator_wal_archive_age_seconds",
                "Seconds since the newest complete WAL segment of each physical Backup was \
                 archived, as its status last recorded; since the Backup's creation before \
                 the first",
            ),
            &["namespace", "backup"],
        )
        .expect("valid metric");
        let archive_healthy = GaugeVec::new(
            Opts::new(
                "backup_operator_archive_healthy",
                "1 while the WAL archiving of each physical Backup is healthy (its \
                 ArchiveHealthy condition is True), 0 otherwise",
            ),
            &["namespace", "backup"],
        )
        .expect("valid metric");
        // Every result's series exists from the start, at 0, so increase() and rate() see the
        // first failure instead of a series that appears at 1.
        for result in RESULTS {
            runs.with_label_values(&[result]);
            restores.with_label_values(&[result]);
            verifications.with_label_values(&[result]);
        }
        for collector in [
            Box::new(runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(run_duration.clone()),
            Box::new(bytes_written.clone()),
            Box::new(restores.clone()),
            Box::new(last_success.clone()),
            Box::new(verifications.clone()),
            Box::new(last_verified.clone()),
            Box::new(archive_age.clone()),
            Box::new(archive_healthy.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        let reconciles = ReconcileMetrics::register(
            &registry,
            "backup_operator",
            &CONTROLLERS,
            Error::CATEGORIES,
        )
        .expect("metrics registered once");
        Metrics {
            registry,
            runs,
            run_duration,
            bytes_written,
            restores,
            verifications,
            reconciles: Arc::new(reconciles),
            last_success,
            last_verified,
            archive_age,
            archive_healthy,
            render: Mutex::new(()),
        }
    }

    /// The text exposition, with one `last_success` series per Backup that has an artifact.
    pub fn render<'a>(&self, backups: impl IntoIterator<Item = &'a Backup>) -> String {
        let _one_at_a_time = self.render.lock().unwrap_or_else(|e| e.into_inner());
        self.last_success.reset();
        self.last_verified.reset();
        self.archive_age.reset();
        self.archive_healthy.reset();
        let now = chrono::Utc::now();
        for backup in backups {
            if let Some((age, healthy)) = archiving(backup, now) {
                let namespace = backup.namespace().unwrap_or_default();
                let labels = [namespace.as_str(), &backup.name_any()];
                self.archive_age.with_label_values(&labels).set(age as f64);
                self.archive_healthy
                    .with_label_values(&labels)
                    .set(f64::from(u8::from(healthy)));
            }
            if let Some(at) = last_verified(backup) {
                let namespace = backup.namespace().unwrap_or_default();
                self.last_verified
                    .with_label_values(&[namespace.as_str(), backup.name_any().as_str()])
                    .set(at as f64);
            }
            let last = backup
                .status
                .as_ref()
                .and_then(|s| s.last_backup_time.as_ref());
            if let Some(last) = last {
                let namespace = backup.namespace().unwrap_or_default();
                self.last_success
                    .with_label_values(&[namespace.as_str(), backup.name_any().as_str()])
                    .set(from_time(last).timestamp() as f64);
            }
        }
        runtime::metrics::render(&self.registry)
    }
}

/// When a drill of `backup` last passed; its creation until one has, so "no verified
/// backup for 48 hours" also fires for a Backup whose drills never pass. `None` without
/// `spec.verification`.
fn last_verified(backup: &Backup) -> Option<i64> {
    backup.spec.verification.as_ref()?;
    let passed = backup
        .status
        .as_ref()
        .and_then(|s| s.last_verified_time.as_ref());
    passed
        .or(backup.metadata.creation_timestamp.as_ref())
        .map(|at| from_time(at).timestamp())
}

/// For a physical Backup: the age of its newest archived segment (from its creation before
/// the first) and whether `ArchiveHealthy` is True.
fn archiving(backup: &Backup, now: chrono::DateTime<chrono::Utc>) -> Option<(i64, bool)> {
    if backup.spec.method != api::BackupMethod::Physical {
        return None;
    }
    let status = backup.status.as_ref();
    let last = status
        .and_then(|s| s.archive.as_ref())
        .and_then(|a| a.last_archived_time.as_ref())
        .or(backup.metadata.creation_timestamp.as_ref())?;
    let healthy = status
        .is_some_and(|s| api::conditions::is_true(&s.conditions, api::conditions::ARCHIVE_HEALTHY));
    Some(((now - from_time(last)).num_seconds().max(0), healthy))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_is_exported_from_the_start() {
        let text = Metrics::new().render(std::iter::empty());
        for line in [
            r#"backup_operator_runs_total{result="failed"} 0"#,
            r#"backup_operator_runs_total{result="succeeded"} 0"#,
            r#"backup_operator_restores_total{result="failed"} 0"#,
            r#"backup_operator_restores_total{result="succeeded"} 0"#,
            r#"backup_operator_verifications_total{result="failed"} 0"#,
            r#"backup_operator_verifications_total{result="succeeded"} 0"#,
            "backup_operator_leader 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn every_error_category_is_exported_from_the_start() {
        let text = Metrics::new().render(&[]);
        for category in Error::CATEGORIES {
            let line =
                format!(r#"backup_operator_reconcile_errors_total{{category="{category}"}} 0"#);
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn last_success_has_one_series_per_backup_with_an_artifact() {
        let metrics = Metrics::new();
        let backup = |name: &str, last: Option<&str>| {
            let mut status = serde_json::json!({});
            if let Some(last) = last {
                status = serde_json::json!({"lastBackupTime": last});
            }
            serde_json::from_value::<Backup>(serde_json::json!({
                "apiVersion": "database.example.com/v1", "kind": "Backup",
                "metadata": {"name": name, "namespace": "prod"},
                "spec": {"databaseRef": {"name": "shop"}},
                "status": status
            }))
            .unwrap()
        };
        let text = metrics.render(&[
            backup("nightly", Some("2026-01-02T02:00:00Z")),
            backup("fresh", None),
        ]);
        assert!(text.contains(
            "backup_operator_last_success_timestamp_seconds{backup=\"nightly\",namespace=\"prod\"} 1767319200"
        ), "{text}");
        assert!(!text.contains("backup=\"fresh\""));
        // A deleted Backup's series goes with it.
        let text = metrics.render(std::iter::empty());
        assert!(!text.contains("backup=\"nightly\""));
    }

    #[test]
    fn archiving_has_a_series_per_physical_backup_only() {
        let metrics = Metrics::new();
        let backup = |name: &str, method: &str, status: serde_json::Value| {
            serde_json::from_value::<Backup>(serde_json::json!({
                "apiVersion": "database.example.com/v1", "kind": "Backup",
                "metadata": {"name": name, "namespace": "prod", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"databaseRef": {"name": "shop"}, "method": method},
                "status": status
            }))
            .unwrap()
        };
        let recent = (chrono::Utc::now() - chrono::TimeDelta::seconds(120)).to_rfc3339();
        let text = metrics.render(&[
            backup(
                "pitr",
                "physical",
                serde_json::json!({
                "archive": {"lastArchivedTime": recent},
                "conditions": [{"type": "ArchiveHealthy", "status": "True", "reason": "Streaming",
                    "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
            ),
            backup("dumps", "logical", serde_json::json!({})),
        ]);
        let age = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "backup_operator_wal_archive_age_seconds{backup=\"pitr\",namespace=\"prod\"} ",
                )
            })
            .unwrap_or_else(|| panic!("no age series in {text}"));
        let age: f64 = age.parse().unwrap();
        assert!((119.0..=180.0).contains(&age), "{age}");
        assert!(
            text.contains("backup_operator_archive_healthy{backup=\"pitr\",namespace=\"prod\"} 1"),
            "{text}"
        );
        assert!(!text.contains("backup=\"dumps\""), "{text}");
        // The Backup deleted, its series go.
        let text = metrics.render(std::iter::empty());
        assert!(!text.contains("backup=\"pitr\""), "{text}");
    }

    #[test]
    fn last_verified_has_a_series_per_backup_with_verification() {
        let metrics = Metrics::new();
        let backup = |name: &str, verification: bool, passed: Option<&str>| {
            let mut spec = serde_json::json!({"databaseRef": {"name": "shop"}});
            if verification {
                spec["verification"] = serde_json::json!({});
            }
            let status = match passed {
                Some(at) => serde_json::json!({"lastVerifiedTime": at}),
                None => serde_json::json!({}),
            };
            serde_json::from_value::<Backup>(serde_json::json!({
                "apiVersion": "database.example.com/v1", "kind": "Backup",
                "metadata": {"name": name, "namespace": "prod", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": spec, "status": status
            }))
            .unwrap()
        };
        let text = metrics.render(&[
            backup("drilled", true, Some("2026-01-02T02:00:00Z")),
            backup("never", true, None),
            backup("plain", false, Some("2026-01-02T02:00:00Z")),
        ]);
        let series = |name: &str, value: &str| {
            format!(
                "backup_operator_last_verified_timestamp_seconds{{backup=\"{name}\",namespace=\"prod\"}} {value}"
            )
        };
        assert!(text.contains(&series("drilled", "1767319200")), "{text}");
        assert!(
            text.contains(&series("never", "1767225600")),
            "creation time: {text}"
        );
        assert!(
            !text.contains("last_verified_timestamp_seconds{backup=\"plain\""),
            "{text}"
        );
    }
}
