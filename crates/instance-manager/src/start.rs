//! Before PostgreSQL starts: which role this instance takes, and its data directory made fit
//! for it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::Config;
use crate::lease::{Holder, Leases, Observer, Write};
use crate::postgres;

/// How often the Lease is read while waiting for a primary to clone from or follow.
const WAIT_POLL: Duration = Duration::from_secs(1);
/// A minute of attempts at cloning before the container restarts and decides again.
const CLONE_ATTEMPTS: u32 = 30;

#[derive(Clone)]
pub struct Instance {
    pub client: kube::Client,
    pub config: Config,
    pub leases: Leases,
}

impl Instance {
    pub fn new(client: kube::Client, config: Config) -> Instance {
        let leases = Leases::new(client.clone(), &config.namespace, &config.lease);
        Instance {
            client,
            config,
            leases,
        }
    }

    /// The Database this instance belongs to, as the API server has it now.
    pub async fn database(&self) -> Result<api::Database> {
        let databases: kube::Api<api::Database> =
            kube::Api::namespaced(self.client.clone(), &self.config.namespace);
        databases
            .get(&self.config.database)
            .await
            .with_context(|| format!("reading Database {}", self.config.database))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby,
    /// A data directory the backup-operator prepared from a physical Backup: replay the
    /// archived WAL, promote, then lead ([`crate::recovery`]).
    Recovering,
}

/// What `prepare-recovery` leaves in the data directory besides `recovery.signal`: the two
/// together mark a point-in-time recovery, which no other path writes.
pub const RECOVERY_FILE: &str = "pgop_recovery.json";
/// The WAL `prepare-recovery` fetched, which `restore_command` copies from.
pub const RECOVERY_WAL_DIR: &str = "pgop_wal";

/// What is in the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    Empty,
    /// A server that was a primary (no `standby.signal`).
    Primary,
    Standby,
    /// Prepared for point-in-time recovery, not promoted yet.
    Recovering,
}

impl Data {
    pub fn of(pgdata: &Path) -> Data {
        if !pgdata.join("PG_VERSION").exists() {
            Data::Empty
        } else if pgdata.join("recovery.signal").exists() && pgdata.join(RECOVERY_FILE).exists() {
            Data::Recovering
        } else if pgdata.join("standby.signal").exists() {
            Data::Standby
        } else {
            Data::Primary
        }
    }
}

/// What to do, given the data and the Lease (pure, see the tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Create the Lease and initialise a new cluster: only the first instance, only when no
    /// Lease exists (no primary was ever elected).
    Bootstrap,
    /// Hold the Lease and run as primary on the data there is.
    Lead,
    /// Clone the primary into the empty data directory, then follow it.
    Clone,
    /// Follow the primary with the data there is.
    Follow,
    /// This instance was a primary but another holds the Lease: rewind onto its timeline
    /// (or clone again) and follow it.
    Rejoin,
    /// Replay the archived WAL of a prepared data directory; take the Lease only once the
    /// server has promoted.
    Recover,
    /// Nobody can be followed yet: read the Lease again.
    Wait,
}

/// `expired`: the Lease is released or has not changed for a Lease duration, as this instance
/// saw it; `released_long`: it has been released for a whole Lease duration.
pub fn plan(
    data: Data,
    lease: Option<&Holder>,
    me: &str,
    first: bool,
    expired: bool,
    released_long: bool,
) -> Plan {
    match (data, lease) {
        (Data::Empty, None) if first => Plan::Bootstrap,
        (Data::Empty, None) => Plan::Wait,
        (Data::Empty, Some(h)) if h.identity == me || h.is_released() || expired => Plan::Wait,
        (Data::Empty, Some(_)) => Plan::Clone,
        (Data::Primary, None) => Plan::Lead,
        (Data::Primary, Some(h)) if h.identity == me => Plan::Lead,
        // Released by a primary that stopped cleanly (maybe this one): its standbys have all it
        // committed and one of them takes over. Only when none has for a Lease duration (no
        // standby, or none healthy) does this one lead again.
        (Data::Primary, Some(h)) if h.is_released() && released_long => Plan::Lead,
        (Data::Primary, Some(h)) if h.is_released() => Plan::Wait,
        // Another instance was primary after this one: its data may have moved on, so this
        // one waits for a live primary to rewind onto rather than leading on stale data.
        (Data::Primary, Some(_)) if expired => Plan::Wait,
        (Data::Primary, Some(_)) => Plan::Rejoin,
        (Data::Standby, _) => Plan::Follow,
        // The first server of a Database recovered from a physical Backup. Nobody else can
        // lead meanwhile: the others have no data and no Lease to clone from.
        (Data::Recovering, None) => Plan::Recover,
        (Data::Recovering, Some(h)) if h.identity == me || h.is_released() => Plan::Recover,
        // Someone else leads: this data is not the Database's. Waiting keeps it untouched.
        (Data::Recovering, Some(_)) => Plan::Wait,
    }
}

