//! Two replicas of the database-operator against the real test cluster, sharing one Lease:
//! exactly one leads; SIGKILLed, the other takes over within the lease duration; SIGTERMed,
//! a leader hands over at once. Never do two replicas lead at once (the leader gauge), and
//! followers stand by Ready, so a Deployment's rollout completes.
//!
//! The replicas run as the operator's ServiceAccount, with the Role of
//! `deploy/database-operator/leader-election-rbac.yaml` bound in the test's namespace, so the
//! test also proves those rules suffice.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PostParams;
use kube::{Api, Client};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;
use testenv::{Operator, OperatorProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The operator's Lease name when `--lease-name` is not given.
const LEASE: &str = "database-operator";
/// The operator's lease duration; a follower takes over at most this long (plus one look
/// every two seconds) after the dead leader's last renewal.
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// Slack for a busy two-core machine: cache sync of the new leader, scheduling delays.
const MARGIN: Duration = Duration::from_secs(10);
/// How long the first election may take: start-up, CRD checks, one create.
const FIRST_ELECTION: Duration = Duration::from_secs(60);

/// One replica: its process, its identity and the port of its HTTP endpoints.
struct Replica {
    name: &'static str,
    port: u16,
    process: OperatorProcess,
}

impl Replica {
    async fn start(kubeconfig: &std::path::Path, ns: &str, name: &'static str) -> Replica {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let process = OperatorProcess::spawn(
            Operator::Database,
            kubeconfig,
            &[
                "--namespace",
                ns,
                "--metrics-address",
                &address,
                "--lease-namespace",
                ns,
            ],
            // The environment, as the Deployment passes it.
            &[
                ("LEADER_ELECTION", "true"),
                ("POD_NAME", name),
                ("RUST_LOG", "info,operator_runtime=debug"),
            ],
        )
        .unwrap_or_else(|e| panic!("starting {name}: {e:#}"));
        Replica {
            name,
            port,
            process,
        }
    }

    /// The HTTP status of `/readyz`, or `None` while nothing answers.
    async fn ready(&self) -> Option<bool> {
        get(self.port, "/readyz").await.map(|(code, _)| code == 200)
    }

    /// The value of the leader gauge on `/metrics`.
    async fn leader_gauge(&self) -> Option<String> {
        let (_, body) = get(self.port, "/metrics").await?;
        body.lines()
            .find_map(|l| l.strip_prefix("database_operator_leader "))
            .map(str::to_owned)
    }

    fn signal(&self, signal: Signal) {
        let pid = self.process.pid().expect("the replica is running");
        let pid = Pid::from_raw(i32::try_from(pid).expect("a pid fits in i32"));
        kill(pid, signal).unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.name));
    }
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_when_it_dies() {
    let cluster = testenv::cluster().await.expect("test cluster");
    let ns = cluster.namespace("leader-election").await.unwrap();
    let admin = cluster.admin_client();
    grant_lease_rules(&admin, ns.name()).await;
    let kubeconfig = cluster
        .operator_kubeconfig(Operator::Database)
        .await
        .unwrap();
    let leases: Api<Lease> = Api::namespaced(admin.clone(), ns.name());

    let mut replicas = vec![
        Replica::start(&kubeconfig, ns.name(), "replica-a").await,
        Replica::start(&kubeconfig, ns.name(), "replica-b").await,
    ];

    // Exactly one leads: it holds the Lease, its gauge says so; the other stands by. Both Ready.
    let leader = wait_for_leader(&leases, &replicas, None, FIRST_ELECTION).await;
    let follower = 1 - leader;
    let (l, f) = (&replicas[leader], &replicas[follower]);
    println!("{} leads; {} follows", l.name, f.name);
    assert_eq!(get(f.port, "/healthz").await.map(|r| r.0), Some(200));
    assert_eq!(f.ready().await, Some(true), "the follower stands by, Ready");
    assert_eq!(l.ready().await, Some(true), "the leader is Ready");
    assert_eq!(l.leader_gauge().await.as_deref(), Some("1"));
    assert_eq!(f.leader_gauge().await.as_deref(), Some("0"));

    // Renewals keep it so: watch across two renewal periods.
    let steady_until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < steady_until {
        assert_eq!(holder(&leases).await.as_deref(), Some(l.name));
        assert_one_leading(&replicas).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let transitions_before = transitions(&leases).await;

    // SIGKILL: no release, so the follower must wait for the Lease to expire.
    replicas[leader].process.kill().unwrap();
    let killed = Instant::now();
    let second = wait_for_leader(&leases, &replicas, Some(leader), LEASE_DURATION + MARGIN).await;
    let handover = killed.elapsed();
    assert_eq!(second, follower);
    println!(
        "handover after SIGKILL of the leader: {:.1} s (lease duration {} s)",
        handover.as_secs_f64(),
        LEASE_DURATION.as_secs()
    );
    assert!(
        handover <= LEASE_DURATION + MARGIN,
        "handover took {handover:?}"
    );
    assert_eq!(transitions(&leases).await, transitions_before + 1);

    // SIGTERM: the leader gives the Lease up on its way out, and a new follower takes over
    // at its next look, far sooner than the lease duration.
    replicas.push(Replica::start(&kubeconfig, ns.name(), "replica-c").await);
    wait_until_following(&replicas[2]).await;
    replicas[second].signal(Signal::SIGTERM);
    let terminated = Instant::now();
    let third = wait_for_leader(&leases, &replicas, Some(second), LEASE_DURATION + MARGIN).await;
    let graceful = terminated.elapsed();
    assert_eq!(third, 2);
    println!(
        "handover after SIGTERM of the leader: {:.1} s",
        graceful.as_secs_f64()
    );
    assert!(
        graceful < LEASE_DURATION,
        "a released Lease was taken over only after {graceful:?}: was it released?"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while replicas[second].process.is_running() {
        assert!(
            Instant::now() < deadline,
            "the old leader did not exit on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ns.cleanup().await.unwrap();
}

/// Waits until one replica other than `old` holds the Lease, says so on its leader gauge and
/// is Ready, checking all along that no two replicas lead at once; returns its index.
async fn wait_for_leader(
    leases: &Api<Lease>,
    replicas: &[Replica],
    old: Option<usize>,
    timeout: Duration,
) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let leading = assert_one_leading(replicas).await;
        let holder = holder(leases).await;
        if let Some(i) = leading
            && Some(i) != old
            && holder.as_deref() == Some(replicas[i].name)
            && replicas[i].ready().await == Some(true)
        {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "no replica led within {timeout:?}; the Lease is held by {holder:?}, leading: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `replica` serves its endpoints and reports itself a follower, Ready.
async fn wait_until_following(replica: &Replica) {
    let deadline = Instant::now() + FIRST_ELECTION;
    while replica.leader_gauge().await.as_deref() != Some("0") {
        assert!(Instant::now() < deadline, "{} never started", replica.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        replica.ready().await,
        Some(true),
        "{} stands by",
        replica.name
    );
}

/// The index of the one replica whose leader gauge is 1, if any; fails when two lead.
async fn assert_one_leading(replicas: &[Replica]) -> Option<usize> {
    let mut leading = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        if replica.leader_gauge().await.as_deref() == Some("1") {
            leading.push(i);
        }
    }
    let names: Vec<_> = leading.iter().map(|&i| replicas[i].name).collect();
    assert!(
        leading.len() <= 1,
        "several replicas lead at once: {names:?}"
    );
    leading.first().copied()
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    let lease = leases.get_opt(LEASE).await.expect("reading the Lease")?;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

async fn transitions(leases: &Api<Lease>) -> i32 {
    let lease = leases.get(LEASE).await.expect("reading the Lease");
    lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0)
}

/// Creates the Role and RoleBinding of `leader-election-rbac.yaml` in `ns` (instead of the
/// operator's own namespace): the operator's ServiceAccount may then use Leases there.
async fn grant_lease_rules(client: &Client, ns: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/database-operator/leader-election-rbac.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let params = PostParams::default();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document).expect("valid YAML");
        match value["kind"].as_str() {
            Some("Role") => {
                let mut role: Role = serde_yaml::from_value(value).expect("a Role");
                role.metadata.namespace = Some(ns.to_owned());
                Api::<Role>::namespaced(client.clone(), ns)
                    .create(&params, &role)
                    .await
                    .expect("creating the Role");
            }
            Some("RoleBinding") => {
                let mut binding: RoleBinding =
                    serde_yaml::from_value(value).expect("a RoleBinding");
                binding.metadata.namespace = Some(ns.to_owned());
                Api::<RoleBinding>::namespaced(client.clone(), ns)
                    .create(&params, &binding)
                    .await
                    .expect("creating the RoleBinding");
            }
            other => panic!("unexpected kind {other:?} in {path}"),
        }
    }
}

/// A port nothing listens on right now: bound, then released for the replica to take.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("a bound address").port()
}

/// One plain HTTP/1.1 GET: status code and body, or `None` when nothing answers.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        Some((code, body.unwrap_or_default()))
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .ok()
        .flatten()
}
