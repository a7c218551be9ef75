//! The pure parts of the failover benchmark (`benches/failover`, `just bench-failover`): the
//! faults it puts on the primary, its settings, reading pgbench's and pg_stat_replication's
//! output, and the tables it prints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};

use crate::settings::number;
use crate::stats::Summary;
use crate::table::Table;

/// What happens to the primary in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Its postmaster killed with SIGKILL; the instance manager starts it again in place.
    ProcessKilled,
    /// Its Pod deleted: a clean stop, the Lease given up.
    PodDeleted,
    /// Its node stopped like a crashed machine.
    NodeStopped,
    /// Its node frozen like a hung machine.
    NodeFrozen,
    /// Its node cut off from the other nodes and the API server.
    NodePartitioned,
    /// A planned switchover to a standby.
    Switchover,
}

impl Kind {
    /// In the order they run.
    pub const ALL: [Kind; 6] = [
        Kind::ProcessKilled,
        Kind::PodDeleted,
        Kind::NodeStopped,
        Kind::NodeFrozen,
        Kind::NodePartitioned,
        Kind::Switchover,
    ];

    /// Its name in `BENCH_FAILOVER_KINDS`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ProcessKilled => "process-killed",
            Kind::PodDeleted => "pod-deleted",
            Kind::NodeStopped => "node-stopped",
            Kind::NodeFrozen => "node-frozen",
            Kind::NodePartitioned => "node-partitioned",
            Kind::Switchover => "switchover",
        }
    }

    /// What is done, for the tables.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::ProcessKilled => "primary's postgres killed (SIGKILL of the postmaster)",
            Kind::PodDeleted => "primary's Pod deleted",
            Kind::NodeStopped => "primary's node stopped",
            Kind::NodeFrozen => "primary's node frozen",
            Kind::NodePartitioned => "primary's node partitioned",
            Kind::Switchover => "switchover to a standby",
        }
    }

    /// The goal of issue 16, on the 95th percentile: of the time to the first write on the
    /// new primary for a fault, of the longest pause of writes for a switchover.
    pub fn goal(self) -> Duration {
        match self {
            Kind::ProcessKilled | Kind::PodDeleted => Duration::from_secs(5),
            Kind::NodeStopped | Kind::NodeFrozen | Kind::NodePartitioned => Duration::from_secs(20),
            Kind::Switchover => Duration::from_secs(2),
        }
    }

    /// The figure the goal is about, taken from a run.
    pub fn judged(self, run: &Run) -> Duration {
        match self {
            Kind::Switchover => run.paused,
            _ => run.to_new_primary,
        }
    }

    fn goal_text(self) -> String {
        let figure = match self {
            Kind::Switchover => "pause",
            _ => "first write",
        };
        format!("{figure} p95 < {} s", self.goal().as_secs())
    }
}

/// What one run measured, on the benchmark's clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    /// From the fault until the first commit through the read-write Service that a server
    /// other than the old primary acknowledged (for a killed postmaster: the one started again
    /// in its place). The fault is the moment its command was issued (or the switchover asked
    /// for), except for the killed postmaster: the moment of the kill.
    pub to_new_primary: Duration,
    /// The longest time without an acknowledged commit, from the last one before the fault
    /// until 2 s after the first on the new primary.
    pub paused: Duration,
    /// How long the fault's command took to return (`kubectl exec`, the API call, or
    /// `hack/node.sh`); it counts in [`Run::to_new_primary`], but for the killed postmaster.
    pub applying: Duration,
}

/// The runs of one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub kind: Kind,
    pub runs: Vec<Run>,
}

/// The benchmark's settings, from its environment variables.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `BENCH_FAILOVER_RUNS`: runs of each kind (10).
    pub runs: usize,
    /// `BENCH_FAILOVER_KINDS`: comma-separated names of [`Kind`]s (all of them).
    pub kinds: Vec<Kind>,
    /// `BENCH_LAG_SECONDS`: how long pgbench runs for the lag part (60); 0 skips it.
    pub lag_seconds: u64,
    /// `BENCH_LAG_RATE`: the transactions per second pgbench is held to (200).
    pub lag_rate: u32,
}

