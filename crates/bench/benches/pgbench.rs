//! pgbench from this host through a Database's read-write Service, as the owner in its Secret.

use anyhow::{Context, Result, bail};
use tokio::process::Command;

/// A pgbench command with the libpq environment `env` ([`scenarios::connection_env`]), killed
/// when dropped so an interrupted benchmark leaves no load behind.
pub fn command(env: &[(&'static str, String)]) -> Command {
    let mut command = Command::new("pgbench");
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    command
}

/// Runs `pgbench <args>` to its end, returning what it printed on stdout.
pub async fn run(env: &[(&'static str, String)], args: &[&str]) -> Result<String> {
    let output = command(env)
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
