//! A table lock held from a session of its own, so that a backup's pg_dump waits inside its
//! run for exactly as long as a test needs: a fault lands mid-dump without guessing how long a
//! dump of some number of rows takes on a busy machine.
//!
//! pg_dump takes an ACCESS SHARE lock on every table it dumps, in its snapshot transaction,
//! before it reads any data; an ACCESS EXCLUSIVE lock held elsewhere makes it wait there.

use std::{process::Stdio, time::Duration};

use anyhow::{Context, Result, bail};
use kube::Client;
use tokio::{io::AsyncWriteExt, process::Child};

use scenarios::{POD_START, connection_env, psql};

/// `application_name` of the holding session, which finds it again in `pg_stat_activity`.
const HOLDER: &str = "testenv-table-lock";

/// An ACCESS EXCLUSIVE lock on one table, held by a psql process until [`TableLock::release`]
/// (or until dropped: the process is killed and the server ends the session on its own).
pub struct TableLock {
    psql: Child,
    client: Client,
    ns: String,
    database: String,
}

impl TableLock {
    /// Takes the lock and returns once the server holds it for this session.
    pub async fn acquire(
        client: &Client,
        ns: &str,
        database: &str,
        table: &str,
    ) -> Result<TableLock> {
        let env = connection_env(client, ns, database).await?;
        let mut psql_process = tokio::process::Command::new("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-q"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PGAPPNAME", HOLDER)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("running psql (Debian package postgresql-client)")?;
        // -c would run all three as one implicit transaction that psql sends at once; on stdin
        // they run in order, and the sleep keeps the transaction, and so the lock, open.
        let sql = format!(
            "BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(3600);\n"
        );
        let mut stdin = psql_process.stdin.take().context("psql's stdin")?;
        stdin.write_all(sql.as_bytes()).await?;
        drop(stdin);
        let lock = TableLock {
            psql: psql_process,
            client: client.clone(),
            ns: ns.to_string(),
            database: database.to_string(),
        };
        let held = format!(
            "SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = '{HOLDER}' AND l.relation = '{table}'::regclass \
             AND l.mode = 'AccessExclusiveLock' AND l.granted"
        );
        wait_for_sql(client, ns, database, &held, "the table lock to be granted").await?;
        Ok(lock)
    }

    /// Ends the holding session; whoever waits for the table goes on.
    pub async fn release(mut self) -> Result<()> {
        let terminate = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = '{HOLDER}'"
        );
        psql(&self.client, &self.ns, &self.database, &terminate).await?;
        let _ = self.psql.kill().await;
        Ok(())
    }
}

/// Waits until a dump is connected to `database` and waiting for a lock: pg_dump itself, or
/// the session counting rows in the snapshot pg_dump then shares. A dump is in progress and
/// cannot finish until the lock is released.
pub async fn wait_for_pg_dump_blocked(client: &Client, ns: &str, database: &str) -> Result<()> {
    let blocked = "SELECT count(*) > 0 FROM pg_stat_activity \
                   WHERE application_name IN ('pg_dump', 'pg_dump snapshot') \
                   AND wait_event_type = 'Lock'";
    wait_for_sql(
        client,
        ns,
        database,
        blocked,
        "pg_dump to wait for the lock",
    )
    .await
}

/// Polls a query that answers a boolean until it says `t`, for [`POD_START`] at most.
async fn wait_for_sql(
    client: &Client,
    ns: &str,
    database: &str,
    query: &str,
    what: &str,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + POD_START;
    loop {
        if psql(client, ns, database, query).await? == "t" {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("waited {POD_START:?} for {what}: {query}");
        }
        // The server's own view, read a few times a second: no watch exists for it.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