impl Settings {
    /// From the variables' values (`None` when unset).
    pub fn from_values(
        runs: Option<&str>,
        kinds: Option<&str>,
        lag_seconds: Option<&str>,
        lag_rate: Option<&str>,
    ) -> Result<Settings> {
        let settings = Settings {
            runs: number("BENCH_FAILOVER_RUNS", runs, 10)?,
            kinds: parse_kinds(kinds)?,
            lag_seconds: number("BENCH_LAG_SECONDS", lag_seconds, 60)?,
            lag_rate: number("BENCH_LAG_RATE", lag_rate, 200)?,
        };
        if settings.runs == 0 {
            bail!("BENCH_FAILOVER_RUNS=0: at least one run of each kind");
        }
        if settings.lag_rate == 0 {
            bail!("BENCH_LAG_RATE=0: pgbench needs a rate above 0 (BENCH_LAG_SECONDS=0 skips it)");
        }
        Ok(settings)
    }
}

/// The kinds named in `value`, in the order of [`Kind::ALL`]; all of them when unset.
fn parse_kinds(value: Option<&str>) -> Result<Vec<Kind>> {
    let Some(list) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Kind::ALL.to_vec());
    };
    let mut named = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == item) else {
            let known: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
            bail!(
                "BENCH_FAILOVER_KINDS={list:?}: {item:?} is none of {}",
                known.join(", ")
            );
        };
        named.push(kind);
    }
    Ok(Kind::ALL
        .into_iter()
        .filter(|k| named.contains(k))
        .collect())
}

/// The failover table: per kind, the runs' median, p95 and max of both figures, and the goal.
pub fn failover_table(measured: &[Measured]) -> String {
    let mut table = Table::new(
        [
            "runs",
            "to the first write on the new primary: median / p95 / max",
            "longest pause of writes: median / p95 / max",
            "goal",
            "met",
        ]
        .map(String::from)
        .to_vec(),
    );
    for m in measured {
        let figures = |figure: fn(&Run) -> Duration| {
            let sample: Vec<Duration> = m.runs.iter().map(figure).collect();
            Summary::of(&sample)
        };
        let (Some(to_new), Some(paused), Some(judged)) = (
            figures(|r| r.to_new_primary),
            figures(|r| r.paused),
            Summary::of(&m.runs.iter().map(|r| m.kind.judged(r)).collect::<Vec<_>>()),
        ) else {
            continue;
        };
        let met = if judged.p95 < m.kind.goal() {
            "yes"
        } else {
            "no"
        };
        table.row(
            m.kind.describe(),
            vec![
                m.runs.len().to_string(),
                three(&to_new),
                three(&paused),
                m.kind.goal_text(),
                met.to_string(),
            ],
        );
    }
    table.render()
}

fn three(summary: &Summary) -> String {
    format!(
        "{} / {} / {}",
        seconds_2(summary.median),
        seconds_2(summary.p95),
        seconds_2(summary.max)
    )
}

