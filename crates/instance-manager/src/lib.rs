//! The instance manager: PID 1 of every PostgreSQL container of a Database.
//!
//! The database-operator copies its own binary into each Pod (an init container running the
//! operator's image, `database-operator instance install DIR`), and the postgres container
//! runs it (`instance run`). It decides whether this instance is the primary or a standby,
//! prepares its data directory for that (a clone with `pg_basebackup`, a rewind of a former
//! primary), runs the image's entrypoint (so `initdb` and the image contract are the
//! official image's), and then keeps the instance in its role:
//!
//! - the **primary** holds the Lease `<db>-primary`, renewing it every [`lease::RENEW_EVERY`];
//!   when it has not managed to for [`lease::FENCE_AFTER`], it stops PostgreSQL at once and
//!   decides its role again (it rejoins as a standby), because a standby may take over the Lease once it has seen it unchanged for
//!   [`lease::DURATION`] (docs/replication.md has the timing argument);
//! - a **standby** streams from the read-write Service through its own replication slot and
//!   watches the Lease: once it has expired, the most advanced reachable standby takes it
//!   (a write conditioned on the Lease's resourceVersion, so only one can) and promotes.
//!
//! Each instance labels its own Pod with its role; the Database's Services select on it.
//! Everything here uses only what the official image has (`postgres`, `pg_ctl`, `psql`,
//! `pg_basebackup`, `pg_rewind`) and the Pod's ServiceAccount.

mod config;
mod election;
mod failover;
mod install;
pub mod lease;
mod pods;
mod postgres;
mod primary;
mod recovery;
mod report;
mod standby;
mod start;
mod stop;
mod switchover;
mod synchronous;

pub use config::Config;
pub use install::install;

use anyhow::Result;

/// Runs the instance until the container is told to stop, or something fails that only a
/// new container can clear.
pub async fn run(config: Config) -> Result<()> {
    let client = kube::Client::try_default().await?;
    let instance = start::Instance::new(client, config);
    let mut terminate = stop::StopRequests::listen()?;
    loop {
        let role = start::prepare(&instance).await?;
        let (outcome, stopped) = if role == start::Role::Recovering {
            let mut server = postgres::Server::start_recovery(&instance.config).await?;
            let outcome = recover_then_lead(&instance, &mut server, &mut terminate).await;
            (outcome, server.stop_fast().await)
        } else {
            let mut server = postgres::Server::start(&instance.config).await?;
            let outcome = in_role(&instance, role, &mut server, &mut terminate).await;
            // Whatever happened, PostgreSQL does not outlive its manager.
            (outcome, server.stop_fast().await)
        };
        match (outcome?, stopped) {
            (primary::Ended::Again, postgres::Stopped::Cleanly) => continue,
            (primary::Ended::Again, postgres::Stopped::Killed) => {
                anyhow::bail!("PostgreSQL had to be killed; starting a new container")
            }
            (primary::Ended::Stopped, _) => return Ok(()),
        }
    }
}

/// Keeps the instance in the role `prepare` gave it, until that ends.
async fn in_role(
    instance: &start::Instance,
    role: start::Role,
    server: &mut postgres::Server,
    terminate: &mut stop::StopRequests,
) -> Result<primary::Ended> {
    match role {
        start::Role::Primary => {
            let adopting = tokio::spawn(recovery::finish_adopting(instance.clone()));
            let outcome = primary::run(instance, server, terminate).await;
            adopting.abort();
            outcome
        }
        start::Role::Standby => match standby::run(instance, server, terminate).await? {
            standby::Outcome::Promoted => primary::run(instance, server, terminate).await,
            standby::Outcome::Stopped => Ok(primary::Ended::Stopped),
        },
        start::Role::Recovering => unreachable!("recovery has a server of its own"),
    }
}

/// A recovery from a physical Backup; once promoted, this instance takes the Lease nobody
/// holds yet and leads as usual.
async fn recover_then_lead(
    instance: &start::Instance,
    server: &mut postgres::Server,
    terminate: &mut stop::StopRequests,
) -> Result<primary::Ended> {
    match recovery::run(instance, server, terminate).await? {
        recovery::Outcome::Stopped => return Ok(primary::Ended::Stopped),
        recovery::Outcome::Promoted => {}
    }
    if let Err(e) = recovery::adopt(instance).await {
        // Reported on the Pod. Leading without credentials that work would serve nobody;
        // a restart would not try again (the init container does not rerun), so hold.
        tracing::error!(error = %format!("{e:#}"), "the recovered server cannot take the Secret's credentials");
        terminate.recv().await;
        return Ok(primary::Ended::Stopped);
    }
    match instance.leases.create(&instance.config.pod).await? {
        lease::Write::Done(_) => primary::run(instance, server, terminate).await,
        lease::Write::Lost => {
            // Nobody could have led without data; if someone did, two primaries must not run.
            server.stop_now().await;
            anyhow::bail!("another instance took the primary's Lease while this one recovered")
        }
    }
}
