//! Running as the primary: renew the Lease, keep a replication slot for every other instance,
//! and fence (stop PostgreSQL at once) as soon as leadership can no longer be proven.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use api::names::ROLE_PRIMARY;

use crate::lease::{FENCE_AFTER, FENCE_CHECK_EVERY, Holder, RENEW_EVERY, Write};
use crate::postgres::{self, Server, Stopped};
use crate::start::Instance;

/// How often the slots are brought in line with the StatefulSet's instances.
const SLOTS_EVERY: Duration = Duration::from_secs(10);
/// How often the WAL position told with each renewal is read.
const POSITION_EVERY: Duration = Duration::from_millis(500);
/// How long a clean stop tries to give the Lease up.
const RELEASE_WITHIN: Duration = Duration::from_secs(3);

/// What the renewal task tells the fencing check.
struct Leadership {
    /// When the last renewal that succeeded was sent.
    renewed: Instant,
    /// Someone else holds the Lease.
    lost: bool,
}

/// How a primary's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container is being stopped.
    Stopped,
    /// PostgreSQL stopped cleanly without the Lease (fenced, or handed over by a switchover):
    /// the role is decided again in this process. Exiting instead would rejoin only after the
    /// container's restart back-off, which grows with every restart to minutes.
    Again,
}

pub async fn run(
    instance: &Instance,
    server: &mut Server,
    terminate: &mut crate::stop::StopRequests,
) -> Result<Ended> {
    let config = &instance.config;
    let leadership = Arc::new(Mutex::new(Leadership {
        renewed: Instant::now(),
        lost: false,
    }));
    let position = Arc::new(AtomicU64::new(0));
    let sampling = tokio::spawn(sample_position(instance.clone(), position.clone()));
    let renewing = tokio::spawn(renew(
        instance.leases.clone(),
        config.pod.clone(),
        leadership.clone(),
        position,
    ));
    crate::pods::label(&instance.client, config, &config.pod, ROLE_PRIMARY).await?;
    tracing::info!("running as the primary");
    // Everything that talks to the API server or PostgreSQL runs beside this loop, never in
    // it: the fencing check must not wait behind a request to an unreachable server.
    let keeping_slots = tokio::spawn(keep_slots(instance.clone()));
    let keeping_synchronous = tokio::spawn(crate::synchronous::keep_in_line(instance.clone()));
    let reporting = tokio::spawn(crate::report::keep_reporting(instance.clone(), true));
    let (switch_to, mut switch_requests) = tokio::sync::mpsc::channel(1);
    let watching = tokio::spawn(watch_switchover(instance.clone(), switch_to));
    let mut fence_check = tokio::time::interval(FENCE_CHECK_EVERY);
    let outcome = loop {
        tokio::select! {
            _ = fence_check.tick() => {
                let (since, lost) = {
                    let l = leadership.lock().expect("leadership lock");
                    (l.renewed.elapsed(), l.lost)
                };
                if lost || since > FENCE_AFTER {
                    let stopped = server.stop_now().await;
                    let why = if lost {
                        "fenced: another instance holds the Lease".to_string()
                    } else {
                        format!("fenced: the Lease was not renewed for {since:?}")
                    };
                    break match stopped {
                        Stopped::Cleanly => {
                            tracing::warn!("{why}; PostgreSQL stopped, deciding the role again");
                            Ok(Ended::Again)
                        }
                        Stopped::Killed => Err(anyhow::anyhow!("{why}; PostgreSQL had to be killed")),
                    };
                }
            }
            // A crashed server restarts in place (crash recovery), still holding the Lease:
            // faster than any failover, and nothing acknowledged is lost.
            status = server.exited() => {
                tracing::warn!(%status, "PostgreSQL exited; starting it again");
                *server = Server::start(config).await?;
            }
            Some(target) = switch_requests.recv() => {
                tracing::info!(%target, "switching over: shutting down, then handing the Lease over");
                let stopped = server.stop_fast().await;
                renewing.abort();
                match crate::switchover::hand_over(instance, &target).await {
                    Ok(true) => tracing::info!(%target, "handed the Lease over; starting again as a standby"),
                    Ok(false) => tracing::warn!(%target, "switchover abandoned; leading again after a restart"),
                    Err(e) => tracing::warn!(%target, error = %format!("{e:#}"), "switchover failed; leading again after a restart"),
                }
                // The role the Lease now gives, decided again.
                break match stopped {
                    Stopped::Cleanly => Ok(Ended::Again),
                    Stopped::Killed => Err(anyhow::anyhow!("PostgreSQL had to be killed to switch over")),
                };
            }
            _ = terminate.recv() => {
                server.stop_fast().await;
                renewing.abort();
                // Best effort: cut off from the API server, the Lease simply expires.
                let _ = tokio::time::timeout(RELEASE_WITHIN, release(instance)).await;
                break Ok(Ended::Stopped);
            }
        }
    };
    renewing.abort();
    sampling.abort();
    keeping_slots.abort();
    keeping_synchronous.abort();
    reporting.abort();
    watching.abort();
    outcome
}

