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
