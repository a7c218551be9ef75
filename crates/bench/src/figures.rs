//! What one run of the scale part measured (`benches/control_plane/scale.rs` fills these in),
//! kept apart from the cluster so that the report is tested without one.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use crate::readings;

pub struct Scale {
    pub count: usize,
    /// Which binaries ran: `this`, the baseline's short hash or `controller-runtime`.
    pub binaries: String,
    /// Creating every object, as the benchmark's client saw it.
    pub created_in: Duration,
    /// From the first create until every Database is past Pending with its StatefulSet and
    /// every Backup has a status; `None` when that did not happen within the timeout.
    pub converged_in: Option<Duration>,
    /// From the first create until the operators' last write (audit log) before none of them
    /// reconciled for a while: when they were done, which may be after convergence.
    pub settled_in: Option<Duration>,
    /// What was reached by then: Databases past Pending, StatefulSets, Backups with status.
    pub reached: (usize, usize, usize),
    pub idle: Duration,
    /// Databases and Backups by phase at the end of the idle window.
    pub phases: BTreeMap<String, usize>,
    /// One per process that ran.
    pub operators: Vec<OperatorFigures>,
    /// CPU time of the kube-apiserver process from the first create until the idle window
    /// opened, in clock ticks; `None` when it does not run on this host. Other clients of the
    /// shared cluster count too (see the conditions printed with the table).
    pub api_server_cpu: Option<u64>,
    /// Deleting the namespace and everything in it, until it was gone.
    pub deleted_in: Option<Duration>,
}

/// What one operator process did.
pub struct OperatorFigures {
    /// The process's name: `database-operator`, `backup-operator`,
    /// `controller-runtime-operator`.
    pub program: &'static str,
    /// From the first create until the idle window opened.
    pub busy: Window,
    pub idle: Window,
    pub peak_rss: u64,
    pub rss_at_end: u64,
}

/// What an operator did in a window of time.
#[derive(Clone, Default)]
pub struct Window {
    pub reconciles: u64,
    /// Completed writes in the namespace, from the API server's audit log.
    pub audited_writes: usize,
    /// Those of them the API server refused (429 from API Priority and Fairness, 409, ...);
    /// the client retries them, so each is also counted again.
    pub refused_writes: usize,
    /// When the last of them was received.
    pub last_write: Option<DateTime<Utc>>,
    /// Every request its client logged, by kind.
    pub requests: BTreeMap<String, u64>,
    /// CPU time the operator used, user and system, in clock ticks.
    pub cpu_ticks: u64,
}

impl Window {
    pub fn reads(&self) -> u64 {
        self.count(readings::is_read)
    }

    pub fn writes(&self) -> u64 {
        self.count(|kind| !readings::is_read(kind))
    }

    fn count(&self, filter: fn(&str) -> bool) -> u64 {
        self.requests
            .iter()
            .filter(|(kind, _)| filter(kind))
            .map(|(_, n)| n)
            .sum()
    }

    /// The writes the API server accepted.
    pub fn accepted_writes(&self) -> u64 {
        (self.audited_writes - self.refused_writes) as u64
    }

    /// This window and `other`'s added up: the figures of several processes together.
    pub fn add(&mut self, other: &Window) {
        self.reconciles += other.reconciles;
        self.audited_writes += other.audited_writes;
        self.refused_writes += other.refused_writes;
        self.last_write = self.last_write.max(other.last_write);
        for (kind, n) in &other.requests {
            *self.requests.entry(kind.clone()).or_insert(0) += n;
        }
        self.cpu_ticks += other.cpu_ticks;
    }
}
