//! Dynamic provisioner for the one-node test cluster: a PersistentVolumeClaim of a class with
//! provisioner `pgop.dev/local-path` gets a world-writable directory on this machine and a
//! hostPath PersistentVolume pre-bound to it; the PV controller does the binding. When such
//! a volume is Released with reclaim policy Delete, its directory and the volume go.
//!
//! It runs on the host next to the kubelet (hack/node-up.sh starts it), since the directories
//! it makes are the ones the kubelet mounts. Two controllers share nothing but the context:
//! claims (provision) and volumes (reclaim). Both are idempotent, so a restart only redoes
//! what was not finished: the volume's name comes from the claim's uid.

mod volume;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Config, Resource, ResourceExt};
use tokio::fs::DirBuilder;
use tracing_subscriber::EnvFilter;

/// Provisions hostPath PersistentVolumes for claims of `pgop.dev/local-path` classes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory holding one subdirectory per volume.
    #[arg(long, default_value = "/var/lib/pgop-node/volumes")]
    root: PathBuf,
    /// Kubeconfig to use; in-cluster or ~/.kube/config when not set.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

struct Context {
    volumes: Api<PersistentVolume>,
    classes: Api<StorageClass>,
    root: PathBuf,
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
    if !args.root.is_absolute() {
        bail!(
            "--root must be an absolute path, not {}",
            args.root.display()
        );
    }
    DirBuilder::new()
        .recursive(true)
        .mode(volume::ROOT_MODE)
        .create(&args.root)
        .await
        .with_context(|| format!("creating {}", args.root.display()))?;

    let client = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let options = KubeConfigOptions::default();
            Client::try_from(Config::from_custom_kubeconfig(kubeconfig, &options).await?)?
        }
        None => Client::try_default().await?,
    };
    let context = Arc::new(Context {
        volumes: Api::all(client.clone()),
        classes: Api::all(client.clone()),
        root: args.root.clone(),
    });
    tracing::info!(root = %args.root.display(), provisioner = volume::PROVISIONER, "starting");

    // Every claim and volume is watched: the test cluster has few, and which claims are ours
    // depends on their class, which no server-side selector can express.
    let claims = Controller::new(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(
        |claim, ctx| async move { provision(&claim, &ctx).await.map_err(Error) },
        retry,
        context.clone(),
    )
    .for_each(log_error);
    let volumes = Controller::new(
        Api::<PersistentVolume>::all(client),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(
        |volume, ctx| async move { reclaim(&volume, &ctx).await.map_err(Error) },
        retry,
        context,
    )
    .for_each(log_error);
    futures::join!(claims, volumes);
    tracing::info!("stopped");
    Ok(())
}

/// Makes the claim's directory, then its volume. The directory comes first: a volume that
/// exists is never provisioned again, so it must not point at nothing.
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
    let (namespace, name, uid) = (
        claim.namespace().unwrap_or_default(),
        claim.name_any(),
        claim.uid().unwrap_or_default(),
    );
    let pv_name = volume::pv_name(&uid);
    // Made before (by us before a restart): the PV controller binds it, nothing to do.
    if ctx.volumes.get_opt(&pv_name).await?.is_some() {
        return Ok(Action::await_change());
    }
    let dir = ctx.root.join(volume::dir_name(&namespace, &name, &uid));
    let pv = match volume::persistent_volume(claim, class.as_ref(), &dir) {
        Ok(pv) => pv,
        Err(error) => {
            // The claim itself is at fault: retrying cannot help until it changes.
            tracing::error!(claim = %format!("{namespace}/{name}"), %error, "cannot provision");
            return Ok(Action::await_change());
        }
    };
    make_volume_dir(&dir).await?;
    match ctx.volumes.create(&PostParams::default(), &pv).await {
        Ok(_) => {
            tracing::info!(claim = %format!("{namespace}/{name}"), volume = pv_name, dir = %dir.display(), "provisioned")
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(error) => return Err(error).context(format!("creating PersistentVolume {pv_name}")),
    }
    Ok(Action::await_change())
}

/// Creates `dir` (or keeps it) with exactly `DIR_MODE`, which the umask would narrow.
async fn make_volume_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match DirBuilder::new().mode(volume::DIR_MODE).create(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let mode = std::fs::Permissions::from_mode(volume::DIR_MODE);
    tokio::fs::set_permissions(dir, mode)
        .await
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Deletes a Released volume of ours with policy Delete: its directory, then the object.
async fn reclaim(pv: &PersistentVolume, ctx: &Context) -> anyhow::Result<Action> {
    if !volume::released_for_deletion(pv) || pv.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = pv.name_any();
    let path = pv
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map_or("", |h| h.path.as_str());
    let Some(dir) = volume::dir_under_root(&ctx.root, Path::new(path)) else {
        // Someone edited it: leave both for a human rather than delete a stranger's files.
        tracing::error!(volume = name, path, root = %ctx.root.display(), "not a directory of ours; left alone");
        return Ok(Action::await_change());
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

/// API errors and full disks pass; retry without flooding the log or the API server.
fn retry<K: Resource<DynamicType = ()>>(object: Arc<K>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(kind = %K::kind(&()), name = object.meta().name.as_deref().unwrap_or(""), %error, "will retry in 10s");
    Action::requeue(Duration::from_secs(10))
}

/// Reconcile errors were logged by `retry`. A failing watch (API server down, missing
/// rights) deserves a warning; a reconcile of an object deleted meanwhile does not.
async fn log_error<T>(result: Result<T, controller::Error<Error, watcher::Error>>) {
    match result {
        Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
        Err(controller::Error::ObjectNotFound(object)) => tracing::debug!(%object, "gone"),
        Err(error) => tracing::warn!(%error, "watch"),
    }
}
