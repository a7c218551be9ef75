//! One run: the Database settled, a fault put on its primary (or a switchover asked for), the
//! time until the client's first commit on the new primary, the fault undone.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use api::Database;
use api::names::{ANNOTATION_SWITCHOVER_FROM, ANNOTATION_SWITCHOVER_TO};
use bench::failover::{self, Kind, Run};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use scenarios::Scenario;
use scenarios::replication::{self, Ack, NAME, Server, Writer, first_from_another, longest_pause};
use serde_json::json;
use testenv::{FaultInPlace, NodeFault};

/// How long the Database may take to settle after a run: a node started again, its
/// PostgreSQL rewound onto the new timeline and streaming, on a busy two-core machine.
const SETTLE_WITHIN: Duration = Duration::from_secs(300);

/// How long a run may take to reach a new primary before the benchmark fails: far beyond the
/// goals, so that a slow run is measured rather than cut short.
const RECOVER_WITHIN: Duration = Duration::from_secs(120);

/// How long writes are watched after the first commit on the new primary, for the pause: the
/// read-write Service may still send some connections elsewhere for a moment.
const WATCHED_AFTER: Duration = Duration::from_secs(2);

/// The primary of a settled Database.
pub struct Primary {
    pub name: String,
    pub ip: String,
    pub node: String,
    /// The server the client's commits reach.
    pub server: Server,
}

/// Waits until the Database is settled: all three instances answer and exactly one of them
/// is out of recovery, both others stream from it, the Database's status names it with
/// every instance ready, and the client's commits through the read-write Service reach it.
pub async fn settle(scenario: &Scenario, writer: &Writer) -> Primary {
    let primary = replication::eventually(
        SETTLE_WITHIN,
        "three instances answering, one of them out of recovery",
        || async {
            let states = replication::recovery_states(scenario).await;
            let primaries: Vec<&String> = states
                .iter()
                .filter(|(_, in_recovery)| !in_recovery)
                .map(|(pod, _)| pod)
                .collect();
            Ok((states.len() == 3 && primaries.len() == 1).then(|| primaries[0].clone()))
        },
    )
    .await;
    let pods = replication::pods(scenario).await;
    for standby in pods.iter().filter_map(|p| p.metadata.name.as_deref()) {
        if standby != primary {
            replication::wait_streaming(scenario, &primary, standby, SETTLE_WITHIN).await;
        }
    }
    let databases: Api<Database> = scenario.api();
    replication::eventually(
        SETTLE_WITHIN,
        &format!("the status naming {primary} with three ready instances"),
        || async {
            let status = databases.get(NAME).await?.status.unwrap_or_default();
            Ok((status.current_primary.as_deref() == Some(primary.as_str())
                && status.instances.len() == 3
                && status.instances.iter().all(|i| i.ready))
            .then_some(()))
        },
    )
    .await;
    replication::assert_only_primary(scenario, &primary).await;
    let pod = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(primary.as_str()))
        .expect("the primary's Pod was listed");
    let (ip, node) = (replication::ip_of(pod), replication::node_of(pod));
    let since = Instant::now();
    let server = replication::eventually(
        Duration::from_secs(60),
        &format!("the client's commits reaching {primary} ({ip})"),
        || async {
            Ok(writer
                .acks_since(since)
                .into_iter()
                .find(|a| a.server.address == ip)
                .map(|a| a.server))
        },
    )
    .await;
    Primary {
        name: primary,
        ip,
        node,
        server,
    }
}

/// Puts `kind` on the primary and measures until the first commit on the new primary; then
/// undoes the fault (a node started again, thawed or healed; a Pod or a postmaster comes back
/// by itself).
pub async fn fault(
    scenario: &Scenario,
    writer: &Writer,
    primary: &Primary,
    kind: Kind,
) -> Result<Run> {
    let issued = Instant::now();
    let applied = apply(scenario, primary, kind)
        .await
        .with_context(|| format!("{} on {}", kind.describe(), primary.name))?;
    let applying = issued.elapsed();
    let from = applied.at.unwrap_or(issued);
    let first = first_write_elsewhere(writer, &primary.server, from).await?;
    eprintln!("bench: first write after the fault on {}", first.server);
    let paused = pause(writer, from, &first).await;
    if let Some(in_place) = applied.in_place {
        tokio::task::spawn_blocking(move || in_place.undo())
            .await?
            .context("undoing the fault")?;
    }
    Ok(Run {
        to_new_primary: first.at - from,
        paused,
        applying,
    })
}

