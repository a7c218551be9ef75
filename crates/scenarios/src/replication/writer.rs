//! A client writing through the read-write Service all along: what an application sees of a
//! failover or a switchover, and which server took each of its commits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::{NAME, psql_on};
use crate::{Scenario, connection_env};

/// How often the [`Writer`] starts a commit.
pub const WRITE_EVERY: Duration = Duration::from_millis(50);

/// How long one commit may take, connecting included, before it counts as unanswered: a commit
/// sent to a server that vanished gets no answer.
const COMMIT_WITHIN: Duration = Duration::from_secs(3);

/// The libpq connect timeout of each commit, in seconds: libpq's smallest (it reads 1 as 2).
const CONNECT_TIMEOUT: &str = "2";

/// Commits in flight at most: more than [`COMMIT_WITHIN`] / [`WRITE_EVERY`], so that commits
/// hanging on a lost server do not slow the pace.
const IN_FLIGHT: u32 = 64;

/// A client numbering its commits through the read-write Service `rw` into the table
/// `commits`, which it creates. It starts one every [`WRITE_EVERY`], each on a connection
/// of its own and without waiting for the ones before: a commit stuck on a server that
/// vanished does not hold back the next, so the first commit a new primary takes is seen
/// within about [`WRITE_EVERY`] of when it could be taken.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    started: Instant,
    /// Returns how many commits it started.
    task: tokio::task::JoinHandle<i32>,
}

/// One acknowledged commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// Its number, the row it inserted.
    pub n: i32,
    /// When psql was started for it.
    pub sent: Instant,
    /// When psql returned with its success.
    pub at: Instant,
    /// The server that committed it.
    pub server: Server,
}

/// A PostgreSQL server as a client can tell it apart: its address and when its postmaster
/// started, so that a postmaster started again at the same address is another server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    pub address: String,
    pub started: String,
}

impl Server {
    /// The server from what psql prints for the writer's query: its last line,
    /// `<address>|<postmaster start time>`.
    pub fn parse(output: &str) -> Option<Server> {
        let line = output.lines().rev().find(|l| !l.trim().is_empty())?;
        let (address, started) = line.trim().split_once('|')?;
        (!address.is_empty() && !started.is_empty()).then(|| Server {
            address: address.to_string(),
            started: started.to_string(),
        })
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (up since {})", self.address, self.started)
    }
}

/// Asked after each insert, in the same transaction: which server answered.
const IDENTIFY: &str = "SELECT host(inet_server_addr()) || '|' || pg_postmaster_start_time()";

/// What the [`Writer`] saw.
#[derive(Debug)]
pub struct Written {
    /// The numbers whose commit returned successfully, in order.
    pub acknowledged: Vec<i32>,
    /// The longest time without an acknowledged commit, from the start until the stop.
    pub longest_gap: Duration,
    /// Every acknowledged commit, in the order they were acknowledged.
    pub acks: Vec<Ack>,
    /// How many commits were started, acknowledged or not.
    pub attempted: i32,
    /// From the start until the stop.
    pub ran: Duration,
}

impl Writer {
    pub async fn start(scenario: &Scenario, rw: &str) -> Writer {
        psql_on(scenario, rw, "CREATE TABLE commits (n int primary key)")
            .await
            .unwrap();
        let env = connection_env(&scenario.client(), scenario.ns(), NAME)
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let rw = rw.to_string();
        let (stopped, acked) = (stop.clone(), acks.clone());
        let task = tokio::spawn(async move {
            let in_flight = Arc::new(Semaphore::new(IN_FLIGHT as usize));
            let mut tick = tokio::time::interval(WRITE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0;
            while !stopped.load(Ordering::Relaxed) {
                tick.tick().await;
                let permit = in_flight.clone().acquire_owned().await.unwrap();
                n += 1;
                let mut insert = tokio::process::Command::new("psql");
                insert
                    .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c"])
                    .arg(format!("INSERT INTO commits VALUES ({n}); {IDENTIFY}"))
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .env("PGHOST", &rw)
                    .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT)
                    .kill_on_drop(true);
                let acked = acked.clone();
                tokio::spawn(async move {
                    let sent = Instant::now();
                    if let Ok(Ok(output)) =
                        tokio::time::timeout(COMMIT_WITHIN, insert.output()).await
                        && output.status.success()
                        && let Some(server) =
                            Server::parse(&String::from_utf8_lossy(&output.stdout))
                    {
                        // Timed under the lock, so the list stays in the order of `at`.
                        let mut acked = acked.lock().unwrap();
                        let at = Instant::now();
                        acked.push(Ack {
                            n,
                            sent,
                            at,
                            server,
                        });
                    }
                    drop(permit);
                });
            }
            // The commits in flight are answered or given up.
            let _all = in_flight.acquire_many(IN_FLIGHT).await;
            n
        });
        Writer {
            stop,
            acks,
            started: Instant::now(),
            task,
        }
    }

