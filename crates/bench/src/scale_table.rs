//! The scale part's table: a column per run (each size; this tree, the baseline and the
//! controller-runtime operator side by side), the figures of all operator processes of a run
//! together, then a block of rows per process, `-` in the columns of runs it was not in.

use std::time::Duration;

use crate::{
    figures::{OperatorFigures, Scale, Window},
    readings::mib,
    table::{Table, column, per, per_minute, seconds},
};

/// How the figures were taken.
pub struct Options {
    /// Whether the operators logged each API request (`BENCH_REQUEST_LOG`), so that the
    /// requests rows have figures.
    pub requests_logged: bool,
    /// The unit of the CPU times (`sysconf(_SC_CLK_TCK)`).
    pub ticks_per_second: u64,
}

pub fn scale_table(runs: &[Scale], options: &Options) -> Table {
    let mut table = Table::new(runs.iter().map(|r| column(r.count, &r.binaries)).collect());
    let cpu = |ticks: u64| format!("{:.1} s", ticks as f64 / options.ticks_per_second as f64);
    let mut row = |label: &str, cell: &dyn Fn(&Scale) -> String| {
        table.row(label, runs.iter().map(cell).collect());
    };
    let or_timeout = |d: Option<Duration>| d.map_or("not within the timeout".into(), seconds);
    row("all objects created (8 requests in flight)", &|r| {
        seconds(r.created_in)
    });
    row(
        "converged: every StatefulSet and Backup status (from the first create)",
        &|r| or_timeout(r.converged_in),
    );
    row("last write before the operators were idle", &|r| {
        or_timeout(r.settled_in)
    });
    row(
        "reached: Databases past Pending / StatefulSets / Backups with status",
        &|r| format!("{} / {} / {}", r.reached.0, r.reached.1, r.reached.2),
    );
    row("phases after the idle window", &|r| {
        let phases: Vec<_> = r.phases.iter().map(|(p, n)| format!("{n} {p}")).collect();
        phases.join(", ")
    });
    row("namespace deleted, everything in it gone", &|r| {
        r.deleted_in
            .map_or("still terminating after 15 min".into(), seconds)
    });
    row("kube-apiserver CPU until idle (whole process)", &|r| {
        r.api_server_cpu.map_or("-".into(), cpu)
    });
    row("operator processes", &|r| {
        let names: Vec<_> = r.operators.iter().map(|o| o.program).collect();
        names.join(" + ")
    });

    let idle = runs.first().map_or_else(Default::default, |r| r.idle);
    let window = format!("{} s idle", idle.as_secs());

    // All processes of a run together: the figures that compare one process doing both jobs
    // with two.
    let together: Vec<OperatorFigures> = runs.iter().map(sum).collect();
    let mut row = |label: &str, cell: &dyn Fn(&OperatorFigures, u64) -> String| {
        let cells = runs
            .iter()
            .zip(&together)
            .map(|(r, o)| cell(o, r.count as u64))
            .collect();
        table.row(format!("all operators: {label}"), cells);
    };
    operator_rows(&mut row, options, &window, idle, &cpu, true);

    let mut programs: Vec<&str> = Vec::new();
    for o in runs.iter().flat_map(|r| &r.operators) {
        if !programs.contains(&o.program) {
            programs.push(o.program);
        }
    }
    for program in programs {
        let mut row = |label: &str, cell: &dyn Fn(&OperatorFigures, u64) -> String| {
            let cells = runs
                .iter()
                .map(|r| {
                    r.operators
                        .iter()
                        .find(|o| o.program == program)
                        .map_or("-".into(), |o| cell(o, r.count as u64))
                })
                .collect();
            table.row(format!("{program}: {label}"), cells);
        };
        operator_rows(&mut row, options, &window, idle, &cpu, false);
    }
    table
}

type Row<'a> = dyn FnMut(&str, &dyn Fn(&OperatorFigures, u64) -> String) + 'a;

/// The rows of one operator (or of all of a run's together, `summed`).
fn operator_rows(
    row: &mut Row,
    options: &Options,
    window: &str,
    idle: Duration,
    cpu: &dyn Fn(u64) -> String,
    summed: bool,
) {
    row("reconciles until idle", &|o, _| {
        o.busy.reconciles.to_string()
    });
    if options.requests_logged {
        row(
            "requests until idle (client log): reads + writes",
            &|o, _| format!("{} + {}", o.busy.reads(), o.busy.writes()),
        );
        row("requests per Database (client log)", &|o, n| {
            per(o.busy.reads() + o.busy.writes(), n)
        });
        row("requests per reconcile (client log)", &|o, _| {
            per(o.busy.reads() + o.busy.writes(), o.busy.reconciles)
        });
    }
    row("writes (API server audit log), of them refused", &|o, _| {
        format!("{}, {}", o.busy.audited_writes, o.busy.refused_writes)
    });
    row("accepted writes per Database (audit log)", &|o, n| {
        per(o.busy.accepted_writes(), n)
    });
    row("accepted writes per reconcile (audit log)", &|o, _| {
        per(o.busy.accepted_writes(), o.busy.reconciles)
    });
    if summed {
        row("peak RSS (VmHWM), added up over the processes", &|o, _| {
            mib(o.peak_rss)
        });
    } else {
        row("peak RSS (VmHWM)", &|o, _| mib(o.peak_rss));
        row("RSS at the end", &|o, _| mib(o.rss_at_end));
    }
    row("CPU until idle (user + system)", &|o, _| {
        cpu(o.busy.cpu_ticks)
    });
    row(
        &format!("{window}: writes per minute (audit log)"),
        &|o, _| per_minute(o.idle.audited_writes as u64, idle),
    );
    if options.requests_logged {
        row(&format!("{window}: requests (client log)"), &|o, _| {
            (o.idle.reads() + o.idle.writes()).to_string()
        });
    }
    row(&format!("{window}: reconciles"), &|o, _| {
        o.idle.reconciles.to_string()
    });
}

