//! The first start of a Database recovered from a physical Backup: the backup-operator's
//! recovery Job left a base backup, the archived WAL in `pgop_wal/`, `recovery.signal` and
//! the recovery target in the data directory. PostgreSQL replays through `restore_command`
//! and promotes by itself at the target (or at the end of the archive). Only then is this
//! instance the primary: it takes the Lease, the Secret's password is set, and it leads as
//! usual; the other instances wait for that Lease before they clone it.
//!
//! A server that stops before it promoted is never started as anything else: its FATAL line
//! ("recovery ended before configured recovery target was reached", a `restore_command`
//! failure) goes into the report on the Pod and the instance serves nothing, rather than come
//! up with less data than asked.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use api::names::ANNOTATION_RECOVERY;
use api::{RecoveryReport, RecoveryState};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::Config;
use crate::postgres::{self, Server};
use crate::start::{Instance, RECOVERY_FILE, RECOVERY_WAL_DIR};

/// Each poll is a connection the recovering server turns away (and logs): not too often.
const POLL: Duration = Duration::from_secs(2);

pub enum Outcome {
    /// The server promoted; this instance is to lead.
    Promoted,
    /// Told to stop, or failed for good (reported on the Pod).
    Stopped,
}

pub async fn run(
    instance: &Instance,
    server: &mut Server,
    terminate: &mut crate::stop::StopRequests,
) -> Result<Outcome> {
    let config = &instance.config;
    report(instance, &state(RecoveryState::Recovering)).await;
    tracing::info!("recovering: PostgreSQL replays the archived WAL");
    let mut poll = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = poll.tick() => {
                // With hot standby off, nobody connects before the server has promoted.
                if let Ok(answer) = postgres::query_local(config, "SELECT pg_is_in_recovery()").await
                    && answer == "f"
                {
                    break;
                }
            }
            status = server.exited() => {
                let errors = server.errors();
                if errors.is_empty() {
                    // Killed (out of memory, say): nothing says the data is at fault, and a
                    // restarted server resumes recovery where it stopped.
                    bail!("PostgreSQL exited during recovery ({status}) without saying why");
                }
                let message = errors.join("; ");
                tracing::error!(%message, "recovery failed; serving nothing");
                report(instance, &failed(&message)).await;
                // Starting again would only fail the same way: wait to be stopped.
                terminate.recv().await;
                return Ok(Outcome::Stopped);
            }
            _ = terminate.recv() => {
                server.stop_fast().await;
                return Ok(Outcome::Stopped);
            }
        }
    }
    let promoted = promoted(config).await?;
    tracing::info!(recovered_to = ?promoted.recovered_to, timeline = ?promoted.timeline, "recovered and promoted");
    remove_wal_copies(config)?;
    report(instance, &promoted).await;
    Ok(Outcome::Promoted)
}

/// Where the server ended up: the last replayed commit (it stays after promotion) and the
/// timeline it promoted onto.
async fn promoted(config: &Config) -> Result<RecoveryReport> {
    let to = postgres::query_local(
        config,
        "SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')",
    )
    .await?;
    let timeline = postgres::query_local(
        config,
        "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
    )
    .await?;
    Ok(RecoveryReport {
        state: RecoveryState::Promoted,
        recovered_to: Some(to).filter(|t| !t.is_empty()),
        timeline: timeline.parse().ok(),
        message: None,
    })
}

/// After promotion: the Secret's credentials made to work, reported as a failure when they
/// cannot be (the role is not in the recovered data), and the recovery's description
/// removed, which marks the credentials done.
pub async fn adopt(instance: &Instance) -> Result<()> {
    let config = &instance.config;
    if let Err(e) = adopt_credentials(config).await {
        let message = format!("{e:#}");
        report(instance, &failed(&message)).await;
        return Err(e);
    }
    let file = config.pgdata.join(RECOVERY_FILE);
    std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))
}

/// A primary whose recovery's description is still there stopped after promotion but
/// before [`adopt`] finished: finish it beside the primary's work, once the server answers.
pub async fn finish_adopting(instance: Instance) {
    if !instance.config.pgdata.join(RECOVERY_FILE).exists() {
        return;
    }
    loop {
        match adopt(&instance).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "adopting the Secret's credentials")
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The Secret's password on the Database's role, and its database, in the recovered cluster:
/// the data is the source's, the Secret this Database's. The statement goes through stdin.
async fn adopt_credentials(config: &Config) -> Result<()> {
    let password = std::fs::read_to_string(&config.password_file)
        .with_context(|| format!("reading {}", config.password_file.display()))?;
    let sql = credentials_sql(&config.user, password.trim_end_matches('\n'));
    postgres::query_local_stdin(config, &sql).await.with_context(|| {
        format!(
            "setting the password of role {} in the recovered data: a Database recovered from a physical Backup must have the source Database's spec.username",
            config.user
        )
    })?;
    if let Some(database) = &config.database_name {
        let exists = postgres::query_local(
            config,
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = {}",
                literal(database)
            ),
        )
        .await?;
        if exists == "0" {
            let create = format!(
                "{LOCAL_COMMIT} CREATE DATABASE {} OWNER {};",
                identifier(database),
                identifier(&config.user)
            );
            postgres::query_local_stdin(config, &create).await?;
        }
    }
    Ok(())
}

/// The source's `postgresql.auto.conf` may ask for synchronous standbys this Database does
/// not have (yet): these commits must not wait for them. The primary's own loop brings
/// `synchronous_standby_names` in line once it leads.
const LOCAL_COMMIT: &str = "SET synchronous_commit = local;";

/// `ALTER ROLE` with the password (pure, so the quoting is tested).
fn credentials_sql(user: &str, password: &str) -> String {
    format!(
        "{LOCAL_COMMIT} DO $pgop$ BEGIN EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', {}, {}); END $pgop$;",
        literal(user),
        literal(password).replace('$', "' || chr(36) || '")
    )
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn identifier(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Removes the WAL copies `restore_command` read: once promoted they are history.
pub fn remove_wal_copies(config: &Config) -> Result<()> {
    let dir = config.pgdata.join(RECOVERY_WAL_DIR);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

fn state(state: RecoveryState) -> RecoveryReport {
    RecoveryReport {
        state,
        recovered_to: None,
        timeline: None,
        message: None,
    }
}

fn failed(message: &str) -> RecoveryReport {
    RecoveryReport {
        message: Some(message.to_string()),
        ..state(RecoveryState::Failed)
    }
}

/// The report on this instance's Pod. Best effort: the database-operator falls back on the
/// Pod's readiness, and a failure is in the container's log too.
async fn report(instance: &Instance, report: &RecoveryReport) {
    let config = &instance.config;
    let pods: Api<Pod> = Api::namespaced(instance.client.clone(), &config.namespace);
    let Ok(value) = serde_json::to_string(report) else {
        return;
    };
    let patch = json!({"metadata": {"annotations": {ANNOTATION_RECOVERY: value}}});
    if let Err(e) = pods
        .patch(&config.pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(error = %e, "could not report the recovery on the Pod");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_quoted_whatever_it_holds() {
        let sql = credentials_sql("shop_owner", "it's $pgop$ x");
        assert_eq!(
            sql,
            "SET synchronous_commit = local; DO $pgop$ BEGIN EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', 'shop_owner', 'it''s ' || chr(36) || 'pgop' || chr(36) || ' x'); END $pgop$;"
        );
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
    }
}
