//! One operator process: logging, a client, the shutdown signal, the HTTP server, leader
//! election and the wait for the CRDs, in the order every operator needs them. The operator
//! adds its controllers:
//!
//! ```text
//! let process = Process::start("my-operator", &args.runtime).await?;
//! let metrics = ...; // registers ReconcileMetrics in the operator's registry
//! let controllers = async { /* Reconciles::run(...) for each controller */ };
//! process.run(&watched_kinds, render, reconcile_metrics, controllers).await
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::api::ApiResource;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client, Resource};
use tokio_util::sync::CancellationToken;

use crate::args::RuntimeArgs;
use crate::election::{self, Election};
use crate::metrics::ReconcileMetrics;
use crate::readiness::Health;
use crate::server::{self, RenderMetrics};
use crate::{crds, logging, shutdown};

pub struct Process {
    /// The field manager of server-side apply and the reporting controller of Events.
    pub name: &'static str,
    pub client: Client,
    /// The namespace watched, or `None` for all.
    pub namespace: Option<String>,
    /// How long an object no event touched waits for its next look.
    pub resync: Duration,
    /// What `/readyz` reports; the operator marks its caches synced here.
    pub health: Arc<Health>,
    /// Cancelled on SIGTERM or Ctrl-C; controllers shut down gracefully on it.
    pub shutdown: CancellationToken,
    /// Reconciles each controller runs at once (`--concurrent-reconciles`).
    pub concurrent_reconciles: u16,
    lease: Option<election::Settings>,
    metrics_address: SocketAddr,
}

impl Process {
    /// Sets up logging, reads the leader-election flags, connects to the API server and
    /// starts listening for the shutdown signal.
    pub async fn start(name: &'static str, args: &RuntimeArgs) -> anyhow::Result<Process> {
        crate::memory::use_one_malloc_arena();
        logging::init(args.log_format);
        let lease = args.leader.settings(name)?;
        let client = client(args.max_requests_in_flight).await?;
        let namespace = args.namespace().map(str::to_owned);
        tracing::info!(
            namespace = namespace.as_deref().unwrap_or("<all>"),
            leader_election = lease.is_some(),
            "starting"
        );
        Ok(Process {
            name,
            client,
            namespace,
            resync: args.resync(),
            health: Arc::new(Health::default()),
            shutdown: shutdown::on_signal(),
            concurrent_reconciles: args.concurrent_reconciles,
            lease,
            metrics_address: args.metrics_address,
        })
    }

    /// An Api over the watched namespace, or all of them.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// The Event recorder, reporting as this operator and, in a Pod, its name.
    pub fn recorder(&self) -> Recorder {
        let reporter = Reporter {
            controller: self.name.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Recorder::new(self.client.clone(), reporter)
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` from now on, and runs `controllers` once
    /// every kind in `watched` is served and this replica leads. Returns after a graceful
    /// shutdown; fails when the server cannot start or the leader Lease is lost (the Pod
    /// then restarts as a follower, so no two replicas ever reconcile at once).
    pub async fn run(
        self,
        watched: &[ApiResource],
        metrics: RenderMetrics,
        reconcile_metrics: Arc<ReconcileMetrics>,
        controllers: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let mut server = tokio::spawn(server::serve(
            self.metrics_address,
            self.health.clone(),
            metrics,
            shutdown.clone().cancelled_owned(),
        ));
        let work = async {
            // Not ready meanwhile: the caches cannot sync before the controllers start.
            tokio::select! {
                () = crds::wait_until_served(&self.client, self.namespace.as_deref(), watched) => {}
                () = shutdown.cancelled() => return,
            }
            controllers.await;
        };
        let on_leading = || {
            self.health.set_leading();
            reconcile_metrics.set_leader(true);
        };
        let elected = Election::new(&self.client, self.lease.clone()).run(
            shutdown.cancelled(),
            on_leading,
            work,
        );
        tokio::pin!(elected);
        tokio::select! {
            // The server ends first only when it cannot start: exit, so the Pod restarts.
            served = &mut server => {
                served.context("the HTTP server panicked")??;
                (&mut elected).await?;
            }
            elected = &mut elected => {
                // The controllers end on shutdown, or when they cannot continue: stop the
                // server too.
                shutdown.cancel();
                if let Err(error) = elected {
                    tracing::error!(%error, "stopping");
                    return Err(error.into());
                }
                server.await.context("the HTTP server panicked")??;
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// A client from the kubeconfig or the Pod's ServiceAccount, with at most `in_flight`
/// requests at once (0: no cap).
async fn client(in_flight: usize) -> anyhow::Result<Client> {
    let config = kube::Config::infer()
        .await
        .context("cannot configure a Kubernetes client: set KUBECONFIG, or run inside a Pod")?;
    let builder = kube::client::ClientBuilder::try_from(config)
        .context("cannot build a Kubernetes client from its configuration")?;
    Ok(if in_flight == 0 {
        builder.build()
    } else {
        builder
            .with_layer(&tower::limit::ConcurrencyLimitLayer::new(in_flight))
            .build()
    })
}
