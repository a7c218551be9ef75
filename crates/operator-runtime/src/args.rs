//! The flags every operator has; flatten [`RuntimeArgs`] into the operator's own arguments.
//! Each has an environment fallback for the Deployment.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

use crate::election::LeaderArgs;
use crate::resync;

#[derive(Clone, Debug, Args)]
pub struct RuntimeArgs {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: SocketAddr,
    /// Namespace to watch; all namespaces when unset or empty.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds after which an object no event touched is looked at again (a safety net for a
    /// lost watch event; such a reconcile writes nothing when nothing changed). Jittered by
    /// ±10 % per object.
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = resync::DEFAULT_SECONDS,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub resync_seconds: u64,
    /// Reconciles each controller runs at once. Each holds what it read and its requests in
    /// flight; more do not converge faster once the API server is the bottleneck
    /// (docs/performance.md).
    #[arg(long, env = "CONCURRENT_RECONCILES", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrent_reconciles: u16,
    /// Requests to the API server this process has in flight at most, 0 for no cap. Watches
    /// count only until their answer starts. A cap smooths the burst of writes when many
    /// objects appear at once, at the price of latency on a quiet API server.
    #[arg(long, env = "MAX_REQUESTS_IN_FLIGHT", default_value_t = 0)]
    pub max_requests_in_flight: usize,
    #[command(flatten)]
    pub leader: LeaderArgs,
}

impl RuntimeArgs {
    /// The namespace to watch. An empty WATCH_NAMESPACE (a common Helm default) means all.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| !ns.is_empty())
    }

    pub fn resync(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.resync_seconds)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        runtime: RuntimeArgs,
    }

    #[test]
    fn an_empty_namespace_means_all_and_resync_has_a_floor() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("operator").chain(args.iter().copied()))
        };
        let cli = parse(&["--namespace", ""]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.runtime.namespace(), None);
        let cli = parse(&["--namespace", "prod"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.runtime.namespace(), Some("prod"));
        assert!(parse(&["--resync-seconds", "5"]).is_err());
    }
}
