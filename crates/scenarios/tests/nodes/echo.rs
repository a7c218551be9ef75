//! An echo server on every node, and the probes the node tests send it.
//!
//! A StatefulSet of three Pods, one per node by required anti-affinity, each with a volume.
//! At start a Pod writes its node's name into its volume (unless there is one already); it
//! answers every TCP connection on port 8080 with "<node it runs on> <node in its volume>".

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use scenarios::Scenario;
use tokio::sync::Mutex;

pub const NODES: [&str; 3] = ["pgop-node-1", "pgop-node-2", "pgop-node-3"];
/// docs/node.md: a node that is lost is NotReady within 20 s.
pub const NOT_READY_WITHIN: Duration = Duration::from_secs(20);
/// A node back from a fault reports Ready at its kubelet's next status update, after it has
/// reconnected: seconds. The bound only has to survive a busy two-core machine.
pub const READY_AGAIN_WITHIN: Duration = Duration::from_secs(90);

/// The tests of this binary share the three nodes: one runs at a time, so a fault on a node
/// never lands in another test's measurement.
pub static NODES_IN_USE: Mutex<()> = Mutex::const_new(());

const SERVER: &str = r#"
use IO::Socket::INET;
my $node = $ENV{NODE_NAME};
if (! -e "/data/node") {
    open(my $f, ">", "/data/node") or die "writing /data/node: $!";
    print $f $node;
    close $f;
}
open(my $f, "<", "/data/node") or die "reading /data/node: $!";
my $stored = <$f>;
close $f;
my $server = IO::Socket::INET->new(LocalPort => 8080, Listen => 16, ReuseAddr => 1)
    or die "listening on 8080: $!";
while (my $client = $server->accept) {
    print $client "$node $stored\n";
    close $client;
}
"#;

/// The StatefulSet `echo`, its headless Service `echo` (DNS names `echo-<i>.echo`) and the
/// ClusterIP Service `echo-any` in front of all three.
pub fn manifest() -> String {
    let server: String = SERVER
        .lines()
        .map(|line| format!("          {line}\n"))
        .collect();
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  clusterIP: None
  selector: {{app: echo}}
  ports: [{{port: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo-any}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: echo}}
spec:
  serviceName: echo
  replicas: 3
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/hostname
            labelSelector: {{matchLabels: {{app: echo}}}}
      securityContext:
        runAsNonRoot: true
        runAsUser: 999
        seccompProfile: {{type: RuntimeDefault}}
      containers:
      - name: echo
        image: {image}
        imagePullPolicy: Never
        command:
        - perl
        - -e
        - |
{server}        env:
        - name: NODE_NAME
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {{drop: [ALL]}}
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 16Mi}}}}
"#,
        image = scenarios::POSTGRES_IMAGE,
    )
}

/// Applies [`manifest`] and waits until the three Pods are Ready, one on each node.
pub async fn start(scenario: &Scenario) -> Vec<Pod> {
    scenario.apply(&manifest()).await;
    ready_pods(scenario)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", scenario.dump()))
}

/// The three echo Pods once all are Ready, ordered by name.
pub async fn ready_pods(scenario: &Scenario) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = scenario.api();
    let deadline = Instant::now() + scenarios::POD_START;
    loop {
        let mut list = pods
            .list(&ListParams::default().labels("app=echo"))
            .await?
            .items;
        list.sort_by_key(|p| p.metadata.name.clone());
        if list.len() == 3 && list.iter().all(pod_ready) {
            return Ok(list);
        }
        if Instant::now() > deadline {
            bail!(
                "the echo Pods were not all Ready within {:?}",
                scenarios::POD_START
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .expect("a scheduled Pod")
}

pub fn ip_of(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .expect("a running Pod has an IP")
}

/// The echo Pod on `node`.
pub fn on_node<'a>(pods: &'a [Pod], node: &str) -> &'a Pod {
    pods.iter()
        .find(|p| node_of(p) == node)
        .unwrap_or_else(|| panic!("no echo Pod on {node}"))
}

/// Connects from this machine to an echo server and returns its answer; an error when no
/// answer comes within 3 s (the fault tests expect exactly that from a lost node).
pub fn ask(ip: &str) -> Result<String> {
    let address: SocketAddr = format!("{ip}:8080").parse()?;
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .with_context(|| format!("reading from {address}"))?;
    if answer.is_empty() {
        bail!("{address} closed without an answer");
    }
    Ok(answer.trim().to_string())
}

/// Asks the same shell command's question from inside a Pod (through `kubectl exec`): bash's
/// /dev/tcp, so the connection starts on the Pod's node. `target` may be an IP or a DNS name.
pub fn ask_from_pod(scenario: &Scenario, pod: &str, target: &str) -> Result<String> {
    let script = format!("exec 3<>/dev/tcp/{target}/8080 && timeout 3 cat <&3");
    let output = scenario
        .cluster()
        .kubectl()
        .args([
            "-n",
            scenario.ns(),
            "exec",
            pod,
            "--",
            "timeout",
            "5",
            "bash",
            "-c",
        ])
        .arg(&script)
        .output()
        .context("running kubectl exec")?;
    if !output.status.success() {
        bail!(
            "asking {target} from {pod} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Asks from inside `node`'s own network namespace, on this machine: what the node itself
/// sees, whatever cuts it off from the others.
pub fn ask_inside_node(scenario: &Scenario, node: &str, ip: &str) -> Result<String> {
    let netns = scenario.cluster().node_netns(node);
    let output = std::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["--", "timeout", "5", "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/{ip}/8080 && timeout 3 cat <&3"))
        .output()
        .context("running nsenter")?;
    if !output.status.success() {
        bail!(
            "asking {ip} inside {node} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The Node's Ready condition status ("True", "False", "Unknown").
pub async fn node_ready_status(nodes: &Api<Node>, node: &str) -> Result<String> {
    let node = nodes.get(node).await?;
    Ok(node
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status)
        .unwrap_or_default())
}

/// Waits until `node`'s Ready condition is True (`ready`) or not (`!ready`), and returns how
/// long that took; fails after `within`.
pub async fn wait_node(
    nodes: &Api<Node>,
    node: &str,
    ready: bool,
    within: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let status = node_ready_status(nodes, node).await?;
        if (status == "True") == ready {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            bail!(
                "{node} did not become {} within {within:?} (Ready is {status:?})",
                if ready { "Ready" } else { "NotReady" }
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Retries [`ask`] until it answers, for up to `within`: a healed node's routes and its Pods'
/// neighbours take a moment to answer again.
pub async fn ask_until_answered(ip: &str, within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        match ask(ip) {
            Ok(answer) => return Ok(answer),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
