//! Dynamic provisioner for the test cluster's nodes: a PersistentVolumeClaim of a class with
//! provisioner `pgop.dev/local-path` gets a world-writable directory on one node and a
//! hostPath PersistentVolume pre-bound to it and pinned to that node by nodeAffinity, like
//! Rancher's local-path on a real cluster: the claim is only usable there. The PV controller
//! does the binding. When such a volume is Released with reclaim policy Delete, its directory
//! and the volume go.
//!
//! The node is the one the scheduler selected for the claim's first Pod (WaitForFirstConsumer
//! classes); a claim of an Immediate class goes to the Ready node holding the fewest of our
//! volumes. It runs on the host (hack/node-up.sh starts it), where every node's volumes
//! directory is visible ([`layout`]). Two controllers share nothing but the context: claims
//! (provision) and volumes (reclaim). Both are idempotent, so a restart only redoes what was
//! not finished: the volume's name, and its directory's, come from the claim's uid.

mod layout;
mod node;
mod volume;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, Config, Resource, ResourceExt};
use runtime::error_backoff::{self, ErrorBackoff};
use tokio::fs::DirBuilder;
use tracing_subscriber::EnvFilter;

use crate::layout::Layout;
use crate::volume::Placement;

/// Provisions node-local hostPath PersistentVolumes for claims of `pgop.dev/local-path`
/// classes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory on this host holding, for each node N, `N/volumes` with one subdirectory per
    /// volume on that node.
    #[arg(long, default_value = "/var/lib/pgop-nodes")]
    nodes_root: PathBuf,
    /// Where every node sees its own `<nodes-root>/<node>/volumes`; the volumes' hostPath is
    /// under it.
    #[arg(long, default_value = "/var/lib/pgop-node/volumes")]
    node_volumes: PathBuf,
    /// Kubeconfig to use; in-cluster or ~/.kube/config when not set.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

struct Context {
    volumes: Api<PersistentVolume>,
    classes: Api<StorageClass>,
    nodes: Api<Node>,
    layout: Layout,
    /// Failures by object (claims and volumes alike: keys name the kind).
    backoff: ErrorBackoff,
}

/// kube's controller wants a `std::error::Error`, which `anyhow::Error` is not.
#[derive(Debug)]
struct Error(anyhow::Error);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Error {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: node-up.sh sends the output to a log file.
    let ansi = std::io::stdout().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .init();
    let layout = Layout::new(args.nodes_root, args.node_volumes)?;
    // Each node's directory is made with its first volume; the root now, so that a path this
    // user cannot write stops the provisioner at once.
    make_root_dir(layout.nodes_root()).await?;

    let client = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let options = KubeConfigOptions::default();
            Client::try_from(Config::from_custom_kubeconfig(kubeconfig, &options).await?)?
        }
        None => Client::try_default().await?,
    };
    tracing::info!(
        nodes_root = %layout.nodes_root().display(),
        node_volumes = %layout.node_volumes().display(),
        provisioner = volume::PROVISIONER,
        "starting"
    );
    let context = Arc::new(Context {
        volumes: Api::all(client.clone()),
        classes: Api::all(client.clone()),
        nodes: Api::all(client.clone()),
        layout,
        backoff: ErrorBackoff::default(),
    });

    // Every claim and volume is watched: the test cluster has few, and which claims are ours
    // depends on their class, which no server-side selector can express.
    let claims = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(
        |claim, ctx| async move {
            let result = provision(&claim, &ctx).await;
            settle(claim.as_ref(), &ctx, result)
        },
        retry,
        context.clone(),
    )
    .for_each(|result| log_error(&context.backoff, result));
    let volumes = Controller::new(
        Api::<PersistentVolume>::all(client),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(
        |volume, ctx| async move {
            let result = reclaim(&volume, &ctx).await;
            settle(volume.as_ref(), &ctx, result)
        },
        retry,
        context.clone(),
    )
    .for_each(|result| log_error(&context.backoff, result));
    futures::join!(claims, volumes);
    tracing::info!("stopped");
    Ok(())
}