/// Decides the role and gets the data directory ready for it.
pub async fn prepare(instance: &Instance) -> Result<Role> {
    let config = &instance.config;
    postgres::write_files(config)?;
    keep_hint_bits_logged(&config.pgdata)?;
    if Data::of(&config.pgdata) != Data::Recovering {
        // Promoted, but stopped before the recovery's WAL copies were removed.
        crate::recovery::remove_wal_copies(config)?;
    }
    let first = config.ordinal() == Some(0);
    let mut observer = Observer::default();
    let mut released = Observer::default();
    loop {
        let data = Data::of(&config.pgdata);
        // Cut off from the API server (a partitioned node), nothing can be decided: read again
        // rather than exit, so the instance rejoins as soon as the partition heals instead of
        // after a crash-loop back-off.
        let lease = match instance.leases.read().await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot read the Lease; trying again");
                tokio::time::sleep(WAIT_POLL).await;
                continue;
            }
        };
        let now = Instant::now();
        let expired = lease.as_ref().is_some_and(|h| observer.observe(h, now));
        let released_long = lease.as_ref().is_some_and(|h| {
            h.is_released() && released.unchanged_for(h, now) >= crate::lease::DURATION
        });
        let plan = plan(
            data,
            lease.as_ref(),
            &config.pod,
            first,
            expired,
            released_long,
        );
        tracing::info!(?data, holder = ?lease.as_ref().map(|h| &h.identity), ?plan, "starting");
        match plan {
            Plan::Bootstrap => match instance.leases.create(&config.pod).await? {
                Write::Done(_) => return Ok(Role::Primary),
                Write::Lost => continue,
            },
            Plan::Lead => {
                let won = match &lease {
                    None => instance.leases.create(&config.pod).await?,
                    Some(holder) => instance.leases.write(holder, &config.pod).await?,
                };
                if matches!(won, Write::Done(_)) {
                    return Ok(Role::Primary);
                }
            }
            Plan::Clone => {
                clone(config).await?;
                return Ok(Role::Standby);
            }
            Plan::Follow => return Ok(Role::Standby),
            Plan::Recover => return Ok(Role::Recovering),
            Plan::Rejoin => {
                rejoin(config).await?;
                return Ok(Role::Standby);
            }
            Plan::Wait => tokio::time::sleep(WAIT_POLL).await,
        }
    }
}

