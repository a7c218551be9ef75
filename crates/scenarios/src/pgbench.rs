//! pgbench from this machine against a Database: a real write load (TPC-B) through one of
//! its Services, as an application in the cluster would put on it.

use std::process::Stdio;

use anyhow::{Context, Result, bail};
use kube::Client;

use crate::connection_env;

/// pgbench's connection to a Database, as its owner.
pub struct Pgbench {
    env: Vec<(&'static str, String)>,
}

impl Pgbench {
    /// Through `host` (a Service's ClusterIP), or the Database's client Service when `None`.
    pub async fn connect(
        client: &Client,
        ns: &str,
        database: &str,
        host: Option<&str>,
    ) -> Result<Pgbench> {
        let mut env = connection_env(client, ns, database).await?;
        if let Some(host) = host {
            for (key, value) in env.iter_mut() {
                if *key == "PGHOST" {
                    *value = host.to_string();
                }
            }
        }
        Ok(Pgbench { env })
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("pgbench");
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        command
    }

    /// `pgbench -i -s <scale>`: the TPC-B tables, 100,000 accounts per unit of scale (about
    /// 16 MB; scale 70 is about 1 GiB).
    pub async fn init(&self, scale: u64) -> Result<()> {
        self.run(&["-i", "-q", "-s", &scale.to_string()])
            .await
            .map(drop)
    }

    /// Runs pgbench with `args` to its end; what it printed on stdout.
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        let output = self
            .command()
            .args(args)
            .output()
            .await
            .context("running pgbench (Debian package postgresql)")?;
        if !output.status.success() {
            bail!(
                "pgbench {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts the TPC-B load with `args` (clients, rate, duration), its output piped; it is
    /// killed if dropped while running.
    pub fn start(&self, args: &[&str]) -> Result<tokio::process::Child> {
        self.command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pgbench")
    }
}
