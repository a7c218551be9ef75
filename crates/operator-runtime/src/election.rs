//! Leader election on a `coordination.k8s.io/v1` Lease, so an operator can run as several
//! replicas of which exactly one reconciles.
//!
//! A replica that does not hold the Lease keeps serving its health and metrics endpoints
//! and looks at the Lease every two seconds. The holder renews it every five seconds. When
//! the holder cannot renew for ten seconds, or finds the Lease taken, [`Election::run`]
//! returns [`Error::Lost`] and the operator exits: the kubelet restarts it as a follower, and
//! no two replicas ever reconcile at once. Followers take over fifteen seconds after the
//! Lease last changed, or at their next look when the holder gave it up on its way out
//! (SIGTERM).
//!
//! [`decision`] is the pure part (tested without a cluster); [`lease`] does the reading and
//! writing.

pub mod decision;
pub mod lease;

use std::fmt;
use std::future::Future;

use kube::Client;

pub use decision::Timing;
pub use lease::{Elector, Leadership};

/// The flags of leader election, the same in both operators; flatten them into the
/// operator's own arguments.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LeaderArgs {
    /// Run as one of several replicas: only the holder of the leader Lease reconciles, the
    /// others stand by to take over (Ready, with the `*_leader` gauge at 0). Needs the Lease's namespace.
    #[arg(long, env = "LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the leader Lease; defaults to the operator's name.
    #[arg(long, env = "LEASE_NAME")]
    pub lease_name: Option<String>,
    /// Namespace of the leader Lease, normally the operator's own (the Deployment passes its
    /// Pod's namespace as POD_NAMESPACE). Required with --leader-election.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
}

impl LeaderArgs {
    /// What leader election needs, or `None` when it is off. `operator` is the default
    /// Lease name.
    pub fn settings(&self, operator: &str) -> Result<Option<Settings>, Error> {
        if !self.leader_election {
            return Ok(None);
        }
        let namespace = non_empty(self.lease_namespace.as_deref()).ok_or(Error::NoNamespace)?;
        Ok(Some(Settings {
            name: non_empty(self.lease_name.as_deref())
                .unwrap_or(operator)
                .to_owned(),
            namespace: namespace.to_owned(),
            identity: identity(
                std::env::var("POD_NAME").ok().as_deref(),
                &hostname(),
                std::process::id(),
            ),
            timing: Timing::default(),
        }))
    }
}

/// Which Lease, who we are, and how fast it all goes.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: String,
    pub namespace: String,
    /// Unique per replica: the Pod's name, or hostname and process id outside a Pod.
    pub identity: String,
    pub timing: Timing,
}

impl Settings {
    /// `namespace/name`, for logs and errors.
    pub fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn error(&self, verb: &'static str, source: kube::Error) -> Error {
        Error::Api {
            verb,
            lease: self.lease(),
            source,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--leader-election needs the namespace of its Lease: set --lease-namespace or \
         POD_NAMESPACE (the Deployment passes its Pod's namespace from the downward API)"
    )]
    NoNamespace,
    #[error("cannot {verb} the leader Lease {lease}: {source}{}", hint(source))]
    Api {
        verb: &'static str,
        lease: String,
        source: kube::Error,
    },
    #[error(
        "lost the leader Lease {lease}: {reason}; exiting, so that no two replicas reconcile \
         at once (the Pod restarts as a follower)"
    )]
    Lost { lease: String, reason: Lost },
}

impl Error {
    /// Whether retrying cannot help: the operator lacks the rights, or the namespace is
    /// missing (a create answered 404).
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Api {
                verb,
                source: kube::Error::Api(status),
                ..
            } => {
                status.is_forbidden()
                    || status.code == 401
                    || (status.is_not_found() && *verb == "create")
            }
            Error::Api { .. } => false,
            Error::NoNamespace | Error::Lost { .. } => true,
        }
    }
}

/// What a user should do about an API error, if there is anything.
fn hint(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) if status.is_forbidden() => {
            "; grant get, create and update on leases.coordination.k8s.io in that namespace \
             (deploy/<operator>/leader-election-rbac.yaml, or the chart with \
             leaderElection.enabled=true)"
        }
        kube::Error::Api(status) if status.is_not_found() => {
            "; does the namespace exist? (--lease-namespace, POD_NAMESPACE)"
        }
        _ => "",
    }
}

/// Why the leader stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error("another replica, {0}, holds it now")]
    TakenBy(String),
    #[error("it could not be renewed in time{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    NotRenewed { last_error: Option<String> },
}

