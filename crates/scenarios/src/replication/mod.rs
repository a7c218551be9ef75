//! A replicated Database on the three-node cluster and the questions asked of its instances:
//! shared by the replication tests (`tests/replication`) and the failover benchmark
//! (`crates/bench/benches/failover`).

mod writer;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::Database;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use testenv::Operator;

pub use crate::event_notes;
use crate::{POD_START, Scenario, connection_env, database_ready, node_database};

pub use writer::{Ack, Server, Writer, Written, first_from_another, longest_pause};

/// The Database's name, in each scenario's own namespace.
pub const NAME: &str = "shop";

/// Starts the database-operator and a Database of `replicas` instances, and waits until it
/// is Ready with every instance ready.
pub async fn ready_database(scenario: &mut Scenario, replicas: i32) -> Database {
    ready(scenario, replicas, 0).await
}

/// [`ready_database`] whose commits wait for `synchronous` standbys. Each instance runs on
/// its own node, so that losing a node loses one instance: with only a preferred spread, the
/// scheduler may put two on one node (as it did while a node was coming back from a previous
/// test), and a test that stops that node would lose the primary and a standby at once.
pub async fn ready(scenario: &mut Scenario, replicas: i32, synchronous: i32) -> Database {
    scenario.start(Operator::Database).await;
    let db = node_database(NAME)
        .replicas(replicas)
        .synchronous_standbys(synchronous)
        .one_instance_per_node();
    scenario.apply(&db.manifest()).await;
    let databases: Api<Database> = scenario.api();
    let all_ready = |db: &Database| {
        database_ready(Some(db))
            && db.status.as_ref().is_some_and(|s| {
                s.instances.len() == replicas as usize && s.instances.iter().all(|i| i.ready)
            })
    };
    // Polled rather than watched: a replicated Database takes a while, and the wait must not
    // hinge on one watch surviving.
    let deadline = Instant::now() + POD_START * 2;
    loop {
        match databases.get(NAME).await {
            Ok(db) if all_ready(&db) => return db,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Ok(db) => scenario.fail(anyhow::anyhow!(
                "Database {NAME} with {replicas} ready instances within {:?}; last status: {:?}",
                POD_START * 2,
                db.status
            )),
            Err(e) => scenario.fail(e.into()),
        }
    }
}