    /// The commits acknowledged at or after `since`, so far, in the order they were.
    pub fn acks_since(&self, since: Instant) -> Vec<Ack> {
        let acks = self.acks.lock().unwrap();
        // Pushed as they are acknowledged: the ones wanted are at the end.
        let first = acks.partition_point(|a| a.at < since);
        acks[first..].to_vec()
    }

    pub async fn stop(self) -> Written {
        self.stop.store(true, Ordering::Relaxed);
        let attempted = self.task.await.unwrap();
        let stopped = Instant::now();
        let acks = std::mem::take(&mut *self.acks.lock().unwrap());
        let mut acknowledged: Vec<i32> = acks.iter().map(|a| a.n).collect();
        acknowledged.sort_unstable();
        Written {
            acknowledged,
            longest_gap: longest_pause(&acks, self.started, stopped),
            acks,
            attempted,
            ran: stopped - self.started,
        }
    }
}

/// The first commit acknowledged at or after `since` by another server than `old`: after a
/// failover, the first write the new primary took (after a restart in place, the restarted
/// postmaster's first).
pub fn first_from_another<'a>(acks: &'a [Ack], old: &Server, since: Instant) -> Option<&'a Ack> {
    acks.iter()
        .filter(|a| a.at >= since && a.server != *old)
        .min_by_key(|a| a.at)
}

/// The longest stretch between `from` and `until` without an acknowledged commit.
pub fn longest_pause(acks: &[Ack], from: Instant, until: Instant) -> Duration {
    let mut times: Vec<Instant> = acks
        .iter()
        .map(|a| a.at)
        .filter(|at| (from..=until).contains(at))
        .collect();
    times.sort_unstable();
    std::iter::once(from)
        .chain(times)
        .chain(std::iter::once(until))
        .collect::<Vec<_>>()
        .windows(2)
        .map(|pair| pair[1].saturating_duration_since(pair[0]))
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(address: &str, started: &str) -> Server {
        Server {
            address: address.into(),
            started: started.into(),
        }
    }

    fn ack(origin: Instant, n: i32, at_ms: u64, server: &Server) -> Ack {
        let at = origin + Duration::from_millis(at_ms);
        Ack {
            n,
            sent: at,
            at,
            server: server.clone(),
        }
    }

    #[test]
    fn the_server_is_the_last_line_psql_prints() {
        let printed = "INSERT 0 1\n10.244.1.7|2026-12-05 22:27:01.123456+00\n";
        assert_eq!(
            Server::parse(printed),
            Some(server("10.244.1.7", "2026-12-05 22:27:01.123456+00"))
        );
        assert_eq!(Server::parse("10.244.1.7\n"), None);
        assert_eq!(Server::parse(""), None);
    }

    #[test]
    fn the_first_commit_of_another_server_after_the_fault() {
        let origin = Instant::now();
        let old = server("10.0.0.1", "t0");
        let restarted = server("10.0.0.1", "t1");
        let other = server("10.0.0.2", "t0");
        let acks = [
            ack(origin, 1, 100, &old),
            // Before the fault: not an answer to it, even from another server.
            ack(origin, 2, 200, &other),
            // After the fault, the old server still answering a session it had.
            ack(origin, 3, 1_100, &old),
            ack(origin, 5, 4_000, &restarted),
            ack(origin, 4, 3_000, &other),
        ];
        let fault = origin + Duration::from_secs(1);
        assert_eq!(first_from_another(&acks, &old, fault).map(|a| a.n), Some(4));
        // The same address with a postmaster started again counts as another server.
        let others_gone = [acks[0].clone(), acks[2].clone(), acks[3].clone()];
        assert_eq!(
            first_from_another(&others_gone, &old, fault).map(|a| a.n),
            Some(5)
        );
        assert_eq!(first_from_another(&acks[..3], &old, fault), None);
    }

    #[test]
    fn the_longest_pause_counts_the_edges_of_the_window() {
        let origin = Instant::now();
        let one = server("10.0.0.1", "t0");
        let at = |ms| origin + Duration::from_millis(ms);
        let acks = [
            ack(origin, 1, 100, &one),
            ack(origin, 3, 1_900, &one),
            ack(origin, 2, 150, &one),
            ack(origin, 4, 2_000, &one),
        ];
        assert_eq!(
            longest_pause(&acks, at(0), at(2_500)),
            Duration::from_millis(1_750)
        );
        // Only what lies within the window counts.
        assert_eq!(
            longest_pause(&acks, at(1_950), at(2_100)),
            Duration::from_millis(100)
        );
        // Nothing acknowledged: the whole window.
        assert_eq!(longest_pause(&[], at(0), at(3_000)), Duration::from_secs(3));
    }
}
