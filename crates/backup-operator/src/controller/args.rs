//! Flags of the `run` subcommand; each has an environment fallback for the Deployment.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Watch only this namespace; all namespaces when unset or empty.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Image of the backup, restore and clean-up Jobs; it must contain this binary and the
    /// PostgreSQL client programs.
    #[arg(long, env = "BACKUP_IMAGE", default_value = "pgop/backup-operator:dev")]
    pub backup_image: String,
    /// Longest a Job may run before Kubernetes stops it; also how long a Pod that cannot
    /// start (a missing Secret) takes to be reported as failed.
    #[arg(long, env = "JOB_DEADLINE_SECONDS", default_value_t = 6 * 3600,
          value_parser = clap::value_parser!(i64).range(60..))]
    pub job_deadline_seconds: i64,
    /// Seconds after which an object no event touched is looked at again (a safety net for a
    /// lost watch event; such a reconcile writes nothing when nothing changed). Jittered by
    /// ±10 % per object.
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = leader::resync::DEFAULT_SECONDS,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub resync_seconds: u64,
    #[command(flatten)]
    pub leader: leader::LeaderArgs,
}

impl RunArgs {
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| !ns.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}
