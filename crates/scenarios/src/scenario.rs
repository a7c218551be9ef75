//! A scenario's namespace and the operator processes it runs, owned together so that a
//! failure reports both and a finished or failed scenario leaves nothing behind.

use std::net::SocketAddr;

use anyhow::Context as _;
use api::Database;
use kube::{Api, Client};
use testenv::{Cluster, Operator, OperatorProcess, TestNamespace};

use crate::{CONVERGE, apply_yaml, database_ready, play_kubelet, sample};

/// One test's namespace on the shared cluster, and the operators it started, scoped to it.
///
/// Dropped on a failure, the operators are stopped with their logs printed and the namespace's
/// objects are dumped (see [`TestNamespace`] and [`OperatorProcess`]); then the namespace is
/// deleted.
pub struct Scenario {
    // Declared first, so dropped first: the operators stop before their namespace goes.
    operators: Vec<(Operator, OperatorProcess)>,
    namespace: TestNamespace,
    cluster: &'static Cluster,
    client: Client,
}

impl Scenario {
    /// A namespace of its own on the node-less control plane, where the tests play the
    /// kubelet; its name starts with `prefix`.
    pub async fn new(prefix: &str) -> Scenario {
        let cluster = testenv::cluster().await.expect("test cluster");
        let namespace = cluster.namespace(prefix).await.expect("test namespace");
        Scenario::in_namespace(cluster, namespace)
    }

    /// A namespace of its own on the real node, where Pods actually run.
    pub async fn on_node(prefix: &str) -> Scenario {
        let cluster = testenv::cluster().await.expect("test cluster");
        let namespace = cluster
            .node_namespace(prefix)
            .await
            .expect("test namespace");
        Scenario::in_namespace(cluster, namespace)
    }

    fn in_namespace(cluster: &'static Cluster, namespace: TestNamespace) -> Scenario {
        Scenario {
            operators: Vec::new(),
            namespace,
            cluster,
            client: cluster.admin_client(),
        }
    }

    pub fn cluster(&self) -> &'static Cluster {
        self.cluster
    }

    /// A client with the cluster's admin rights, as the user of the scenario.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The scenario's namespace.
    pub fn ns(&self) -> &str {
        self.namespace.name()
    }

    /// The API of `K` in the scenario's namespace, as its user.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client(), self.ns())
    }

    /// Starts `operator` as its own process, with its own ServiceAccount, watching only this
    /// namespace so parallel tests do not reconcile each other's objects.
    pub async fn start(&mut self, operator: Operator) {
        self.start_serving_metrics(operator, "127.0.0.1:0").await;
    }

    /// [`Scenario::start`], serving `/metrics` on `metrics` (from [`free_port`]), for a test
    /// that scrapes it.
    pub async fn start_with_metrics(&mut self, operator: Operator, metrics: SocketAddr) {
        self.start_serving_metrics(operator, &metrics.to_string())
            .await;
    }

    async fn start_serving_metrics(&mut self, operator: Operator, metrics: &str) {
        let kubeconfig = self
            .cluster
            .operator_kubeconfig(operator)
            .await
            .unwrap_or_else(|e| panic!("{}'s kubeconfig: {e:#}", operator.name()));
        let mut args = vec![
            "--namespace",
            self.namespace.name(),
            "--metrics-address",
            metrics,
        ];
        if operator == Operator::Backup {
            args.insert(0, "run");
        }
        // Debug for the operators' own crates: each reconcile logs "reconciled", which the
        // restart scenarios count.
        let log = "info,database_operator=debug,backup_operator=debug,operator_runtime=debug";
        let process = OperatorProcess::spawn(operator, &kubeconfig, &args, &[("RUST_LOG", log)])
            .unwrap_or_else(|e| panic!("starting {}: {e:#}", operator.name()));
        self.operators.push((operator, process));
    }

    /// Both operators, database-operator first.
    pub async fn start_both(&mut self) {
        self.start(Operator::Database).await;
        self.start(Operator::Backup).await;
    }

    /// The process of `operator`, which the scenario started.
    pub fn operator(&mut self, operator: Operator) -> &mut OperatorProcess {
        self.operators
            .iter_mut()
            .find(|(o, _)| *o == operator)
            .map(|(_, process)| process)
            .unwrap_or_else(|| panic!("the scenario did not start the {}", operator.name()))
    }

    /// Every operator the scenario started, in start order.
    pub fn operators(&self) -> impl Iterator<Item = &OperatorProcess> {
        self.operators.iter().map(|(_, process)| process)
    }

    /// Whether every operator the scenario started still runs; it says which did not.
    pub fn assert_operators_running(&mut self) {
        for (operator, process) in &mut self.operators {
            assert!(
                process.is_running(),
                "the {} exited:\n{}",
                operator.name(),
                process.log_tail(40)
            );
        }
    }

    /// The end of each operator's log, for failure messages.
    pub fn logs(&self) -> String {
        self.operators()
            .map(|process| process.log_tail(40))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// Fails the test with `error` and the operators' logs; the namespace's objects are
    /// dumped as the scenario is dropped.
    pub fn fail(&self, error: anyhow::Error) -> ! {
        panic!("{error:#}\n{}", self.logs())
    }

    /// The namespace's objects, for failure messages of a test that runs no operator.
    pub fn dump(&self) -> String {
        self.namespace.dump()
    }

    /// Server-side applies every document of the YAML manifest `yaml` into the namespace.
    pub async fn apply(&self, yaml: &str) {
        apply_yaml(&self.client, self.ns(), yaml)
            .await
            .unwrap_or_else(|e| self.fail(e));
    }

    /// Plays the kubelet for the `replicas` Pods of the Database `database`.
    pub async fn play_kubelet(&self, database: &str, replicas: usize) {
        play_kubelet(&self.client, self.ns(), database, replicas)
            .await
            .unwrap_or_else(|e| self.fail(e));
    }

    /// Applies the seed lab's Database and Backup, plays the kubelet for the Database's Pod and
    /// waits until the Database is Ready: where the scenarios that start from a Ready seed
    /// begin.
    pub async fn seed_until_ready(&self) -> Database {
        self.apply(&sample("seed-database.yaml")).await;
        self.apply(&sample("seed-backup.yaml")).await;
        self.play_kubelet("my-database", 1).await;
        testenv::wait_for(&self.api(), "my-database", database_ready, CONVERGE)
            .await
            .unwrap_or_else(|e| self.fail(e))
    }

    /// Deletes the namespace and waits until it is gone.
    pub async fn finish(self) {
        self.namespace
            .cleanup()
            .await
            .context("deleting the scenario's namespace")
            .unwrap();
    }
}

/// A port on 127.0.0.1 that was free a moment ago: bound to port 0 and released. Should
/// another process take it before the caller binds it, the caller's server fails to start.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}
