//! Prometheus metrics: reconcile counts, errors by category, reconcile durations, the
//! number of Databases per phase, and whether this replica is the leader.
//!
//! Labels are low-cardinality on purpose: a result, an error category, a phase; never a
//! Database name. The phase gauge is computed from the controller's cache at scrape time,
//! so it is never stale and costs nothing between scrapes.

use std::collections::HashMap;
use std::sync::Arc;

use api::{Database, DatabasePhase};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts, Registry};
use runtime::{ReconcileError as _, ReconcileMetrics};

use crate::controller::CONTROLLER;
use crate::error::Error;

/// The cache of Databases the controller keeps.
pub type DatabaseStore = Store<DeserializeGuard<Database>>;

pub struct Metrics {
    registry: Registry,
    /// Reconciles by result, errors by category, the reconcile timer and the leader gauge.
    pub reconciles: Arc<ReconcileMetrics>,
}

impl Metrics {
    /// Registers every metric; the phase gauge reads `store` when one is given.
    pub fn new(store: Option<DatabaseStore>) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let reconciles = ReconcileMetrics::register(
            &registry,
            "database_operator",
            &[CONTROLLER],
            Error::CATEGORIES,
        )?;
        if let Some(store) = store {
            registry.register(Box::new(PhaseGauge::new(store)?))?;
        }
        Ok(Metrics {
            registry,
            reconciles: Arc::new(reconciles),
        })
    }

    /// All metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        runtime::metrics::render(&self.registry)
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
    use std::time::Duration;

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
        let invalid = Error::MissingMetadata {
            name: "x".into(),
            field: "uid",
        };
        let reconciles = &metrics.reconciles;
        reconciles.reconciled(
            CONTROLLER,
            Duration::from_millis(30),
            Some(invalid.category()),
        );
        reconciles.reconciled(CONTROLLER, Duration::from_millis(10), None);
        let text = metrics.render();
        let lines = [
            r#"database_operator_databases{phase="Ready"} 2"#,
            r#"database_operator_databases{phase="Pending"} 1"#,
            r#"database_operator_databases{phase="Failed"} 0"#,
            r#"database_operator_databases{phase="Provisioning"} 0"#,
            r#"database_operator_reconciliations_total{controller="database",result="error"} 1"#,
            r#"database_operator_reconciliations_total{controller="database",result="success"} 1"#,
            r#"database_operator_reconcile_errors_total{category="invalid_object"} 1"#,
            r#"database_operator_reconcile_errors_total{category="apply"} 0"#,
            r#"database_operator_reconcile_duration_seconds_count{controller="database"} 2"#,
            "database_operator_leader 0",
        ];
        for line in lines {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        for phase in DatabasePhase::ALL {
            assert!(text.contains(&format!("phase=\"{}\"", phase.as_str())));
        }
        metrics.reconciles.set_leader(true);
        assert!(metrics.render().contains("database_operator_leader 1"));
    }
}
