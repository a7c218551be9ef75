//! A planned switchover: the primary hands the Lease to a standby the user named
//! (`database.example.com/switchover-from` and `-to` on the Database), without losing
//! anything committed.
//!
//! 1. The primary shuts down fast: new connections are refused, sessions end, and the
//!    walsenders send every WAL record up to the shutdown checkpoint before they exit, so a
//!    streaming standby has everything that was committed.
//! 2. It writes the target's name into the Lease (conditioned on the version it holds). The
//!    target's manager sees itself the holder and promotes; the read-write Service follows
//!    its label.
//! 3. It exits; its container starts again, finds the Lease held by the target, rewinds (a
//!    no-op after a clean shutdown) and follows as a standby.

use anyhow::{Context, Result};
use api::names::{ANNOTATION_SWITCHOVER_FROM, ANNOTATION_SWITCHOVER_TO};
use kube::ResourceExt;

use crate::postgres;
use crate::start::Instance;

/// The standby to switch over to, when the Database asks this instance to hand over to one
/// that streams from it right now.
pub async fn requested(instance: &Instance) -> Result<Option<String>> {
    let config = &instance.config;
    let database = instance.database().await?;
    let annotations = database.annotations();
    let (Some(from), Some(target)) = (
        annotations.get(ANNOTATION_SWITCHOVER_FROM),
        annotations.get(ANNOTATION_SWITCHOVER_TO).cloned(),
    ) else {
        return Ok(None);
    };
    if *from != config.pod || target == config.pod {
        return Ok(None);
    }
    if !target
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        tracing::warn!(%target, "ignoring a switchover to an invalid Pod name");
        return Ok(None);
    }
    let streaming = postgres::query_local(
        config,
        &format!(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{target}' AND state = 'streaming'"
        ),
    )
    .await?;
    if streaming != "1" {
        tracing::warn!(%target, "a switchover was asked for, but that instance does not stream from this primary; waiting");
        return Ok(None);
    }
    Ok(Some(target))
}

/// How long the target may take to confirm it received the shutdown checkpoint.
const CONFIRM_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// After the fast shutdown: waits until `target` has received WAL past this server's last
/// checkpoint (the shutdown checkpoint, the last record it wrote), then gives it the Lease.
/// Returns whether the Lease went to the target; when not, nothing changed hands and this
/// instance leads again when it starts.
pub async fn hand_over(instance: &Instance, target: &str) -> Result<bool> {
    let config = &instance.config;
    let checkpoint = shutdown_checkpoint(config).await?;
    // By address, as the election asks its peers (`pods::address`); the DNS name only when
    // the API server did not give one.
    let host = match crate::pods::address(&instance.client, config, target).await {
        Ok(Some(ip)) => ip,
        _ => config.instance_host(target),
    };
    let deadline = tokio::time::Instant::now() + CONFIRM_WITHIN;
    loop {
        let received = postgres::query_remote(config, &host, "SELECT pg_last_wal_receive_lsn()")
            .await
            .ok()
            .and_then(|lsn| postgres::parse_lsn(&lsn));
        if received.is_some_and(|r| r > checkpoint) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            tracing::warn!(%target, ?received, checkpoint, "the target did not confirm the shutdown checkpoint; not switching over");
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let Some(holder) = instance.leases.read().await? else {
        return Ok(false);
    };
    if holder.identity != config.pod {
        return Ok(false);
    }
    if !matches!(
        instance.leases.write(&holder, target).await?,
        crate::lease::Write::Done(_)
    ) {
        return Ok(false);
    }
    // Out of the read-write Service at once, not only once its readiness probe fails.
    crate::pods::label(
        &instance.client,
        config,
        &config.pod,
        api::names::ROLE_REPLICA,
    )
    .await?;
    Ok(true)
}

/// "Latest checkpoint location" from `pg_controldata`: the shutdown checkpoint after a clean
/// stop.
async fn shutdown_checkpoint(config: &crate::Config) -> Result<u64> {
    let output = tokio::process::Command::new("pg_controldata")
        .arg(&config.pgdata)
        .env("LC_ALL", "C")
        .output()
        .await
        .context("running pg_controldata")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("Latest checkpoint location:"))
        .and_then(|lsn| postgres::parse_lsn(lsn.trim()))
        .context("pg_controldata printed no checkpoint location")
}