/// Runs `sql` through psql on `host` (a Service name or a Pod IP) as the Database's owner.
pub async fn psql_on(scenario: &Scenario, host: &str, sql: &str) -> Result<String> {
    let mut env = connection_env(&scenario.client(), scenario.ns(), NAME).await?;
    for (key, value) in env.iter_mut() {
        if *key == "PGHOST" {
            *value = host.to_string();
        }
        if *key == "PGCONNECT_TIMEOUT" {
            *value = "3".to_string();
        }
    }
    let output = tokio::process::Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .context("running psql")?;
    if !output.status.success() {
        bail!(
            "psql on {host}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs `sql` on `ip` from inside `node`'s own network namespace on this machine: what the
/// node's own clients see, whatever cuts it off from the others.
pub async fn psql_inside_node(
    scenario: &Scenario,
    node: &str,
    ip: &str,
    sql: &str,
) -> Result<String> {
    let env = connection_env(&scenario.client(), scenario.ns(), NAME).await?;
    let netns = scenario.cluster().node_netns(node);
    let output = tokio::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args([
            "--",
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-tA",
            "-c",
            sql,
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PGHOST", ip)
        .env("PGCONNECT_TIMEOUT", "2")
        .output()
        .await
        .context("running nsenter psql")?;
    if !output.status.success() {
        bail!(
            "psql on {ip} inside {node}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The ClusterIP of Service `name`.
pub async fn service_ip(scenario: &Scenario, name: &str) -> String {
    let services: Api<k8s_openapi::api::core::v1::Service> = scenario.api();
    services
        .get(name)
        .await
        .ok()
        .and_then(|s| s.spec?.cluster_ip)
        .unwrap_or_else(|| panic!("Service {name} has no ClusterIP"))
}

/// The Pods of the Database, by name.
pub async fn pods(scenario: &Scenario) -> Vec<Pod> {
    let pods: Api<Pod> = scenario.api();
    let mut list = pods
        .list(&kube::api::ListParams::default().labels(&format!(
            "app.kubernetes.io/name=postgresql,{}={NAME}",
            api::names::LABEL_DATABASE
        )))
        .await
        .unwrap()
        .items;
    list.sort_by_key(|p| p.metadata.name.clone());
    list
}

pub fn ip_of(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_else(|| panic!("Pod {:?} has no IP", pod.metadata.name))
}

pub fn node_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

pub fn role_of(pod: &Pod) -> Option<String> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(api::names::LABEL_ROLE).cloned())
}

/// Asks every instance whether it is in recovery; returns (pod, in recovery) for those that
/// answered.
pub async fn recovery_states(scenario: &Scenario) -> Vec<(String, bool)> {
    let mut states = Vec::new();
    for pod in pods(scenario).await {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        if let Ok(answer) = psql_on(scenario, &ip, "SELECT pg_is_in_recovery()").await {
            states.push((pod.metadata.name.clone().unwrap_or_default(), answer == "t"));
        }
    }
    states
}

/// Asserts that of the instances that answer, `primary` alone is out of recovery.
pub async fn assert_only_primary(scenario: &Scenario, primary: &str) {
    let states = recovery_states(scenario).await;
    let primaries: Vec<&str> = states
        .iter()
        .filter(|(_, in_recovery)| !in_recovery)
        .map(|(pod, _)| pod.as_str())
        .collect();
    assert_eq!(primaries, [primary], "exactly one primary: {states:?}");
}

/// Waits until `standby` streams from `primary` (as the primary's pg_stat_replication says).
/// When it does not, the failure shows the namespace and the standby's own log: whether it
/// was rewinding, cloning or waiting, which a count of zero alone does not say.
pub async fn wait_streaming(scenario: &Scenario, primary: &str, standby: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !matches!(streams(scenario, primary, standby).await, Ok(true)) {
        if Instant::now() > deadline {
            let log = scenario
                .cluster()
                .kubectl()
                .args(["-n", scenario.ns(), "logs", standby, "--tail=80"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!(
                "{standby} streaming from {primary} within {within:?}\n{}\n----- {standby}'s log -----\n{log}",
                scenario.dump()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether `standby` streams from `primary`, as the primary's pg_stat_replication says.
async fn streams(scenario: &Scenario, primary: &str, standby: &str) -> Result<bool> {
    let pods = pods(scenario).await;
    let Some(pod) = pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(primary))
    else {
        return Ok(false);
    };
    let streaming = psql_on(
        scenario,
        &ip_of(pod),
        &format!(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{standby}' AND state = 'streaming'"
        ),
    )
    .await?;
    Ok(streaming == "1")
}

/// The acknowledged commits that are not in `commits` on the server behind `rw`.
pub async fn lost_commits(scenario: &Scenario, rw: &str, acknowledged: &[i32]) -> Vec<i32> {
    let present = psql_on(
        scenario,
        rw,
        "SELECT string_agg(n::text, ',' ORDER BY n) FROM commits",
    )
    .await
    .unwrap();
    let present: std::collections::BTreeSet<i32> =
        present.split(',').filter_map(|n| n.parse().ok()).collect();
    acknowledged
        .iter()
        .filter(|n| !present.contains(n))
        .copied()
        .collect()
}

/// Runs `sql` through the read-write Service `rw` until a server other than `old_ip` answers
/// it; returns that server's address.
pub async fn answered_elsewhere(
    scenario: &Scenario,
    rw: &str,
    old_ip: &str,
    sql: &str,
    within: Duration,
) -> String {
    let sql = format!("{sql}; SELECT host(inet_server_addr())");
    eventually(within, "an answer from a new primary", || async {
        let answer = psql_on(scenario, rw, &sql).await?;
        let server = answer.lines().last().unwrap_or_default().to_string();
        Ok((server != old_ip).then_some(server))
    })
    .await
}

/// Retries `check` until it returns `Ok(Some(_))` or `within` passes.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return value,
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?} (last error: {last})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
