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
        let mut server = postgres::Server::start(&instance.config).await?;
        let outcome = match role {
            start::Role::Primary => primary::run(&instance, &mut server, &mut terminate).await,
            start::Role::Standby => {
                match standby::run(&instance, &mut server, &mut terminate).await {
                    Ok(standby::Outcome::Promoted) => {
                        primary::run(&instance, &mut server, &mut terminate).await
                    }
                    Ok(standby::Outcome::Stopped) => Ok(primary::Ended::Stopped),
                    Err(e) => Err(e),
                }
            }
        };
        // Whatever happened, PostgreSQL does not outlive its manager.
        let stopped = server.stop_fast().await;
        match (outcome?, stopped) {
            (primary::Ended::Again, postgres::Stopped::Cleanly) => continue,
            (primary::Ended::Again, postgres::Stopped::Killed) => {
                anyhow::bail!("PostgreSQL had to be killed; starting a new container")
            }
            (primary::Ended::Stopped, _) => return Ok(()),
        }
    }
}
