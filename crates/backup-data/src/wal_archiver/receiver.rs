//! Running `pg_receivewal` into the spool: the slot first (created where it is missing, as
//! on a new primary after a failover), then the stream until it stops.

use super::status::ErrorCategory;
use crate::pg::{PgConnection, PgError, PgTools};
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Child;
use tokio::task::JoinHandle;

/// Lines of pg_receivewal's stderr kept to explain why it stopped.
const TAIL_LINES: usize = 20;

/// Creates the physical slot unless it exists. `pg_receivewal --create-slot` reserves WAL
/// from the moment it is created.
pub async fn ensure_slot(
    tools: &PgTools,
    connection: &PgConnection,
    slot: &str,
) -> Result<(), PgError> {
    let mut command = tools.command("pg_receivewal", connection);
    command
        .args([
            "--create-slot",
            "--if-not-exists",
            "--slot",
            slot,
            "--no-password",
        ])
        .stdout(Stdio::null());
    tools.run("pg_receivewal", command, connection).await
}

/// Drops the slot: after a gap it points at WAL the server no longer has, and pg_receivewal
/// would ask for that position again on every start.
pub async fn drop_slot(
    tools: &PgTools,
    connection: &PgConnection,
    slot: &str,
) -> Result<(), PgError> {
    let mut command = tools.command("pg_receivewal", connection);
    command
        .args(["--drop-slot", "--slot", slot, "--no-password"])
        .stdout(Stdio::null());
    tools.run("pg_receivewal", command, connection).await
}

/// A running pg_receivewal and the end of what it said.
pub struct Receiver {
    pub child: Child,
    pub stderr: JoinHandle<String>,
}

pub fn spawn(
    tools: &PgTools,
    connection: &PgConnection,
    slot: &str,
    spool: &Path,
) -> Result<Receiver, PgError> {
    let mut command = tools.command("pg_receivewal", connection);
    command
        .arg("--directory")
        .arg(spool)
        .args(["--slot", slot, "--no-loop", "--no-password", "--verbose"])
        // Status packets often enough that the server sees a dead archiver quickly.
        .args(["--status-interval=5"])
        .stdout(Stdio::null());
    let mut child = command.spawn().map_err(|source| PgError::Spawn {
        program: "pg_receivewal".into(),
        source,
    })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tail: Vec<String> = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "pg_receivewal", "{line}");
            tail.push(line);
            if tail.len() > TAIL_LINES {
                tail.remove(0);
            }
        }
        tail.join("\n")
    });
    Ok(Receiver { child, stderr })
}

/// Why pg_receivewal stopped, from what it printed.
pub fn classify_exit(stderr: &str) -> ErrorCategory {
    let text = stderr.to_lowercase();
    if text.contains("has already been removed")
        || text.contains("has been invalidated")
        || text.contains("requested starting point") && text.contains("ahead of")
    {
        ErrorCategory::Gap
    } else {
        ErrorCategory::ServerUnreachable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_wal_is_a_gap_and_anything_else_the_server() {
        let removed = "pg_receivewal: error: could not send replication command \"START_REPLICATION\": ERROR:  requested WAL segment 000000010000000000000003 has already been removed";
        assert_eq!(classify_exit(removed), ErrorCategory::Gap);
        let refused = "pg_receivewal: error: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused";
        assert_eq!(classify_exit(refused), ErrorCategory::ServerUnreachable);
        let closed = "pg_receivewal: error: unexpected termination of replication stream: server closed the connection unexpectedly";
        assert_eq!(classify_exit(closed), ErrorCategory::ServerUnreachable);
    }
}
