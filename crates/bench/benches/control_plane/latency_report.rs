//! The latency part's Markdown. Each part prints under a `### ` heading of its own, which
//! `hack/record-bench.py` uses to file it into docs/performance.md.

use std::time::Duration;

use anyhow::{Result, bail};
use bench::stats::{Summary, ms};

use crate::conditions::{Conditions, describe};
use crate::latency;

pub fn print_latency(
    latency: &latency::Latency,
    before: &Conditions,
    after: &Conditions,
) -> Result<()> {
    let Some(ready) = Summary::of(&latency.ready) else {
        bail!("no Database was measured");
    };
    let summary = |sample: &[Duration]| Summary::of(sample).expect("as many as `ready`");
    println!("### Pod ready → Database Ready\n");
    println!("{}\n", describe(before, after));
    println!("| from | to | median | p95 | min | max |");
    println!("|---|---|---|---|---|---|");
    let row = |from: &str, to: &str, sample: &[Duration]| {
        let s = summary(sample);
        println!(
            "| {from} | {to} | {} | {} | {} | {} |",
            ms(s.median),
            ms(s.p95),
            ms(s.min),
            ms(s.max)
        );
    };
    row("Pod Ready", "Database Ready", &latency.ready);
    row(
        "Pod Ready",
        "StatefulSet counts the ready replica",
        &latency.statefulset_counted,
    );
    row(
        "Pod Ready",
        "EndpointSlice of the client Service has it",
        &latency.endpoint_published,
    );
    row(
        "the later of those two",
        "Database Ready (the operator's part)",
        &latency.operator,
    );
    row(
        "Database created",
        "Pod exists (for context)",
        &latency.pod_created,
    );
    println!(
        "\n{} Databases one after another; the first one before them (warm-up, not counted) \
         took {}.\n",
        ready.count,
        ms(latency.warm_up)
    );
    let all: Vec<_> = latency.ready.iter().map(|d| ms(*d)).collect();
    println!("Every value: {}.\n", all.join(", "));
    Ok(())
}
