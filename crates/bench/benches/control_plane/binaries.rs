//! Where the operator binaries under measurement come from: this tree's release build, which
//! `just bench` makes before `cargo bench`, a baseline commit's, built here, or the
//! controller-runtime operator of `bench/controller-runtime` (see [`comparison`]), built
//! here too.
//!
//! The baseline is checked out into `<target>/bench-baseline/src`, a git worktree that stays
//! registered and is moved to each run's revision, and built with its own target directory,
//! `<target>/bench-baseline/target`: a later run rebuilds only what the revisions change.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context, Result, bail};
use testenv::{Cluster, Operator};
use tokio::process::Command;

use crate::{comparison, operators::Program};

pub struct Binaries {
    /// `this`, the baseline's short commit hash, or `controller-runtime`: the column the
    /// figures go in.
    pub label: String,
    kind: Kind,
}

enum Kind {
    Ours {
        /// The directory holding both operator binaries.
        dir: PathBuf,
        /// The `deploy/` directory of the same source: the RBAC those binaries were
        /// written for.
        deploy: PathBuf,
    },
    /// One process doing both operators' job.
    ControllerRuntime { binary: PathBuf },
}

impl Binaries {
    /// The release binaries beside this benchmark (`<target>/release`).
    pub fn this_tree() -> Result<Binaries> {
        Ok(Binaries {
            label: "this".into(),
            kind: Kind::Ours {
                dir: profile_dir()?,
                deploy: repo_root().join("deploy"),
            },
        })
    }

    /// Checks out `revision` and builds both operators from it in release mode.
    pub async fn baseline(revision: &str) -> Result<Binaries> {
        let repo = repo_root();
        let hash = output(
            git(&repo)
                .args(["rev-parse", "--verify", "--short"])
                .arg(format!("{revision}^{{commit}}")),
        )
        .await
        .with_context(|| format!("BENCH_BASELINE={revision:?} is not a commit"))?;
        let root = target_dir()?.join("bench-baseline");
        let src = root.join("src");
        if src.join(".git").exists() {
            run(git(&src).args(["checkout", "--quiet", "--detach", "--force", &hash])).await?;
        } else {
            // A worktree whose directory was deleted (`cargo clean`) is still registered,
            // and `worktree add` refuses its path until it is pruned.
            run(git(&repo).args(["worktree", "prune"])).await?;
            run(git(&repo)
                .args(["worktree", "add", "--quiet", "--detach", "--force"])
                .arg(&src)
                .arg(&hash))
            .await?;
        }
        eprintln!("bench: building the baseline {hash} in {}", src.display());
        let mut cargo = Command::new("cargo");
        cargo
            .current_dir(&src)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .args([
                "build",
                "--release",
                "-p",
                "database-operator",
                "-p",
                "backup-operator",
            ]);
        run(&mut cargo).await?;
        Ok(Binaries {
            label: hash,
            kind: Kind::Ours {
                dir: root.join("target/release"),
                deploy: src.join("deploy"),
            },
        })
    }

    /// Builds the controller-runtime operator (`hack/build-comparison-operator.sh`).
    pub async fn controller_runtime() -> Result<Binaries> {
        eprintln!("bench: building the controller-runtime operator");
        Ok(Binaries {
            label: "controller-runtime".into(),
            kind: Kind::ControllerRuntime {
                binary: comparison::build().await?,
            },
        })
    }

    /// The processes a run starts, in this order.
    pub fn programs(&self) -> Vec<Program> {
        match self.kind {
            Kind::Ours { .. } => Operator::ALL.map(Program::Ours).to_vec(),
            Kind::ControllerRuntime { .. } => vec![Program::ControllerRuntime],
        }
    }

    /// Where `program`'s binary is.
    pub fn path(&self, program: Program) -> PathBuf {
        match &self.kind {
            Kind::Ours { dir, .. } => dir.join(program.name()),
            Kind::ControllerRuntime { binary } => binary.clone(),
        }
    }

    /// A kubeconfig acting as `program`'s ServiceAccount.
    pub async fn kubeconfig(&self, cluster: &Cluster, program: Program) -> Result<PathBuf> {
        match program {
            Program::Ours(operator) => cluster.operator_kubeconfig(operator).await,
            Program::ControllerRuntime => comparison::kubeconfig(cluster).await,
        }
    }

    /// Grants these binaries' processes what they need in the namespace `ns` of a run:
    /// nothing for ours, whose ClusterRoles ([`Self::grant_rbac`]) cover every namespace.
    pub async fn grant_namespace(&self, cluster: &Cluster, ns: &str) -> Result<()> {
        match self.kind {
            Kind::Ours { .. } => Ok(()),
            Kind::ControllerRuntime { .. } => comparison::grant(cluster, ns).await,
        }
    }

    /// Grants the operators' ServiceAccounts the rules these binaries were written for: a
    /// baseline from before a change of RBAC (reads moved to watch caches, say) needs its
    /// own. The ClusterRoles keep their names, so the tokens already issued stay valid. For
    /// the controller-runtime operator: its ServiceAccount, without rights yet.
    pub async fn grant_rbac(&self, cluster: &Cluster) -> Result<()> {
        let deploy = match &self.kind {
            Kind::Ours { deploy, .. } => deploy,
            Kind::ControllerRuntime { .. } => {
                return comparison::create_service_account(cluster).await;
            }
        };
        for operator in Operator::ALL {
            let rules = deploy.join(operator.name()).join("rbac.yaml");
            let mut kubectl = Command::from(cluster.kubectl());
            run(kubectl.arg("apply").arg("-f").arg(&rules))
                .await
                .with_context(|| format!("granting {}", rules.display()))?;
        }
        Ok(())
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/release`: cargo runs a benchmark from `<target>/release/deps`.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the benchmark's own path")?;
    exe.parent()
        .filter(|deps| deps.file_name().is_some_and(|name| name == "deps"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .with_context(|| format!("{} is not in a cargo deps directory", exe.display()))
}

fn target_dir() -> Result<PathBuf> {
    let profile = profile_dir()?;
    profile
        .parent()
        .map(Path::to_path_buf)
        .with_context(|| format!("{} has no parent", profile.display()))
}

fn git(dir: &Path) -> Command {
    let mut git = Command::new("git");
    git.arg("-C").arg(dir);
    git
}

/// Runs `command` to its end. Its output goes to stderr: stdout is the Markdown the
/// benchmark prints.
pub async fn run(command: &mut Command) -> Result<()> {
    let status = command
        .stdout(Stdio::from(std::io::stderr()))
        .kill_on_drop(true)
        .status()
        .await
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// Runs `command` and returns its stdout, trimmed.
pub async fn output(command: &mut Command) -> Result<String> {
    let out = command
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("starting {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
