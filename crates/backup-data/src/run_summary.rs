//! A finished run as the Job reports it to the controller ([`RunSummary`]). The contract
//! crate cannot know the data path's reports, so the conversions live on this side.

use crate::dump::DumpReport;
use crate::restore::RestoreReport;
use crate::storage::Manifest;
use backup_job::report::{CompressionReport, RunSummary};
use chrono::SecondsFormat;

impl From<&DumpReport> for RunSummary {
    fn from(report: &DumpReport) -> Self {
        Self {
            pruned: Some(report.pruned.clone()),
            warnings: report.warnings.clone(),
            ..of_manifest(&report.manifest, &report.location)
        }
    }
}

impl From<&RestoreReport> for RunSummary {
    fn from(report: &RestoreReport) -> Self {
        of_manifest(&report.manifest, &report.location)
    }
}

fn of_manifest(manifest: &Manifest, location: &str) -> RunSummary {
    RunSummary {
        location: location.to_owned(),
        size_bytes: manifest.size_bytes,
        sha256: manifest.sha256.clone(),
        run_id: manifest.run_id.clone(),
        time: manifest.time.to_rfc3339_opts(SecondsFormat::Secs, true),
        server_version: manifest.server_version.clone(),
        compression: Some(Box::new(CompressionReport {
            setting: manifest.compression.to_string(),
            note: manifest.compression_note.clone(),
        })),
        pruned: None,
        pruned_omitted: None,
        warnings: Vec::new(),
    }
}

impl From<&crate::drill::DrillReport> for backup_job::verify_report::VerifySummary {
    fn from(report: &crate::drill::DrillReport) -> Self {
        Self {
            run_id: report.manifest.run_id.clone(),
            location: report.location.clone(),
            tables_checked: report.tables_checked as u64,
            rows_checked: report.rows_checked,
            row_counts_compared: report.row_counts_compared,
            query_checked: report.query_checked,
            duration_seconds: report.duration.as_secs(),
        }
    }
}
