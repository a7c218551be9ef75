//! Which standby takes over an expired Lease: the most advanced one that can be reached.
//!
//! Every standby that sees the Lease expire asks the others (over SQL, at their Pods'
//! addresses) how far they have received WAL. It tries to take the Lease only when nobody
//! reachable is ahead of it (ties go to the smaller Pod name), and not at all when another
//! instance is already out of recovery. The conditional write of the Lease makes the final
//! choice, so two standbys that both think themselves best cannot both win.

use anyhow::Result;

use crate::postgres::{self, parse_lsn};
use crate::start::Instance;

/// One peer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub in_recovery: bool,
    pub received: Option<u64>,
}

/// Whether `me`, having received up to `mine`, should try to take the Lease, given the peers
/// that answered (pure).
pub fn should_try(me: &str, mine: Option<u64>, peers: &[Peer]) -> bool {
    let Some(mine) = mine else {
        return false;
    };
    peers.iter().all(|peer| {
        if !peer.in_recovery {
            return false;
        }
        match peer.received {
            None => true,
            Some(theirs) => theirs < mine || (theirs == mine && me < peer.name.as_str()),
        }
    })
}

/// How far this standby has received WAL (what it would have if promoted now).
pub async fn received(instance: &Instance) -> Result<Option<u64>> {
    let text = postgres::query_local(
        &instance.config,
        "SELECT coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())",
    )
    .await?;
    Ok(parse_lsn(&text))
}

/// The other standbys' answers, and how many standbys (this one included) there are.
#[derive(Debug)]
pub struct Candidates {
    pub answered: Vec<Peer>,
    pub standbys: usize,
}

/// Asks every other instance but `lost` (the holder whose Lease expired), all at once; those
/// that do not answer within a second are left out, so the election takes about a second
/// however many instances a lost zone took with it.
pub async fn peers(instance: &Instance, lost: &str) -> Result<Candidates> {
    let config = &instance.config;
    let names = crate::pods::instances(&instance.client, config).await?;
    // One instance was the primary (`lost`, or whoever released the Lease); the others were
    // its standbys.
    let standbys = names.len().saturating_sub(1);
    let mut asking = tokio::task::JoinSet::new();
    for name in names.into_iter().filter(|n| *n != config.pod && n != lost) {
        asking.spawn(ask(instance.clone(), name));
    }
    let mut answered = Vec::new();
    while let Some(answer) = asking.join_next().await {
        if let Ok(Some(peer)) = answer {
            answered.push(peer);
        }
    }
    // In name order, as the log and the tests read them.
    answered.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Candidates { answered, standbys })
}

/// One peer's answer, by its Pod's address; `None` when it has none or does not answer.
async fn ask(instance: Instance, name: String) -> Option<Peer> {
    let config = &instance.config;
    let host = match crate::pods::address(&instance.client, config, &name).await {
        Ok(Some(ip)) => ip,
        Ok(None) => {
            tracing::info!(peer = %name, "peer has no address; left out");
            return None;
        }
        Err(e) => {
            tracing::info!(peer = %name, error = %format!("{e:#}"), "peer not found; left out");
            return None;
        }
    };
    let sql =
        "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())";
    match postgres::query_remote(config, &host, sql).await {
        Ok(line) => {
            let (recovery, lsn) = line.split_once('|').unwrap_or((line.as_str(), ""));
            Some(Peer {
                name,
                in_recovery: recovery == "t",
                received: parse_lsn(lsn),
            })
        }
        Err(e) => {
            tracing::info!(peer = %name, error = %e, "peer did not answer; left out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standby(name: &str, received: u64) -> Peer {
        Peer {
            name: name.to_string(),
            in_recovery: true,
            received: Some(received),
        }
    }

    #[test]
    fn the_most_advanced_standby_tries_and_ties_go_to_the_smaller_name() {
        assert!(should_try("db-1", Some(10), &[standby("db-2", 9)]));
        assert!(!should_try("db-1", Some(10), &[standby("db-2", 11)]));
        assert!(should_try("db-1", Some(10), &[standby("db-2", 10)]));
        assert!(!should_try("db-2", Some(10), &[standby("db-1", 10)]));
        assert!(should_try("db-1", Some(10), &[]));
    }

    #[test]
    fn nobody_tries_while_another_instance_is_a_primary() {
        let primary = Peer {
            in_recovery: false,
            ..standby("db-2", 0)
        };
        assert!(!should_try("db-1", Some(10), &[primary]));
    }

    #[test]
    fn a_standby_that_received_nothing_does_not_try() {
        assert!(!should_try("db-1", None, &[]));
    }
}