/// Makes the claim's directory on its node, then its volume. The directory comes first: a
/// volume that exists is never provisioned again, so it must not point at nothing.
async fn provision(claim: &PersistentVolumeClaim, ctx: &Context) -> anyhow::Result<Action> {
    let class_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref());
    let class = match class_name.filter(|n| !n.is_empty()) {
        Some(name) => ctx.classes.get_opt(name).await?,
        None => None,
    };
    if !volume::wants_volume(claim, class.as_ref()) {
        return Ok(Action::await_change());
    }
    let claim_key = format!(
        "{}/{}",
        claim.namespace().unwrap_or_default(),
        claim.name_any()
    );
    let pv_name = volume::pv_name(&claim.uid().unwrap_or_default());
    // Made before (by us before a restart): the PV controller binds it, nothing to do.
    if ctx.volumes.get_opt(&pv_name).await?.is_some() {
        return Ok(Action::await_change());
    }
    let node = match volume::placement(claim, class.as_ref()) {
        Placement::Selected(node) => node.to_string(),
        // Setting the selected node changes the claim, which brings it back here.
        Placement::AwaitScheduler => return Ok(Action::await_change()),
        Placement::Choose => least_used_node(ctx).await?,
    };
    let built = volume::persistent_volume(claim, class.as_ref(), &ctx.layout, &node)
        .and_then(|pv| Ok((ctx.layout.dir_on_host(&pv)?, pv)));
    let (dir, pv) = match built {
        Ok(built) => built,
        Err(error) => {
            // The claim itself is at fault: retrying cannot help until it changes.
            tracing::error!(claim = claim_key, node, error = %format!("{error:#}"), "cannot provision");
            return Ok(Action::await_change());
        }
    };
    make_root_dir(&ctx.layout.volumes_on_host(&node)?).await?;
    make_volume_dir(&dir).await?;
    match ctx.volumes.create(&PostParams::default(), &pv).await {
        Ok(_) => {
            tracing::info!(claim = claim_key, volume = pv_name, node, dir = %dir.display(), "provisioned")
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(error) => return Err(error).context(format!("creating PersistentVolume {pv_name}")),
    }
    Ok(Action::await_change())
}

/// The node for a claim no scheduler placed. Both lists are read afresh: a cache could miss
/// the volume made a moment ago, and there are few of either on a test cluster.
async fn least_used_node(ctx: &Context) -> anyhow::Result<String> {
    let nodes = ctx
        .nodes
        .list(&ListParams::default())
        .await
        .context("listing Nodes")?;
    let volumes = ctx
        .volumes
        .list(&ListParams::default())
        .await
        .context("listing PersistentVolumes")?;
    Ok(node::least_used(&nodes.items, &volumes.items)?.to_string())
}

/// Creates `dir` and any missing parent with `ROOT_MODE` (as narrowed by the umask), or
/// keeps them as they are.
async fn make_root_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(layout::ROOT_MODE)
        .create(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))
}

/// Creates `dir` (or keeps it) with exactly `DIR_MODE`, which the umask would narrow.
async fn make_volume_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match DirBuilder::new().mode(layout::DIR_MODE).create(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let mode = std::fs::Permissions::from_mode(layout::DIR_MODE);
    tokio::fs::set_permissions(dir, mode)
        .await
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Deletes a Released volume of ours with policy Delete: its directory on its node, then the
/// object.
async fn reclaim(pv: &PersistentVolume, ctx: &Context) -> anyhow::Result<Action> {
    if !volume::released_for_deletion(pv) || pv.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = pv.name_any();
    let dir = match ctx.layout.dir_on_host(pv) {
        Ok(dir) => dir,
        Err(error) => {
            // Someone edited it, or an older provisioner made it: leave both for a human
            // rather than delete a stranger's files.
            tracing::error!(volume = name, error = %format!("{error:#}"), "not a volume in this provisioner's layout; left alone");
            return Ok(Action::await_change());
        }
    };
    // remove_dir_all does not follow symbolic links a Pod may have left inside.
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
    }
    // The uid precondition: never delete a same-named volume made since.
    let params = DeleteParams::default().preconditions(Preconditions {
        uid: pv.uid(),
        resource_version: None,
    });
    match ctx.volumes.delete(&name, &params).await {
        Ok(_) => tracing::info!(volume = name, dir = %dir.display(), "deleted"),
        Err(kube::Error::Api(status)) if status.is_not_found() => {}
        Err(error) => return Err(error).context(format!("deleting PersistentVolume {name}")),
    }
    Ok(Action::await_change())
}

/// Forgets the failures of an object once a reconcile of it succeeds (a claim at fault
/// counts as a success: it waits for a change, not a retry).
fn settle<K: Resource<DynamicType = ()>>(
    object: &K,
    ctx: &Context,
    result: anyhow::Result<Action>,
) -> Result<Action, Error> {
    if result.is_ok() {
        ctx.backoff.reset(&ObjectRef::from_obj(object).to_string());
    }
    result.map_err(Error)
}

/// API errors, full disks and clusters without a Ready node pass; retry sooner at first, then
/// less and less often, without flooding the log or the API server.
fn retry<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = ObjectRef::from_obj(object.as_ref()).to_string();
    let delay = ctx.backoff.next(&key, error_backoff::BASE);
    tracing::warn!(kind = %K::kind(&()), name = object.meta().name.as_deref().unwrap_or(""), %error, "will retry in {}s", delay.as_secs());
    Action::requeue(delay)
}

/// Reconcile errors were logged by `retry`. A failing watch (API server down, missing
/// rights) deserves a warning; a reconcile of an object deleted meanwhile does not, and
/// its failures are forgotten, since no success will ever reset them.
fn log_error<T>(
    backoff: &ErrorBackoff,
    result: Result<T, controller::Error<Error, watcher::Error>>,
) -> std::future::Ready<()> {
    match result {
        Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
        Err(controller::Error::ObjectNotFound(object)) => {
            tracing::debug!(%object, "gone");
            backoff.reset(&object.to_string());
        }
        Err(error) => tracing::warn!(%error, "watch"),
    }
    std::future::ready(())
}
