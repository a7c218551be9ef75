//! The primary's PostgreSQL killed (SIGKILL of the postmaster): its manager starts it again
//! in place, holding the Lease, so nothing committed is lost and no failover is needed.

use std::time::{Duration, Instant};

use scenarios::Scenario;

use super::cluster::{self, NAME};

#[tokio::test]
async fn a_killed_primary_postgres_comes_back_in_place_with_every_row() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-killed").await;
    let db = cluster::ready_database(&mut scenario, 2).await;
    let primary = db.status.unwrap_or_default().current_primary.unwrap();
    let rw = cluster::service_ip(&scenario, NAME).await;
    cluster::psql_on(
        &scenario,
        &rw,
        "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 500)",
    )
    .await
    .unwrap();

    // The postmaster is the instance manager's only child.
    let output = scenario
        .cluster()
        .kubectl()
        .args([
            "-n",
            scenario.ns(),
            "exec",
            &primary,
            "-c",
            "postgres",
            "--",
            "bash",
            "-c",
        ])
        .arg("kill -9 $(head -n1 \"$PGDATA/postmaster.pid\")")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let killed = Instant::now();

    let server = cluster::eventually(
        Duration::from_secs(60),
        "a write after the kill",
        || async {
            let answer = cluster::psql_on(
                &scenario,
                &rw,
                "INSERT INTO orders VALUES (501); SELECT count(*) FROM orders",
            )
            .await?;
            Ok(Some(answer))
        },
    )
    .await;
    eprintln!("writes again {:?} after the kill", killed.elapsed());
    assert_eq!(
        server.lines().last(),
        Some("501"),
        "every committed row is there"
    );
    // The same instance is still the only primary.
    cluster::assert_only_primary(&scenario, &primary).await;
    scenario.finish().await;
}
