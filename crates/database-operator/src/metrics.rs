//! Prometheus metrics: reconcile counts, errors by category, reconcile durations, the
//! number of Databases per phase, and whether this replica is the leader.
//!
//! Labels are low-cardinality on purpose: a result, an error category, a phase; never a
//! Database name. The phase gauge is computed from the controller's cache at scrape time,
//! so it is never stale and costs nothing between scrapes.

use std::collections::HashMap;
use std::time::Duration;

use api::{Database, DatabasePhase};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::error::Error;

/// The cache of Databases the controller keeps.
pub type DatabaseStore = Store<DeserializeGuard<Database>>;

pub struct Metrics {
    registry: Registry,
    reconciliations: IntCounterVec,
    errors: IntCounterVec,
    duration: Histogram,
    leader: IntGauge,
}

impl Metrics {
    /// Registers every metric; the phase gauge reads `store` when one is given.
    pub fn new(store: Option<DatabaseStore>) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let reconciliations = IntCounterVec::new(
            Opts::new(
                "database_operator_reconciliations_total",
                "Reconciles of Databases, by result",
            ),
            &["result"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "database_operator_reconcile_errors_total",
                "Failed reconciles of Databases, by error category",
            ),
            &["category"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "database_operator_reconcile_duration_seconds",
                "Time one reconcile of a Database takes",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let leader = IntGauge::new(
            "database_operator_leader",
            "1 while this replica reconciles (holds the leader Lease, or leader election is \
             off), 0 while it waits to take over",
        )?;
        // Every series exists from the start, so rates work from the first failure on.
        for result in ["success", "error"] {
            reconciliations.with_label_values(&[result]);
        }
        for category in Error::CATEGORIES {
            errors.with_label_values(&[category]);
        }
        registry.register(Box::new(reconciliations.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        if let Some(store) = store {
            registry.register(Box::new(PhaseGauge::new(store)?))?;
        }
        Ok(Metrics {
            registry,
            reconciliations,
            errors,
            duration,
            leader,
        })
    }

    /// Records whether this replica is the one that reconciles.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records one reconcile that took `elapsed` and ended with `error`, if any.
    pub fn reconciled(&self, elapsed: Duration, error: Option<&Error>) {
        self.duration.observe(elapsed.as_secs_f64());
        let result = if error.is_some() { "error" } else { "success" };
        self.reconciliations.with_label_values(&[result]).inc();
        if let Some(error) = error {
            self.errors.with_label_values(&[error.category()]).inc();
        }
    }

    /// All metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// `database_operator_databases{phase}`, counted from the cache when scraped.
struct PhaseGauge {
    store: DatabaseStore,
    gauge: IntGaugeVec,
}

impl PhaseGauge {
    fn new(store: DatabaseStore) -> prometheus::Result<PhaseGauge> {
        let gauge = IntGaugeVec::new(
            Opts::new(
                "database_operator_databases",
                "Databases by phase (Databases that do not match the schema are not counted)",
            ),
            &["phase"],
        )?;
        Ok(PhaseGauge { store, gauge })
    }
}

/// Number of Databases per phase, with every phase present.
pub fn count_phases<'a>(
    databases: impl IntoIterator<Item = &'a Database>,
) -> HashMap<DatabasePhase, i64> {
    let mut counts: HashMap<DatabasePhase, i64> =
        DatabasePhase::ALL.iter().map(|p| (*p, 0)).collect();
    for db in databases {
        *counts.entry(db.phase()).or_default() += 1;
    }
    counts
}

impl Collector for PhaseGauge {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let state = self.store.state();
        let counts = count_phases(state.iter().filter_map(|g| g.0.as_ref().ok()));
        for (phase, count) in counts {
            self.gauge.with_label_values(&[phase.as_str()]).set(count);
        }
        self.gauge.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher;

    fn with_phase(name: &str, phase: Option<DatabasePhase>) -> Database {
        let mut db = database(name);
        db.status = phase.map(|phase| api::DatabaseStatus {
            phase: Some(phase),
            ..Default::default()
        });
        db
    }

    #[test]
    fn every_metric_and_phase_is_exported() {
        let (reader, mut writer) = store::<DeserializeGuard<Database>>();
        for db in [
            with_phase("a", Some(DatabasePhase::Ready)),
            with_phase("b", Some(DatabasePhase::Ready)),
            with_phase("c", None),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(db))));
        }
        let metrics = Metrics::new(Some(reader)).unwrap_or_else(|e| panic!("{e}"));
        metrics.reconciled(
            Duration::from_millis(30),
            Some(&Error::MissingMetadata {
                name: "x".into(),
                field: "uid",
            }),
        );
        metrics.reconciled(Duration::from_millis(10), None);
        let text = metrics.render();
        let lines = [
            r#"database_operator_databases{phase="Ready"} 2"#,
            r#"database_operator_databases{phase="Pending"} 1"#,
            r#"database_operator_databases{phase="Failed"} 0"#,
            r#"database_operator_databases{phase="Provisioning"} 0"#,
            r#"database_operator_reconciliations_total{result="error"} 1"#,
            r#"database_operator_reconciliations_total{result="success"} 1"#,
            r#"database_operator_reconcile_errors_total{category="invalid_object"} 1"#,
            r#"database_operator_reconcile_errors_total{category="apply"} 0"#,
            "database_operator_reconcile_duration_seconds_count 2",
            "database_operator_leader 0",
        ];
        for line in lines {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        for phase in DatabasePhase::ALL {
            assert!(text.contains(&format!("phase=\"{}\"", phase.as_str())));
        }
        metrics.set_leader(true);
        assert!(metrics.render().contains("database_operator_leader 1"));
    }
}
