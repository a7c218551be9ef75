//! The scale part's Markdown: one table with a column per run (each size, this tree and the
//! baseline side by side), so a change shows as two neighbouring cells.

use bench::{
    readings::mib,
    table::{Table, column, per, per_minute, seconds},
};

use crate::{
    conditions::{Conditions, describe},
    cpu, operators,
    scale::{OperatorFigures, Scale},
};

/// The commit the baseline columns ran, and the revision it was asked for by.
pub struct Baseline<'a> {
    pub hash: &'a str,
    pub revision: &'a str,
}

pub fn print(runs: &[Scale], baseline: Option<Baseline>, before: &Conditions, after: &Conditions) {
    // No number in the heading: `hack/record-bench.py` keys the block by it, and the sizes
    // of a run vary.
    println!("### N Databases and N Backups\n");
    println!("{}\n", describe(before, after));
    match baseline {
        Some(b) => println!(
            "Columns `this` are the binaries of this tree; columns `{}` those of the baseline \
             commit `{}` (`BENCH_BASELINE={}`), built in the same run and measured right \
             after this tree's at each N, with the same settings, each in a namespace of its \
             own.\n",
            b.hash, b.hash, b.revision
        ),
        None => println!("No baseline commit was measured (`BENCH_BASELINE=none`).\n"),
    }
    println!("{}\n", table(runs).render());
    if !operators::requests_logged() {
        println!("Requests were not logged (BENCH_REQUEST_LOG=0).\n");
        return;
    }
    for run in runs {
        for o in &run.operators {
            let kinds: Vec<_> = o
                .busy
                .requests
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            println!(
                "{}, {} requests until idle: {}.\n",
                column(run.count, &run.binaries),
                o.operator.name(),
                kinds.join(", ")
            );
        }
    }
}

fn table(runs: &[Scale]) -> Table {
    let mut table = Table::new(runs.iter().map(|r| column(r.count, &r.binaries)).collect());
    let mut row = |label: &str, cell: &dyn Fn(&Scale) -> String| {
        table.row(label, runs.iter().map(cell).collect());
    };
    let or_timeout =
        |d: Option<std::time::Duration>| d.map_or("not within the timeout".into(), seconds);
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
        r.api_server_cpu.map_or("-".into(), cpu_seconds)
    });

    let names = runs
        .first()
        .map(|r| r.operators.iter().map(|o| o.operator).collect::<Vec<_>>())
        .unwrap_or_default();
    for (i, operator) in names.iter().enumerate() {
        let mut row = |label: &str, cell: &dyn Fn(&OperatorFigures, u64) -> String| {
            let cells = runs
                .iter()
                .map(|r| {
                    r.operators
                        .get(i)
                        .map_or("-".into(), |o| cell(o, r.count as u64))
                })
                .collect();
            table.row(format!("{}: {label}", operator.name()), cells);
        };
        row("reconciles until idle", &|o, _| {
            o.busy.reconciles.to_string()
        });
        if operators::requests_logged() {
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
            per(accepted(o), n)
        });
        row("accepted writes per reconcile (audit log)", &|o, _| {
            per(accepted(o), o.busy.reconciles)
        });
        row("peak RSS (VmHWM)", &|o, _| mib(o.peak_rss));
        row("RSS at the end", &|o, _| mib(o.rss_at_end));
        row("CPU until idle (user + system)", &|o, _| {
            cpu_seconds(o.busy.cpu_ticks)
        });
        let idle = runs.first().map_or_else(Default::default, |r| r.idle);
        let window = format!("{} s idle", idle.as_secs());
        row(
            &format!("{window}: writes per minute (audit log)"),
            &|o, _| per_minute(o.idle.audited_writes as u64, idle),
        );
        if operators::requests_logged() {
            row(&format!("{window}: requests (client log)"), &|o, _| {
                (o.idle.reads() + o.idle.writes()).to_string()
            });
        }
        row(&format!("{window}: reconciles"), &|o, _| {
            o.idle.reconciles.to_string()
        });
    }
    table
}

fn accepted(o: &OperatorFigures) -> u64 {
    (o.busy.audited_writes - o.busy.refused_writes) as u64
}

fn cpu_seconds(ticks: u64) -> String {
    format!("{:.1} s", cpu::seconds(ticks))
}