/// Reads the Database every second for a switchover request; sends the target once.
async fn watch_switchover(instance: Instance, requests: tokio::sync::mpsc::Sender<String>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match crate::switchover::requested(&instance).await {
            Ok(Some(target)) => {
                let _ = requests.send(target).await;
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "reading the switchover request"),
        }
    }
}

/// Brings the slots in line every [`SLOTS_EVERY`].
async fn keep_slots(instance: Instance) {
    let mut tick = tokio::time::interval(SLOTS_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = ensure_slots(&instance).await {
            tracing::warn!(error = %format!("{e:#}"), "could not bring the replication slots in line");
        }
    }
}

/// Keeps `position` at how far this primary has written WAL (0 until known), for the
/// renewals to tell: a standby that takes over after this instance is lost compares it with
/// what it received, which is what the failover lost.
async fn sample_position(instance: Instance, position: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(POSITION_EVERY);
    loop {
        tick.tick().await;
        if let Ok(text) =
            postgres::query_local(&instance.config, "SELECT pg_current_wal_lsn()").await
            && let Some(lsn) = postgres::parse_lsn(&text)
        {
            position.store(lsn, Ordering::Relaxed);
        }
    }
}

/// Renews the Lease every [`RENEW_EVERY`], recording when each successful renewal was sent.
async fn renew(
    leases: crate::lease::Leases,
    me: String,
    leadership: Arc<Mutex<Leadership>>,
    position: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    let mut current: Option<Holder> = None;
    loop {
        tick.tick().await;
        let sent = Instant::now();
        let holder = match current.take() {
            Some(holder) => Ok(Some(holder)),
            None => leases.read().await,
        };
        let result = match holder {
            Ok(Some(holder)) if holder.identity == me => {
                let written = Some(position.load(Ordering::Relaxed)).filter(|p| *p > 0);
                leases.renew(&holder, &me, written).await
            }
            Ok(Some(_)) | Ok(None) => {
                leadership.lock().expect("leadership lock").lost = true;
                return;
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(Write::Done(holder)) => {
                leadership.lock().expect("leadership lock").renewed = sent;
                current = Some(holder);
            }
            // Someone wrote it: read it again next time and see who.
            Ok(Write::Lost) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "could not renew the Lease"),
        }
    }
}

/// Gives the Lease up after a clean stop, so a standby takes over at once instead of waiting
/// for it to expire. A single instance keeps it: nobody could take over, and its restart leads
/// at once with its own Lease.
async fn release(instance: &Instance) {
    let me = &instance.config.pod;
    match crate::pods::instances(&instance.client, &instance.config).await {
        Ok(instances) if instances.iter().any(|pod| pod != me) => {}
        _ => return,
    }
    match instance.leases.read().await {
        Ok(Some(holder)) if holder.identity == *me => {
            match instance.leases.write(&holder, "").await {
                Ok(_) => tracing::info!("released the Lease"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "could not release the Lease"),
            }
        }
        _ => {}
    }
}

/// A physical slot for every other instance of the StatefulSet (made reserving WAL at once,
/// so an instance cloning or rejoining finds it), and none for instances that are gone.
pub async fn ensure_slots(instance: &Instance) -> Result<()> {
    let config = &instance.config;
    let wanted: Vec<String> = crate::pods::instances(&instance.client, config)
        .await?
        .iter()
        .filter(|pod| **pod != config.pod)
        .map(|pod| api::names::replication_slot(pod))
        .collect();
    let prefix = api::names::replication_slot(&format!("{}-", config.statefulset));
    let existing = postgres::query_local(
        config,
        "SELECT string_agg(slot_name || ':' || active, ',') FROM pg_replication_slots WHERE slot_type = 'physical'",
    )
    .await?;
    let existing: Vec<(String, bool)> = existing
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.split_once(':'))
        .map(|(name, active)| (name.to_string(), active == "t"))
        .collect();
    for slot in &wanted {
        if !existing.iter().any(|(name, _)| name == slot) {
            check_slot_name(slot)?;
            postgres::query_local(
                config,
                &format!("SELECT pg_create_physical_replication_slot('{slot}', true)"),
            )
            .await?;
            tracing::info!(%slot, "created a replication slot");
        }
    }
    for (slot, active) in &existing {
        if slot.starts_with(&prefix) && !wanted.contains(slot) && !active {
            check_slot_name(slot)?;
            postgres::query_local(
                config,
                &format!("SELECT pg_drop_replication_slot('{slot}')"),
            )
            .await?;
            tracing::info!(%slot, "dropped the replication slot of a removed instance");
        }
    }
    Ok(())
}

/// Slot names go into SQL literals: only what `replication_slot` makes may pass.
fn check_slot_name(slot: &str) -> Result<()> {
    if slot.is_empty()
        || !slot
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("refusing slot name {slot:?}");
    }
    Ok(())
}