/// Seconds with two decimals: the writer's pace is 50 ms.
fn seconds_2(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// Every run's figures, one line per kind, so that a p95 over few runs can be read for what
/// it is.
pub fn every_run(measured: &[Measured]) -> String {
    measured
        .iter()
        .map(|m| {
            let list = |figure: fn(&Run) -> Duration| {
                m.runs
                    .iter()
                    .map(|r| seconds_2(figure(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "- {}: first write on the new primary after {}; writes paused {}; the fault's \
                 command took {}.",
                m.kind.describe(),
                list(|r| r.to_new_primary),
                list(|r| r.paused),
                list(|r| r.applying),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The moment on this process's clock (`now`, read at `wall_now`) of the wall-clock time that
/// `date +%s%N` printed on the first line of `printed`, on the same machine.
pub fn moment_of(printed: &str, wall_now: SystemTime, now: Instant) -> Option<Instant> {
    let nanos: u64 = printed.lines().next()?.trim().parse().ok()?;
    let then = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
    // A time after `wall_now` (a clock step between the two readings) counts as now.
    let ago = wall_now.duration_since(then).unwrap_or_default();
    now.checked_sub(ago)
}

/// Each standby's replay lag in bytes from `application_name|bytes,...`, as psql prints
/// `string_agg` over pg_stat_replication; rows that do not read are skipped.
pub fn lag_rows(text: &str) -> Vec<(String, u64)> {
    text.trim()
        .split(',')
        .filter_map(|row| {
            let (name, bytes) = row.trim().split_once('|')?;
            Some((name.to_string(), bytes.trim().parse().ok()?))
        })
        .collect()
}

/// The throughput pgbench reports: `tps = 199.412 (without initial connection time)`.
pub fn pgbench_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// The lag table: per standby and over both, the samples' median, p95 and max.
pub fn lag_table(samples: &BTreeMap<String, Vec<u64>>) -> String {
    let mut table = Table::new(
        ["samples", "median", "p95", "max"]
            .map(String::from)
            .to_vec(),
    );
    let all: Vec<u64> = samples.values().flatten().copied().collect();
    let rows = samples
        .iter()
        .map(|(name, sample)| (name.as_str(), sample.as_slice()))
        .chain(std::iter::once(("every standby", all.as_slice())));
    for (name, sample) in rows {
        let Some(summary) = Summary::of(sample) else {
            table.row(name, vec!["0".into()]);
            continue;
        };
        table.row(
            name,
            vec![
                summary.count.to_string(),
                bytes(summary.median),
                bytes(summary.p95),
                bytes(summary.max),
            ],
        );
    }
    table.render()
}

/// A byte count for tables: exact under 1 KiB, else KiB or MiB with one decimal.
pub fn bytes(count: u64) -> String {
    const KIB: f64 = 1024.0;
    match count as f64 {
        n if n < KIB => format!("{count} B"),
        n if n < KIB * KIB => format!("{:.1} KiB", n / KIB),
        n => format!("{:.1} MiB", n / KIB / KIB),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(to_new_ms: u64, paused_ms: u64) -> Run {
        Run {
            to_new_primary: Duration::from_millis(to_new_ms),
            paused: Duration::from_millis(paused_ms),
            applying: Duration::from_millis(300),
        }
    }

    #[test]
    fn settings_default_to_ten_runs_of_every_kind_and_a_minute_of_lag() {
        let settings = Settings::from_values(None, None, None, None).unwrap();
        assert_eq!(
            settings,
            Settings {
                runs: 10,
                kinds: Kind::ALL.to_vec(),
                lag_seconds: 60,
                lag_rate: 200,
            }
        );
    }

    #[test]
    fn kinds_are_named_and_run_in_their_fixed_order() {
        let settings =
            Settings::from_values(Some("2"), Some("switchover, pod-deleted"), Some("0"), None)
                .unwrap();
        assert_eq!(settings.runs, 2);
        assert_eq!(settings.kinds, [Kind::PodDeleted, Kind::Switchover]);
        assert_eq!(settings.lag_seconds, 0);
    }

    #[test]
    fn settings_that_do_not_read_are_refused() {
        let error = Settings::from_values(None, Some("pod-deleted,reboot"), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("reboot") && error.contains("node-frozen"),
            "{error}"
        );
        let error = Settings::from_values(Some("ten"), None, None, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("BENCH_FAILOVER_RUNS"), "{error}");
        assert!(Settings::from_values(Some("0"), None, None, None).is_err());
        assert!(Settings::from_values(None, None, None, Some("0")).is_err());
    }

    #[test]
    fn goals_are_on_the_first_write_for_faults_and_on_the_pause_for_a_switchover() {
        let r = run(4_000, 6_000);
        assert_eq!(Kind::PodDeleted.judged(&r), Duration::from_millis(4_000));
        assert_eq!(Kind::Switchover.judged(&r), Duration::from_millis(6_000));
        assert_eq!(Kind::NodeFrozen.goal(), Duration::from_secs(20));
        assert_eq!(Kind::ProcessKilled.goal(), Duration::from_secs(5));
    }

    #[test]
    fn the_failover_table_judges_each_kind_by_its_p95() {
        let measured = [
            Measured {
                kind: Kind::ProcessKilled,
                runs: vec![run(3_000, 3_100), run(4_900, 5_000), run(2_000, 2_100)],
            },
            Measured {
                kind: Kind::Switchover,
                runs: vec![run(1_500, 1_000), run(1_600, 2_500)],
            },
            Measured {
                kind: Kind::NodeStopped,
                runs: Vec::new(),
            },
        ];
        assert_eq!(
            failover_table(&measured),
            "\
| | runs | to the first write on the new primary: median / p95 / max | longest pause of writes: median / p95 / max | goal | met |
|---|---|---|---|---|---|
| primary's postgres killed (SIGKILL of the postmaster) | 3 | 3.00 s / 4.90 s / 4.90 s | 3.10 s / 5.00 s / 5.00 s | first write p95 < 5 s | yes |
| switchover to a standby | 2 | 1.50 s / 1.60 s / 1.60 s | 1.00 s / 2.50 s / 2.50 s | pause p95 < 2 s | no |"
        );
        assert_eq!(
            every_run(&measured[1..2]),
            "- switchover to a standby: first write on the new primary after 1.50 s, 1.60 s; \
             writes paused 1.00 s, 2.50 s; the fault's command took 0.30 s, 0.30 s."
        );
    }

    #[test]
    fn the_moment_printed_by_date_on_this_clock() {
        let now = Instant::now() + Duration::from_secs(10);
        let wall_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        let printed = "1764999997750000000\n";
        assert_eq!(
            moment_of(printed, wall_now, now),
            Some(now - Duration::from_millis(2_250))
        );
        // Printed after the reading: now.
        assert_eq!(moment_of("1765000001000000000", wall_now, now), Some(now));
        assert_eq!(moment_of("", wall_now, now), None);
        assert_eq!(moment_of("yesterday\n", wall_now, now), None);
    }

    #[test]
    fn lag_rows_and_pgbench_throughput_read_from_their_output() {
        assert_eq!(
            lag_rows("shop-1|0,shop-2|8192\n"),
            [("shop-1".to_string(), 0), ("shop-2".to_string(), 8192)]
        );
        assert_eq!(lag_rows(""), []);
        assert_eq!(lag_rows("shop-1|,shop-2|x"), []);
        let output =
            "latency average = 2.698 ms\ntps = 101.296800 (without initial connection time)\n";
        assert_eq!(pgbench_tps(output), Some(101.2968));
        assert_eq!(pgbench_tps("no summary"), None);
    }

    #[test]
    fn the_lag_table_has_each_standby_and_both() {
        let samples = BTreeMap::from([
            ("shop-0".to_string(), vec![0, 0, 2048, 0]),
            ("shop-2".to_string(), vec![0, 3_000_000]),
        ]);
        assert_eq!(
            lag_table(&samples),
            "\
| | samples | median | p95 | max |
|---|---|---|---|---|
| shop-0 | 4 | 0 B | 2.0 KiB | 2.0 KiB |
| shop-2 | 2 | 0 B | 2.9 MiB | 2.9 MiB |
| every standby | 6 | 0 B | 2.9 MiB | 2.9 MiB |"
        );
        assert_eq!(bytes(1023), "1023 B");
    }
}