/// The figures of every process of `run` added up.
fn sum(run: &Scale) -> OperatorFigures {
    let mut total = OperatorFigures {
        program: "all operators",
        busy: Window::default(),
        idle: Window::default(),
        peak_rss: 0,
        rss_at_end: 0,
    };
    for o in &run.operators {
        total.busy.add(&o.busy);
        total.idle.add(&o.idle);
        total.peak_rss += o.peak_rss;
        total.rss_at_end += o.rss_at_end;
    }
    total
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn figures(program: &'static str, reconciles: u64, writes: usize, mib: u64) -> OperatorFigures {
        let busy = Window {
            reconciles,
            audited_writes: writes,
            refused_writes: 1,
            requests: BTreeMap::from([("watch".into(), 2), ("create".into(), writes as u64)]),
            cpu_ticks: 150,
            ..Window::default()
        };
        OperatorFigures {
            program,
            busy,
            idle: Window::default(),
            peak_rss: mib << 20,
            rss_at_end: mib << 20,
        }
    }

    fn run(binaries: &str, operators: Vec<OperatorFigures>) -> Scale {
        Scale {
            count: 10,
            binaries: binaries.into(),
            created_in: Duration::from_millis(500),
            converged_in: Some(Duration::from_secs(2)),
            settled_in: None,
            reached: (10, 10, 10),
            idle: Duration::from_secs(30),
            phases: BTreeMap::from([("Backups Pending".into(), 10)]),
            operators,
            api_server_cpu: Some(250),
            deleted_in: Some(Duration::from_secs(3)),
        }
    }

    fn rendered(requests_logged: bool) -> String {
        let runs = [
            run(
                "this",
                vec![
                    figures("database-operator", 40, 71, 20),
                    figures("backup-operator", 20, 11, 10),
                ],
            ),
            run(
                "controller-runtime",
                vec![figures("controller-runtime-operator", 90, 101, 40)],
            ),
        ];
        let options = Options {
            requests_logged,
            ticks_per_second: 100,
        };
        scale_table(&runs, &options).render()
    }

    fn line<'a>(table: &'a str, label: &str) -> &'a str {
        let start = format!("| {label} |");
        table
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("no row {label:?} in\n{table}"))
    }

    #[test]
    fn a_column_per_run_and_the_processes_of_each() {
        let table = rendered(true);
        assert!(
            table.starts_with("| | N=10 this | N=10 controller-runtime |\n"),
            "{table}"
        );
        assert_eq!(
            line(&table, "operator processes"),
            "| operator processes | database-operator + backup-operator | controller-runtime-operator |"
        );
        assert_eq!(
            line(
                &table,
                "converged: every StatefulSet and Backup status (from the first create)"
            ),
            "| converged: every StatefulSet and Backup status (from the first create) | 2.0 s | 2.0 s |"
        );
        assert_eq!(
            line(&table, "kube-apiserver CPU until idle (whole process)"),
            "| kube-apiserver CPU until idle (whole process) | 2.5 s | 2.5 s |"
        );
    }

    #[test]
    fn all_operators_of_a_run_are_added_up() {
        let table = rendered(true);
        let rows = [
            ("reconciles until idle", "60 | 90"),
            (
                "requests until idle (client log): reads + writes",
                "4 + 82 | 2 + 101",
            ),
            ("requests per Database (client log)", "8.60 | 10.30"),
            (
                "writes (API server audit log), of them refused",
                "82, 2 | 101, 1",
            ),
            ("accepted writes per Database (audit log)", "8.00 | 10.00"),
            (
                "peak RSS (VmHWM), added up over the processes",
                "30.0 MiB | 40.0 MiB",
            ),
            ("CPU until idle (user + system)", "3.0 s | 1.5 s"),
            ("30 s idle: writes per minute (audit log)", "0.0 | 0.0"),
        ];
        for (label, cells) in rows {
            let label = format!("all operators: {label}");
            assert_eq!(line(&table, &label), format!("| {label} | {cells} |"));
        }
    }

    #[test]
    fn each_process_has_rows_and_a_dash_where_it_did_not_run() {
        let table = rendered(true);
        let rows = [
            ("database-operator: reconciles until idle", "40 | -"),
            ("backup-operator: peak RSS (VmHWM)", "10.0 MiB | -"),
            (
                "controller-runtime-operator: reconciles until idle",
                "- | 90",
            ),
            (
                "controller-runtime-operator: accepted writes per reconcile (audit log)",
                "- | 1.11",
            ),
        ];
        for (label, cells) in rows {
            assert_eq!(line(&table, label), format!("| {label} | {cells} |"));
        }
        let blocks: Vec<_> = table
            .lines()
            .filter(|l| l.contains(": reconciles until idle |"))
            .map(|l| l.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            blocks,
            [
                "| all operators",
                "| database-operator",
                "| backup-operator",
                "| controller-runtime-operator"
            ]
        );
    }

    #[test]
    fn without_the_request_log_there_are_no_request_rows() {
        let table = rendered(false);
        assert!(!table.contains("client log"), "{table}");
        assert!(table.contains("| all operators: reconciles until idle |"));
    }
}
