//! The scale part's Markdown: one table with a column per run (each size; this tree, the
//! baseline and the controller-runtime operator side by side, see [`bench::scale_table`]), so
//! a difference shows as neighbouring cells.

use bench::{
    figures::Scale,
    scale_table::{Options, scale_table},
    table::column,
};

use crate::{
    conditions::{Conditions, describe},
    cpu, operators,
};

/// The commit the baseline columns ran, and the revision it was asked for by.
pub struct Baseline<'a> {
    pub hash: &'a str,
    pub revision: &'a str,
}

/// The other implementation whose columns are in the table.
pub struct Compared<'a> {
    /// The label of its columns.
    pub label: &'a str,
    /// The controller-runtime version it was built with.
    pub version: &'a str,
    /// Reconciles in flight per controller it was given.
    pub workers: &'a str,
}

pub fn print(
    runs: &[Scale],
    baseline: Option<Baseline>,
    compared: Option<Compared>,
    before: &Conditions,
    after: &Conditions,
) {
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
    match compared {
        Some(c) => println!(
            "Columns `{}` are `bench/controller-runtime`, a Go operator on controller-runtime \
             {} doing both operators' job for these objects in one process (what it does and \
             does not do is at the top of its `main.go`), with informer caches of the \
             namespace and {} reconciles in flight per controller, as ours; measured right \
             after ours at each N under its own ServiceAccount, whose Role grants only what \
             it calls. Its writes are counted from the audit log as ours are; its requests \
             from client-go's debugging round tripper, which it runs to log one `Response` \
             line (verb and URL) per request, named here as kube names ours (a PUT is an \
             `update`, discovery a `get_discovery`).\n",
            c.label, c.version, c.workers
        ),
        None => println!("No other operator was measured (`BENCH_COMPARE=none`).\n"),
    }
    let options = Options {
        requests_logged: operators::requests_logged(),
        ticks_per_second: cpu::ticks_per_second(),
    };
    println!("{}\n", scale_table(runs, &options).render());
    if !options.requests_logged {
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
                o.program,
                kinds.join(", ")
            );
        }
    }
}