/// Whether this process must win the Lease before it works.
pub enum Election {
    /// Leader election is off: this process is the only replica and works at once.
    Off,
    On(Box<Elector>),
}

impl Election {
    pub fn new(client: &Client, settings: Option<Settings>) -> Election {
        match settings {
            None => Election::Off,
            Some(settings) => Election::On(Box::new(Elector::new(client.clone(), settings))),
        }
    }

    /// Runs `work` once this process leads, calling `on_leading` just before.
    ///
    /// `work` must end on its own after shutdown (graceful shutdown of the controllers);
    /// the Lease is renewed meanwhile and released after it ends, so a follower takes over
    /// at its next look. When `shutdown` resolves before this process leads, returns without working.
    /// Returns [`Error::Lost`] when the Lease is lost; `work` is then dropped mid-flight and
    /// the caller must exit.
    pub async fn run<W>(
        self,
        shutdown: impl Future<Output = ()>,
        on_leading: impl FnOnce(),
        work: W,
    ) -> Result<(), Error>
    where
        W: Future<Output = ()>,
    {
        let elector = match self {
            Election::Off => {
                on_leading();
                work.await;
                return Ok(());
            }
            Election::On(elector) => elector,
        };
        let mut leadership = tokio::select! {
            acquired = elector.acquire() => acquired?,
            () = shutdown => {
                tracing::info!("stopped before becoming the leader");
                return Ok(());
            }
        };
        on_leading();
        tokio::select! {
            () = work => leadership.release().await,
            reason = leadership.keep() => Err(Error::Lost {
                lease: leadership.settings().lease(),
                reason,
            }),
        }
    }
}

impl fmt::Debug for Election {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Election::Off => f.write_str("Election::Off"),
            Election::On(_) => f.write_str("Election::On"),
        }
    }
}

/// The Pod's name when it is known; otherwise hostname and process id, which tell two
/// processes on one machine apart.
pub fn identity(pod_name: Option<&str>, hostname: &str, pid: u32) -> String {
    match non_empty(pod_name) {
        Some(pod) => pod.to_owned(),
        None => format!("{hostname}-{pid}"),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        leader: LeaderArgs,
    }

    fn parse(args: &[&str]) -> LeaderArgs {
        let args = std::iter::once("operator").chain(args.iter().copied());
        Cli::try_parse_from(args)
            .unwrap_or_else(|e| panic!("{e}"))
            .leader
    }

    #[test]
    fn off_unless_asked_for() {
        let args = parse(&["--lease-namespace", "ops"]);
        assert!(matches!(args.settings("database-operator"), Ok(None)));
    }

    #[test]
    fn the_lease_is_named_after_the_operator_unless_told_otherwise() {
        let args = parse(&["--leader-election", "--lease-namespace", "ops"]);
        let settings = args.settings("database-operator").ok().flatten();
        let settings = settings.unwrap_or_else(|| panic!("leader election is on"));
        assert_eq!(settings.lease(), "ops/database-operator");
        assert_eq!(settings.timing, Timing::default());

        let args = parse(&[
            "--leader-election",
            "--lease-namespace",
            "ops",
            "--lease-name",
            "pg",
        ]);
        let settings = args.settings("database-operator").ok().flatten();
        assert_eq!(settings.map(|s| s.lease()).as_deref(), Some("ops/pg"));
    }

    #[test]
    fn leader_election_without_a_namespace_says_how_to_set_one() {
        let mut args = parse(&["--leader-election"]);
        // POD_NAMESPACE may be set where the tests run; the flag must be explicit here.
        args.lease_namespace = Some(" ".into());
        let error = match args.settings("backup-operator") {
            Err(e) => e.to_string(),
            Ok(s) => panic!("accepted {s:?}"),
        };
        assert!(
            error.contains("--lease-namespace or POD_NAMESPACE"),
            "{error}"
        );
    }

    #[test]
    fn identity_is_the_pod_name_or_host_and_pid() {
        assert_eq!(identity(Some("op-7d9f-abc"), "node1", 42), "op-7d9f-abc");
        assert_eq!(identity(Some(""), "node1", 42), "node1-42");
        assert_eq!(identity(None, "node1", 42), "node1-42");
    }

    #[test]
    fn a_forbidden_lease_is_permanent_and_says_which_rules_are_missing() {
        let status = kube::core::Status::failure("leases is forbidden", "Forbidden").with_code(403);
        let error = Error::Api {
            verb: "get",
            lease: "ops/database-operator".into(),
            source: kube::Error::Api(Box::new(status)),
        };
        assert!(error.is_permanent());
        assert!(
            error.to_string().contains("leader-election-rbac.yaml"),
            "{error}"
        );
    }
}