/// A fresh copy of the primary, through the read-write Service, streaming through the slot
/// the primary keeps for this instance (it makes one for every instance of the StatefulSet:
/// `primary::ensure_slots`), so no WAL the copy needs is removed meanwhile.
async fn clone(config: &Config) -> Result<()> {
    tracing::info!(primary = %config.primary_host(), "cloning the primary with pg_basebackup");
    let mut attempt = 0;
    loop {
        attempt += 1;
        clear_directory(&config.pgdata)?;
        let output = Command::new("pg_basebackup")
            .args(["-X", "stream", "-c", "fast", "-w", "-S"])
            .arg(config.slot())
            .arg("-D")
            .arg(&config.pgdata)
            .arg("-d")
            .arg(config.primary_target())
            .arg("-U")
            .arg(&config.user)
            .env("PGPASSFILE", config.passfile())
            // A route that drops packets (a node just back, its Service rules not synced yet)
            // fails this attempt in seconds instead of hanging it.
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .await
            .context("running pg_basebackup")?;
        if output.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        // The primary may not have made this instance's slot yet, or not be reachable
        // through its Service yet: both pass within seconds.
        if attempt >= CLONE_ATTEMPTS {
            clear_directory(&config.pgdata)?;
            bail!("pg_basebackup failed {attempt} times, last: {stderr}");
        }
        tracing::warn!(%stderr, attempt, "pg_basebackup failed; trying again");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    std::fs::write(config.pgdata.join("standby.signal"), "").context("writing standby.signal")?;
    tracing::info!("cloned; starting as a standby");
    Ok(())
}

/// A former primary onto the current primary's timeline: `pg_rewind` (which first runs crash
/// recovery if the server did not stop cleanly), or a fresh clone when that is impossible.
/// Transactions this server committed after the others moved on are discarded either way:
/// they never reached a standby, and the Database's status reports the failover.
async fn rejoin(config: &Config) -> Result<()> {
    tracing::info!(primary = %config.primary_host(), "rewinding the former primary onto the current one");
    let source = format!(
        "{} user={} passfile={} dbname=postgres connect_timeout=5",
        config.primary_target(),
        config.user,
        config.passfile().display()
    );
    let output = Command::new("pg_rewind")
        .arg("--target-pgdata")
        .arg(&config.pgdata)
        .arg("--source-server")
        .arg(&source)
        .arg("--progress")
        .output()
        .await
        .context("running pg_rewind")?;
    if output.status.success() {
        std::fs::write(config.pgdata.join("standby.signal"), "")
            .context("writing standby.signal")?;
        tracing::info!("rewound; starting as a standby");
        return Ok(());
    }
    tracing::warn!(
        stderr = %String::from_utf8_lossy(&output.stderr).trim(),
        "pg_rewind failed; cloning the primary instead"
    );
    clone(config).await
}

/// `wal_log_hints = on` in the data directory's own settings, not only on the command line:
/// `pg_rewind` first finishes crash recovery of a former primary in single-user mode, with
/// only the settings the data directory has, and refuses to rewind data written without it.
/// (New clusters also get data checksums, which serve pg_rewind as well.)
fn keep_hint_bits_logged(pgdata: &Path) -> Result<()> {
    if !pgdata.join("PG_VERSION").exists() {
        return Ok(());
    }
    let file = pgdata.join("postgresql.auto.conf");
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    if current
        .lines()
        .any(|l| l.trim_start().starts_with("wal_log_hints"))
    {
        return Ok(());
    }
    let mut updated = current;
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str("wal_log_hints = 'on'\n");
    std::fs::write(&file, updated).with_context(|| format!("writing {}", file.display()))
}

/// Empties the data directory (not the directory itself: it may be a mount point's child
/// that the image created with the right owner).
fn clear_directory(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: &str) -> Holder {
        Holder {
            identity: by.to_string(),
            resource_version: "1".to_string(),
            transitions: 0,
            position: None,
        }
    }

    /// `plan` with the Lease neither expired nor long released.
    fn fresh(data: Data, lease: Option<&Holder>, me: &str, first: bool) -> Plan {
        plan(data, lease, me, first, false, false)
    }

    fn expired(data: Data, lease: Option<&Holder>, me: &str, first: bool) -> Plan {
        plan(data, lease, me, first, true, false)
    }

    #[test]
    fn only_the_first_instance_initialises_and_only_without_a_lease() {
        assert_eq!(fresh(Data::Empty, None, "db-0", true), Plan::Bootstrap);
        assert_eq!(fresh(Data::Empty, None, "db-1", false), Plan::Wait);
        // A Lease means a primary existed: never a second initdb.
        assert_eq!(
            fresh(Data::Empty, Some(&held("db-1")), "db-0", true),
            Plan::Clone
        );
    }

    #[test]
    fn an_empty_instance_clones_only_from_a_live_primary() {
        assert_eq!(
            fresh(Data::Empty, Some(&held("db-0")), "db-1", false),
            Plan::Clone
        );
        assert_eq!(
            expired(Data::Empty, Some(&held("db-0")), "db-1", false),
            Plan::Wait
        );
        assert_eq!(
            expired(Data::Empty, Some(&held("")), "db-1", false),
            Plan::Wait
        );
        // Its own Lease without data: it cannot lead, it waits for a standby to take over.
        assert_eq!(
            fresh(Data::Empty, Some(&held("db-1")), "db-1", false),
            Plan::Wait
        );
    }

    #[test]
    fn a_former_primary_leads_only_with_its_own_or_no_lease() {
        assert_eq!(fresh(Data::Primary, None, "db-0", true), Plan::Lead);
        assert_eq!(
            expired(Data::Primary, Some(&held("db-0")), "db-0", true),
            Plan::Lead
        );
        assert_eq!(
            fresh(Data::Primary, Some(&held("db-1")), "db-0", true),
            Plan::Rejoin
        );
        assert_eq!(
            expired(Data::Primary, Some(&held("db-1")), "db-0", true),
            Plan::Wait
        );
    }

    #[test]
    fn a_released_lease_goes_to_a_standby_first() {
        assert_eq!(
            expired(Data::Primary, Some(&held("")), "db-0", true),
            Plan::Wait
        );
        let released_long = plan(Data::Primary, Some(&held("")), "db-0", true, true, true);
        assert_eq!(released_long, Plan::Lead);
    }

    #[test]
    fn a_prepared_recovery_replays_before_anyone_leads() {
        assert_eq!(fresh(Data::Recovering, None, "db-0", true), Plan::Recover);
        assert_eq!(
            fresh(Data::Recovering, Some(&held("db-0")), "db-0", true),
            Plan::Recover
        );
        assert_eq!(
            fresh(Data::Recovering, Some(&held("db-1")), "db-0", true),
            Plan::Wait
        );
        // The others wait for the recovered primary's Lease, then clone it.
        assert_eq!(fresh(Data::Empty, None, "db-1", false), Plan::Wait);
    }

    #[test]
    fn the_data_directory_says_what_it_holds() {
        let dir = std::env::temp_dir().join(format!("pgop-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Data::of(&dir), Data::Empty);
        std::fs::write(dir.join("PG_VERSION"), "17").unwrap();
        assert_eq!(Data::of(&dir), Data::Primary);
        // A recovery.signal alone is not ours to interpret.
        std::fs::write(dir.join("recovery.signal"), "").unwrap();
        assert_eq!(Data::of(&dir), Data::Primary);
        std::fs::write(dir.join(RECOVERY_FILE), "{}").unwrap();
        assert_eq!(Data::of(&dir), Data::Recovering);
        // Promoted: PostgreSQL removed recovery.signal.
        std::fs::remove_file(dir.join("recovery.signal")).unwrap();
        assert_eq!(Data::of(&dir), Data::Primary);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_standby_follows_whatever_the_lease_says() {
        assert_eq!(fresh(Data::Standby, None, "db-1", false), Plan::Follow);
        assert_eq!(
            expired(Data::Standby, Some(&held("db-0")), "db-1", false),
            Plan::Follow
        );
    }
}
