//! The command line, and the connection it names.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::failure::Failure;

#[derive(Parser, Debug)]
#[command(
    name = "kubectl pg",
    bin_name = "kubectl pg",
    version,
    about = "Day-2 commands for PostgreSQL Databases run by the database-operator and backup-operator"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Namespace; the kubeconfig context's namespace when not set.
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// kubeconfig context to use; the current context when not set.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// kubeconfig file; $KUBECONFIG or ~/.kube/config when not set.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One screen about a Database, or a table of every Database in the namespace.
    Status {
        database: Option<String>,
        /// `json` for scripts.
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// A psql session in the Database's primary, with its own credentials.
    Psql {
        database: String,
        /// Connect to a replica instead of the primary.
        #[arg(long)]
        replica: bool,
        /// Arguments for psql, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Ask for one run of a Backup now.
    Backup {
        backup: String,
        /// Start one run now (required: the only action so far).
        #[arg(long)]
        now: bool,
        /// Follow the run to its end.
        #[arg(long)]
        wait: bool,
        /// How long --wait follows the run, e.g. 10m.
        #[arg(long, value_parser = parse_duration, default_value = "30m")]
        timeout: Duration,
        /// How long --wait gives the backup-operator to take up the request before it
        /// counts as not running.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        operator_timeout: Duration,
    },
    /// Restore a Backup's artifact into a Database and follow it to the end.
    Restore {
        backup: String,
        /// The Database to restore into.
        #[arg(long)]
        to: String,
        /// The run whose artifact is restored (see `kubectl pg status`); the newest when not set.
        #[arg(long)]
        run: Option<String>,
        /// Point in time to recover to (not available in this version).
        #[arg(long)]
        time: Option<String>,
        /// Name of the Restore to create; `<database>-<backup>-<time>` when not set.
        #[arg(long)]
        name: Option<String>,
        /// Create the Restore and return without following it.
        #[arg(long)]
        no_wait: bool,
        /// How long to follow the Restore, e.g. 10m.
        #[arg(long, value_parser = parse_duration, default_value = "30m")]
        timeout: Duration,
        /// How long to give the backup-operator to take up the Restore before it counts as
        /// not running.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        operator_timeout: Duration,
    },
    /// Switch the primary over to a ready standby (a planned move that loses nothing
    /// committed), and wait until the Database reports it.
    Promote {
        database: String,
        instance: String,
        /// How long to wait for the switchover.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        timeout: Duration,
    },
    /// Write a support bundle about a Database, Secret values redacted, as one .tar.gz.
    Report {
        database: String,
        /// Archive to write; `pg-report-<namespace>-<database>-<time>.tar.gz` when not set.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// `90s`, `10m`, `1h` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 1h"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("{text:?} is not a duration such as 90s, 10m or 1h")),
    };
    Ok(Duration::from_secs(seconds))
}

/// A client and the namespace the command acts in.
pub struct Target {
    pub client: Client,
    pub namespace: String,
    /// The kubeconfig and context, passed on to `kubectl exec`.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

pub async fn connect(global: &Global) -> Result<Target, Failure> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let unusable = |error: String| {
        Failure::new(format!(
            "no usable kubeconfig ({}): set KUBECONFIG or pass --kubeconfig/--context",
            crate::failure::one_line(&error)
        ))
    };
    let config = match &global.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                Failure::new(format!(
                    "cannot read kubeconfig {}: {}",
                    path.display(),
                    crate::failure::one_line(&e.to_string())
                ))
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| unusable(e.to_string()))?
        }
        None if global.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| unusable(e.to_string()))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| unusable(e.to_string()))?,
    };
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(|e| {
        Failure::new(format!(
            "cannot build a Kubernetes client: {}",
            crate::failure::one_line(&e.to_string())
        ))
    })?;
    Ok(Target {
        client,
        namespace,
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl_timeouts() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").unwrap_err().contains("90s"));
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        Cli::try_parse_from([
            "kubectl-pg",
            "-n",
            "prod",
            "psql",
            "shop",
            "--",
            "-c",
            "select 1",
        ])
        .unwrap();
        let cli =
            Cli::try_parse_from(["kubectl-pg", "restore", "nightly", "--to", "shop"]).unwrap();
        assert!(matches!(cli.command, Command::Restore { ref to, .. } if to == "shop"));
        assert!(Cli::try_parse_from(["kubectl-pg", "restore", "nightly"]).is_err());
    }
}
