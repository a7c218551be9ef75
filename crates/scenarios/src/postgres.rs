//! Talking to the PostgreSQL a Database runs, on the real node.

use std::{process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use api::names;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::{Api, Client};
use testkit::DatabaseFixture;

/// Pod start-up (image already present, initdb on first start) and Jobs take seconds here;
/// the bound only has to survive a busy two-core machine.
pub const POD_START: Duration = Duration::from_secs(240);

/// The image every test Database runs: built locally by hack/images.sh from Debian's
/// postgresql-17.
pub const POSTGRES_IMAGE: &str = "postgres:17";

/// Runs SQL as the Database's owner through its client Service (ClusterIP, routed by
/// kube-proxy), with the credentials from its Secret: what an application in the cluster does.
pub async fn psql(client: &Client, ns: &str, database: &str, sql: &str) -> Result<String> {
    let env = connection_env(client, ns, database).await?;
    // kube-proxy programs a Service's rules about a second after its endpoints change, so a
    // client that connects the moment the Database turned Ready may be refused. "No route to
    // host" was seen once at that moment too (a cold CI run, with other tests' Pods coming and
    // going on the bridge; most likely the host still resolving the address of a reused Pod
    // IP). Like any client it retries those two, briefly; every other failure fails at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let output = loop {
        let output = Command::new("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .context("running psql (Debian package postgresql-client)")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let unreachable = ["Connection refused", "No route to host"]
            .iter()
            .any(|transient| stderr.contains(transient));
        if output.status.success() || !unreachable || std::time::Instant::now() > deadline {
            break output;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if !output.status.success() {
        bail!(
            "psql against {database} ({}) failed: {}",
            env[0].1,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The libpq environment (`PGHOST`, `PGUSER`, ...) that connects to the Database's client
/// Service as its owner, for [`psql`] and for sessions a test keeps open.
pub async fn connection_env(
    client: &Client,
    ns: &str,
    database: &str,
) -> Result<Vec<(&'static str, String)>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = secrets.get(&names::credentials_secret(database)).await?;
    let data = secret.data.context("credentials Secret without data")?;
    let field = |key: &str| -> Result<String> {
        let bytes = data
            .get(key)
            .with_context(|| format!("credentials Secret lacks {key}"))?;
        Ok(String::from_utf8(bytes.0.clone())?)
    };
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let service = services.get(&names::client_service(database)).await?;
    let ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .context("client Service without a ClusterIP")?;
    Ok(vec![
        ("PGHOST", ip),
        ("PGPORT", names::POSTGRES_PORT.to_string()),
        ("PGUSER", field(names::SECRET_USERNAME)?),
        ("PGPASSWORD", field(names::SECRET_PASSWORD)?),
        ("PGDATABASE", field(names::SECRET_DATABASE)?),
        ("PGCONNECT_TIMEOUT", "10".to_string()),
    ])
}

/// A Database running the locally built PostgreSQL 17, on a small volume.
pub fn node_database(name: &str) -> DatabaseFixture {
    testkit::database(name)
        .image(POSTGRES_IMAGE)
        .storage("256Mi")
}
