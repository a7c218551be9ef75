//! The metrics every controller has, named `<operator>_<noun>_<unit>`: reconciles by
//! controller and result, the reconcile timer, errors by category, and whether this replica
//! leads. Each operator registers them in its own registry beside its own metrics.
//!
//! Labels stay low-cardinality: a controller name, a result, an error category; never an
//! object's name.

use std::time::Duration;

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The `result` label values of the reconcile counter.
pub const RESULTS: [&str; 2] = ["success", "error"];

pub struct ReconcileMetrics {
    reconciliations: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    leader: IntGauge,
}

impl ReconcileMetrics {
    /// Registers the metrics as `<prefix>_...` in `registry`, with a series at 0 for every
    /// one of `controllers` and `categories` from the start, so `rate()` and `increase()` see
    /// the first reconcile and the first failure.
    pub fn register(
        registry: &Registry,
        prefix: &str,
        controllers: &[&str],
        categories: &[&str],
    ) -> prometheus::Result<ReconcileMetrics> {
        let reconciliations = IntCounterVec::new(
            Opts::new(
                format!("{prefix}_reconciliations_total"),
                "Reconciles, by controller and result",
            ),
            &["controller", "result"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                format!("{prefix}_reconcile_errors_total"),
                "Failed reconciles, by error category",
            ),
            &["category"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{prefix}_reconcile_duration_seconds"),
                "Time one reconcile takes, by controller",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
            ]),
            &["controller"],
        )?;
        let leader = IntGauge::new(
            format!("{prefix}_leader"),
            "1 while this replica reconciles (holds the leader Lease, or leader election is \
             off), 0 while it waits to take over",
        )?;
        for controller in controllers {
            for result in RESULTS {
                reconciliations.with_label_values(&[controller, result]);
            }
            duration.with_label_values(&[controller]);
        }
        for category in categories {
            errors.with_label_values(&[category]);
        }
        registry.register(Box::new(reconciliations.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(ReconcileMetrics {
            reconciliations,
            errors,
            duration,
            leader,
        })
    }

    /// Records one reconcile of `controller` that took `elapsed` and failed with the error
    /// of `category`, if any.
    pub fn reconciled(&self, controller: &str, elapsed: Duration, category: Option<&str>) {
        self.duration
            .with_label_values(&[controller])
            .observe(elapsed.as_secs_f64());
        let result = if category.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciliations
            .with_label_values(&[controller, result])
            .inc();
        if let Some(category) = category {
            self.errors.with_label_values(&[category]).inc();
        }
    }

    /// Failures of `category` so far (for tests and the error policy's log).
    pub fn errors(&self, category: &str) -> u64 {
        self.errors.with_label_values(&[category]).get()
    }

    /// Records whether this replica is the one that reconciles.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}

/// Everything in `registry` in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        tracing::warn!(%error, "cannot encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_from_the_start_and_counts() {
        let registry = Registry::new();
        let metrics =
            ReconcileMetrics::register(&registry, "op", &["backup", "restore"], &["gather"])
                .unwrap_or_else(|e| panic!("{e}"));
        let text = render(&registry);
        for line in [
            r#"op_reconciliations_total{controller="backup",result="error"} 0"#,
            r#"op_reconciliations_total{controller="restore",result="success"} 0"#,
            r#"op_reconcile_errors_total{category="gather"} 0"#,
            r#"op_reconcile_duration_seconds_count{controller="restore"} 0"#,
            "op_leader 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        metrics.reconciled("backup", Duration::from_millis(20), Some("gather"));
        metrics.reconciled("backup", Duration::from_millis(5), None);
        metrics.set_leader(true);
        let text = render(&registry);
        for line in [
            r#"op_reconciliations_total{controller="backup",result="error"} 1"#,
            r#"op_reconciliations_total{controller="backup",result="success"} 1"#,
            r#"op_reconcile_errors_total{category="gather"} 1"#,
            r#"op_reconcile_duration_seconds_count{controller="backup"} 2"#,
            "op_leader 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert_eq!(metrics.errors("gather"), 1);
    }
}
