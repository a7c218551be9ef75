//! Running as a standby: stream from the primary (PostgreSQL does that by itself, from the
//! settings), and take over once the primary's Lease has expired and this is the best
//! candidate (`election`).

use std::time::{Duration, Instant};

use anyhow::Result;
use api::FailoverReport;
use api::names::{ROLE_PRIMARY, ROLE_REPLICA};
use k8s_openapi::jiff::Timestamp;

use crate::election;
use crate::lease::{Observer, Write};
use crate::postgres::{self, Server};
use crate::start::Instance;

const WATCH_EVERY: Duration = Duration::from_secs(1);
const WATCH_WITHIN: Duration = Duration::from_secs(5);

pub enum Outcome {
    Promoted,
    Stopped,
}

pub async fn run(
    instance: &Instance,
    server: &mut Server,
    terminate: &mut crate::stop::StopRequests,
) -> Result<Outcome> {
    let config = &instance.config;
    crate::pods::label(&instance.client, config, &config.pod, ROLE_REPLICA).await?;
    tracing::info!("running as a standby");
    let reporting = tokio::spawn(crate::report::keep_reporting(instance.clone(), false));
    let slots = tokio::spawn(drop_slots_left_by_the_primary(instance.clone()));
    let outcome = watch_lease(instance, server, terminate).await;
    reporting.abort();
    slots.abort();
    outcome
}

/// Every slot a demoted primary kept (pg_replslot/ stays with its data directory when it
/// starts again as a standby): its peers' and the WAL archiver's. Nothing streams from a standby, so each would only hold
/// WAL here (up to `max_slot_wal_keep_size`) and, once this instance leads again, offer its
/// peers and the archiver a position it may have lost meanwhile; a new primary makes its
/// peers' slots afresh at promotion (`primary::ensure_slots`) and the archiver its own. Retried
/// until the server takes connections, which a rewound standby does only once consistent.
async fn drop_slots_left_by_the_primary(instance: Instance) {
    const DROP: &str = "SELECT string_agg(slot_name, ',') FROM \
         (SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
          WHERE slot_type = 'physical' AND NOT active) AS dropped";
    let mut retry = tokio::time::interval(Duration::from_secs(2));
    loop {
        retry.tick().await;
        match postgres::query_local(&instance.config, DROP).await {
            Ok(dropped) if dropped.is_empty() => return,
            Ok(dropped) => {
                tracing::info!(slots = %dropped, "dropped the replication slots left from leading");
                return;
            }
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "slots not checked yet"),
        }
    }
}

async fn watch_lease(
    instance: &Instance,
    server: &mut Server,
    terminate: &mut crate::stop::StopRequests,
) -> Result<Outcome> {
    let mut observer = Observer::default();
    let mut watch = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = watch.tick() => {
                // Bounded, so a stop request or a crashed server is not left waiting behind
                // an unreachable API server. Cut short after taking the Lease, the next tick
                // finds this instance the holder and promotes.
                match tokio::time::timeout(WATCH_WITHIN, take_over_if_due(instance, &mut observer)).await {
                    Ok(Ok(Due::Promote(failover))) => {
                        promote(instance, server).await?;
                        if let Some(report) = failover
                            && let Err(e) = crate::failover::announce(instance, &report).await
                        {
                            tracing::warn!(error = %format!("{e:#}"), "could not record the failover");
                        }
                        return Ok(Outcome::Promoted);
                    }
                    Ok(Ok(Due::No)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "watching the Lease"),
                    Err(_) => tracing::warn!("watching the Lease timed out"),
                }
            }
            status = server.exited() => {
                tracing::warn!(%status, "PostgreSQL exited; starting it again");
                *server = Server::start(&instance.config).await?;
            }
            _ = terminate.recv() => {
                server.stop_fast().await;
                return Ok(Outcome::Stopped);
            }
        }
    }
}

/// What the Lease watch concluded.
enum Due {
    No,
    /// This instance holds the Lease: promote, and record the failover when it was one.
    Promote(Option<FailoverReport>),
}

/// Reads the Lease; when it has expired and this standby is the best candidate, takes it.
async fn take_over_if_due(instance: &Instance, observer: &mut Observer) -> Result<Due> {
    let Some(holder) = instance.leases.read().await? else {
        return Ok(Due::No);
    };
    if holder.identity == instance.config.pod {
        // Handed over (a switchover), or taken before a crash with the promotion unfinished.
        return Ok(Due::Promote(None));
    }
    if !observer.observe(&holder, Instant::now()) {
        return Ok(Due::No);
    }
    let mine = election::received(instance).await?;
    let candidates = election::peers(instance, &holder.identity).await?;
    let peers = &candidates.answered;
    if !election::should_try(&instance.config.pod, mine, peers) {
        tracing::info!(holder = %holder.identity, ?mine, ?peers, "the Lease expired; another standby is the better candidate");
        return Ok(Due::No);
    }
    let synchronous = crate::synchronous::wanted(instance).await?;
    let answered = 1 + peers.iter().filter(|p| p.received.is_some()).count();
    if !crate::synchronous::quorum_reached(candidates.standbys, synchronous, answered) {
        tracing::warn!(holder = %holder.identity, answered, standbys = candidates.standbys, synchronous,
            "the Lease expired, but too few standbys answered to be sure of having every acknowledged commit; waiting");
        return Ok(Due::No);
    }
    match instance.leases.write(&holder, &instance.config.pod).await? {
        Write::Done(_) => {
            tracing::info!(previous = %holder.identity, "took over the expired Lease");
            let failover = (!holder.identity.is_empty()).then(|| {
                crate::failover::report(
                    &holder.identity,
                    &instance.config.pod,
                    Timestamp::now(),
                    holder.position,
                    mine,
                    synchronous > 0,
                )
            });
            // The former primary's Pod leaves the read-write Service before this one joins it.
            if !holder.identity.is_empty() {
                crate::pods::label(
                    &instance.client,
                    &instance.config,
                    &holder.identity,
                    ROLE_REPLICA,
                )
                .await?;
            }
            Ok(Due::Promote(failover))
        }
        Write::Lost => Ok(Due::No),
    }
}

async fn promote(instance: &Instance, server: &Server) -> Result<()> {
    let started = Instant::now();
    server.promote().await?;
    // Into the read-write Service first: clients wait for nothing else.
    crate::pods::label(
        &instance.client,
        &instance.config,
        &instance.config.pod,
        ROLE_PRIMARY,
    )
    .await?;
    // A checkpoint on the new timeline, which pg_rewind of the former primary reads.
    if let Err(e) = postgres::query_local(&instance.config, "CHECKPOINT").await {
        tracing::warn!(error = %e, "checkpoint after promotion failed");
    }
    if let Err(e) = crate::primary::ensure_slots(instance).await {
        tracing::warn!(error = %format!("{e:#}"), "could not make the replication slots after promotion");
    }
    tracing::info!(took = ?started.elapsed(), "promoted to primary");
    Ok(())
}