/// Asks the primary to hand over to a standby and measures until the first commit on it; then
/// takes the request off the Database, so that the former primary, should it lead again in a
/// later run, does not act on it once more.
pub async fn switchover(scenario: &Scenario, writer: &Writer, primary: &Primary) -> Result<Run> {
    let databases: Api<Database> = scenario.api();
    let status = databases.get(NAME).await?.status.unwrap_or_default();
    let target = status
        .instances
        .iter()
        .find(|i| i.name != primary.name && i.ready)
        .map(|i| i.name.clone())
        .context("no ready standby to switch over to")?;
    let request = json!({"metadata": {"annotations": {
        ANNOTATION_SWITCHOVER_FROM: primary.name,
        ANNOTATION_SWITCHOVER_TO: target,
    }}});
    let issued = Instant::now();
    databases
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&request))
        .await
        .context("asking for a switchover")?;
    let applying = issued.elapsed();
    let first = first_write_elsewhere(writer, &primary.server, issued).await?;
    eprintln!(
        "bench: first write after the switchover to {target} on {}",
        first.server
    );
    let paused = pause(writer, issued, &first).await;
    let done = json!({"metadata": {"annotations": {
        ANNOTATION_SWITCHOVER_FROM: null,
        ANNOTATION_SWITCHOVER_TO: null,
    }}});
    databases
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&done))
        .await
        .context("taking the switchover request off the Database")?;
    Ok(Run {
        to_new_primary: first.at - issued,
        paused,
        applying,
    })
}

/// A fault put on the primary.
struct Applied {
    /// When it took effect, where that is known more closely than by the start of its command.
    at: Option<Instant>,
    /// A fault on the primary's node, to be undone.
    in_place: Option<FaultInPlace>,
}

/// Puts the fault on the primary.
async fn apply(scenario: &Scenario, primary: &Primary, kind: Kind) -> Result<Applied> {
    let node_fault = match kind {
        Kind::ProcessKilled => {
            // The postmaster is the instance manager's only child. `kubectl exec` takes from a
            // few hundred milliseconds to seconds on a busy machine before the kill runs, so
            // the container prints the time just before it: the nodes share this machine's
            // clock.
            let mut exec = tokio::process::Command::from(scenario.cluster().kubectl());
            let output = exec
                .args(["-n", scenario.ns(), "exec", &primary.name, "-c", "postgres"])
                .args(["--", "bash", "-c"])
                .arg("date +%s%N && kill -9 $(head -n1 \"$PGDATA/postmaster.pid\")")
                .output()
                .await?;
            let (wall_now, now) = (SystemTime::now(), Instant::now());
            if !output.status.success() {
                bail!(
                    "kubectl exec: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let printed = String::from_utf8_lossy(&output.stdout);
            let at = failover::moment_of(&printed, wall_now, now)
                .with_context(|| format!("no time of the kill in {printed:?}"))?;
            return Ok(Applied {
                at: Some(at),
                in_place: None,
            });
        }
        Kind::PodDeleted => {
            let pods: Api<Pod> = scenario.api();
            pods.delete(&primary.name, &DeleteParams::default()).await?;
            return Ok(Applied {
                at: None,
                in_place: None,
            });
        }
        Kind::NodeStopped => NodeFault::Stop,
        Kind::NodeFrozen => NodeFault::Freeze,
        Kind::NodePartitioned => NodeFault::Partition,
        Kind::Switchover => bail!("a switchover is no fault"),
    };
    let cluster = scenario.cluster();
    let node = primary.node.clone();
    // hack/node.sh blocks for a fraction of a second; the client's commits go on meanwhile.
    let in_place =
        tokio::task::spawn_blocking(move || cluster.fault_in_place(node_fault, &node)).await??;
    Ok(Applied {
        at: None,
        in_place: Some(in_place),
    })
}

/// The first commit at or after `issued` (the fault) that another server than `old`
/// acknowledged.
async fn first_write_elsewhere(writer: &Writer, old: &Server, issued: Instant) -> Result<Ack> {
    loop {
        if let Some(first) = first_from_another(&writer.acks_since(issued), old, issued) {
            return Ok(first.clone());
        }
        if issued.elapsed() > RECOVER_WITHIN {
            bail!(
                "no commit through the read-write Service reached another server than {old} within {RECOVER_WITHIN:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The longest time without an acknowledged commit, from the last one before `issued` until
/// [`WATCHED_AFTER`] past `first`, the first commit on the new primary; waits until then.
async fn pause(writer: &Writer, issued: Instant, first: &Ack) -> Duration {
    let until = first.at + WATCHED_AFTER;
    tokio::time::sleep_until(until.into()).await;
    let look_back = issued.checked_sub(Duration::from_secs(5)).unwrap_or(issued);
    let acks = writer.acks_since(look_back);
    let from = acks
        .iter()
        .map(|a| a.at)
        .filter(|at| *at <= issued)
        .max()
        .unwrap_or(issued);
    longest_pause(&acks, from, until)
}
