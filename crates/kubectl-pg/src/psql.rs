//! `kubectl pg psql DATABASE [-- ARGS]`: psql inside the Database's primary Pod, as its owner.
//!
//! Where psql runs: in the PostgreSQL container, through `kubectl exec`. The user needs no
//! psql of their own, no network path to the Pod and no port-forward, and the psql matches the
//! server's version. kubectl (which runs this plugin) already does interactive exec well:
//! terminal modes, resizing, signals, over the same credentials as this plugin; kube-rs's
//! exec support would need its `ws` feature across the workspace and a terminal layer of our
//! own to reach the same point.
//!
//! How the password gets there: it never passes through this plugin. The container already
//! has the Database's credentials in its environment (`POSTGRES_USER`, `POSTGRES_PASSWORD`,
//! `POSTGRES_DB`, from the credentials Secret, set by the database-operator), and the command
//! exec'd is a fixed shell script that hands them to psql inside the container:
//! `PGPASSWORD="$POSTGRES_PASSWORD" exec psql ...`. What crosses the API server (and its audit
//! log) and what the container's process list shows is that script with the variable's
//! *name*; the value is expanded only inside the container, into psql's environment, where it
//! already was. psql connects over TCP to 127.0.0.1 so the password is checked like an
//! application's login, not waved through by the local socket's trust rule.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use api::Database;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;

use crate::cli::Target;
use crate::failure::{Failure, call, one_line};

/// The container PostgreSQL runs in (database-operator's StatefulSet).
pub const CONTAINER: &str = "postgres";

/// The script exec'd in the container; `$@` are the user's psql arguments.
pub const SCRIPT: &str = r#"PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@""#;

pub async fn run(
    target: &Target,
    database: &str,
    replica: bool,
    args: &[String],
) -> Result<ExitCode, Failure> {
    let ns = target.namespace.as_str();
    let databases: Api<Database> = Api::namespaced(target.client.clone(), ns);
    let db = databases
        .get(database)
        .await
        .map_err(call("get", "Database", Some(database), ns))?;
    let status = db.status.clone().unwrap_or_default();
    // The primary, as the Database reports it; with --replica, a ready standby.
    let pod_name = if replica {
        status
            .instances
            .iter()
            .find(|i| i.ready && i.role.as_deref() == Some(api::names::ROLE_REPLICA))
            .map(|i| i.name.clone())
            .ok_or_else(|| {
                Failure::new(format!(
                    "Database {database} has no ready replica (replicas: {}): see `kubectl pg status {database}`",
                    db.spec.replicas
                ))
            })?
    } else {
        status
            .current_primary
            .clone()
            .unwrap_or_else(|| format!("{}-0", api::names::statefulset(database)))
    };
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), ns);
    let pod = pods
        .get_opt(&pod_name)
        .await
        .map_err(call("get", "Pod", Some(&pod_name), ns))?;
    let ready = pod.as_ref().is_some_and(|p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    if !ready {
        return Err(Failure::new(format!(
            "Database {database} has no ready primary (Pod {pod_name} {}; phase {}): \
             see `kubectl pg status {database}`",
            if pod.is_some() {
                "is not ready"
            } else {
                "does not exist"
            },
            db.phase().as_str()
        )));
    }
    may_exec(target, &pod_name).await?;

    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let status = std::process::Command::new("kubectl")
        .args(kubectl_args(target, &pod_name, interactive, args))
        .status()
        .map_err(|e| {
            Failure::new(format!(
                "cannot run kubectl ({e}): kubectl pg psql runs `kubectl exec`; put kubectl on PATH"
            ))
        })?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Asks the API server whether the user may exec into the Pod, so a refusal is one clear
/// line rather than kubectl's.
async fn may_exec(target: &Target, pod: &str) -> Result<(), Failure> {
    let ns = target.namespace.as_str();
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                verb: Some("create".into()),
                resource: Some("pods".into()),
                subresource: Some("exec".into()),
                name: Some(pod.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(target.client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            Failure::new(format!(
                "cannot ask the API server whether you may exec into Pod {pod}: {}",
                one_line(&e.to_string())
            ))
        })?;
    if answer.status.is_some_and(|s| s.allowed) {
        return Ok(());
    }
    Err(Failure::new(format!(
        "not permitted by RBAC to exec into Pod {pod} in namespace {ns} (create pods/exec), \
         which psql needs: ask your cluster administrator for that right"
    )))
}

/// `kubectl exec` into the PostgreSQL container running [`SCRIPT`] with the user's arguments.
pub fn kubectl_args(target: &Target, pod: &str, interactive: bool, args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(kubeconfig) = &target.kubeconfig {
        out.push(format!("--kubeconfig={}", kubeconfig.display()));
    }
    if let Some(context) = &target.context {
        out.push(format!("--context={context}"));
    }
    out.extend([
        "--namespace".into(),
        target.namespace.clone(),
        "exec".into(),
        "-i".into(),
    ]);
    if interactive {
        out.push("-t".into());
    }
    out.extend([
        pod.to_string(),
        "-c".into(),
        CONTAINER.into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        // $0 of the script, shown by sh in its error messages.
        "psql".into(),
    ]);
    out.extend(args.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_exec_carries_the_variable_names_and_never_a_password() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let target = Target {
            client: kube::Client::try_from(config).unwrap(),
            namespace: "prod".into(),
            kubeconfig: Some("/k/config".into()),
            context: None,
        };
        let args = kubectl_args(&target, "shop-0", false, &["-c".into(), "select 1".into()]);
        assert_eq!(
            args,
            [
                "--kubeconfig=/k/config",
                "--namespace",
                "prod",
                "exec",
                "-i",
                "shop-0",
                "-c",
                "postgres",
                "--",
                "sh",
                "-c",
                SCRIPT,
                "psql",
                "-c",
                "select 1"
            ]
        );
        assert!(SCRIPT.contains(r#"PGPASSWORD="$POSTGRES_PASSWORD""#));
        assert!(kubectl_args(&target, "shop-0", true, &[]).contains(&"-t".to_string()));
    }
}
