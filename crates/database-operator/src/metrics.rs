//! Prometheus metrics: reconcile counts, errors by category, reconcile durations, the
//! number of Databases per phase, whether this replica is the leader; and, per instance,
//! its role and replication lag, and per Database its failovers.
//!
//! Operator-wide labels are low-cardinality: a result, an error category, a phase. The
//! replication series name the Database and instance, as a user alerting on one needs; a
//! Database has at most 16 instances, so they grow with the Databases and no faster. All of
//! them except the reconcile counters are computed from the controller's cache at scrape
//! time, so they are never stale, vanish with their Database, and cost nothing between
//! scrapes.

use std::collections::HashMap;
use std::sync::Arc;

use api::{Database, DatabasePhase};
use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
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
            registry.register(Box::new(PhaseGauge::new(store.clone())?))?;
            registry.register(Box::new(ReplicationGauges::new(store)?))?;
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

/// `database_operator_instance_role{namespace,database,instance,role}` (1 for the role the
/// instance has), `database_operator_instance_lag_bytes{...}` for standbys, and
/// `database_operator_failovers_total{namespace,database}`, from the Databases' status.
struct ReplicationGauges {
    store: DatabaseStore,
    role: IntGaugeVec,
    lag: IntGaugeVec,
    failovers: IntCounterVec,
}

impl ReplicationGauges {
    fn new(store: DatabaseStore) -> prometheus::Result<ReplicationGauges> {
        let instance = ["namespace", "database", "instance"];
        Ok(ReplicationGauges {
            store,
            role: IntGaugeVec::new(
                Opts::new(
                    "database_operator_instance_role",
                    "1 for each PostgreSQL instance's role (primary or replica)",
                ),
                &["namespace", "database", "instance", "role"],
            )?,
            lag: IntGaugeVec::new(
                Opts::new(
                    "database_operator_instance_lag_bytes",
                    "WAL a standby has not replayed yet, as its primary last reported",
                ),
                &instance,
            )?,
            failovers: IntCounterVec::new(
                Opts::new(
                    "database_operator_failovers_total",
                    "Failovers (unplanned promotions after the primary was lost) per Database",
                ),
                &["namespace", "database"],
            )?,
        })
    }

    fn fill(&self, db: &Database) {
        let (namespace, name) = (db.namespace().unwrap_or_default(), db.name_any());
        let Some(status) = &db.status else { return };
        for instance in &status.instances {
            let labels = [namespace.as_str(), name.as_str(), instance.name.as_str()];
            if let Some(role) = &instance.role {
                let with_role = [labels[0], labels[1], labels[2], role.as_str()];
                self.role.with_label_values(&with_role).set(1);
            }
            if let Some(lag) = instance.lag_bytes {
                self.lag.with_label_values(&labels).set(lag);
            }
        }
        if status.failovers > 0 {
            self.failovers
                .with_label_values(&[namespace.as_str(), name.as_str()])
                .inc_by(status.failovers.unsigned_abs());
        }
    }
}

impl Collector for ReplicationGauges {
    fn desc(&self) -> Vec<&Desc> {
        [self.role.desc(), self.lag.desc(), self.failovers.desc()].concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.role.reset();
        self.lag.reset();
        self.failovers.reset();
        let state = self.store.state();
        for db in state.iter().filter_map(|g| g.0.as_ref().ok()) {
            self.fill(db);
        }
        [
            self.role.collect(),
            self.lag.collect(),
            self.failovers.collect(),
        ]
        .concat()
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
        // Per instance and per Database, from the status.
        let (reader, mut writer) = store::<DeserializeGuard<Database>>();
        let mut db = with_phase("shop", Some(DatabasePhase::Ready));
        let status = db.status.as_mut().unwrap();
        status.failovers = 2;
        status.instances = vec![
            api::InstanceStatus {
                name: "shop-0".into(),
                role: Some("primary".into()),
                ..Default::default()
            },
            api::InstanceStatus {
                name: "shop-1".into(),
                role: Some("replica".into()),
                lag_bytes: Some(4096),
                ..Default::default()
            },
        ];
        writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(db))));
        let text = Metrics::new(Some(reader)).unwrap().render();
        for line in [
            r#"database_operator_instance_role{database="shop",instance="shop-0",namespace="prod",role="primary"} 1"#,
            r#"database_operator_instance_role{database="shop",instance="shop-1",namespace="prod",role="replica"} 1"#,
            r#"database_operator_instance_lag_bytes{database="shop",instance="shop-1",namespace="prod"} 4096"#,
            r#"database_operator_failovers_total{database="shop",namespace="prod"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains(r#"instance_lag_bytes{database="shop",instance="shop-0""#));
        metrics.reconciles.set_leader(true);
        assert!(metrics.render().contains("database_operator_leader 1"));
    }
}
