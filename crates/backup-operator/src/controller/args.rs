//! Flags of the `run` subcommand: the runtime's (metrics address, namespace, log format,
//! resync, leader election) and the Jobs'. Each has an environment fallback for the
//! Deployment.

use clap::Args;
use runtime::RuntimeArgs;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Image of the backup, restore and clean-up Jobs; it must contain this binary and the
    /// PostgreSQL client programs.
    #[arg(long, env = "BACKUP_IMAGE", default_value = "pgop/backup-operator:dev")]
    pub backup_image: String,
    /// Longest a Job may run before Kubernetes stops it; also how long a Pod that cannot
    /// start (a missing Secret) takes to be reported as failed.
    #[arg(long, env = "JOB_DEADLINE_SECONDS", default_value_t = 6 * 3600,
          value_parser = clap::value_parser!(i64).range(60..))]
    pub job_deadline_seconds: i64,
}
