//! Scenario: the operators' metrics as Prometheus sees them. Both `/metrics` outputs pass
//! `promtool check metrics`; a real Prometheus server scrapes both operators, finds the series
//! the alerts and the dashboard use, and sees them move when a Database becomes Ready.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use api::Database;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, body::Bytes, header};
use hyper_util::rt::TokioIo;
use kube::Api;
use testenv::{Operator, OperatorProcess};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use scenarios::*;

/// How often Prometheus scrapes the operators, so a change shows within a second or two.
const SCRAPE_INTERVAL: &str = "1s";
/// Between two looks at an endpoint that is not there yet.
const POLL: Duration = Duration::from_millis(250);

#[tokio::test]
async fn prometheus_scrapes_both_operators_and_sees_a_database_become_ready() {
    let promtool = tool("PROMTOOL");
    let prometheus = tool("PROMETHEUS");
    let mut scenario = Scenario::new("observability").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();

    let db_metrics = local_address(free_port().unwrap());
    let backup_metrics = local_address(free_port().unwrap());
    scenario
        .start_with_metrics(Operator::Database, db_metrics)
        .await;
    scenario
        .start_with_metrics(Operator::Backup, backup_metrics)
        .await;

    // What each operator exports is valid exposition format and passes promtool's lint.
    for (operator, address) in [
        (Operator::Database, db_metrics),
        (Operator::Backup, backup_metrics),
    ] {
        let text = wait_for_ok(address, "/metrics").await.unwrap_or_else(|e| {
            scenario.fail(e.context(format!("{}'s /metrics", operator.name())))
        });
        check_metrics(&promtool, &text).await.unwrap_or_else(|e| {
            scenario.fail(e.context(format!("{}'s /metrics", operator.name())))
        });
    }

    let server = PrometheusServer::start(&prometheus, &[db_metrics, backup_metrics])
        .unwrap_or_else(|e| scenario.fail(e));
    let fail = |e: anyhow::Error| -> ! {
        panic!(
            "{e:#}\n{}\n---\n{}",
            scenario.logs(),
            server.process.log_tail(40)
        )
    };
    wait_for_ok(server.address, "/-/ready")
        .await
        .unwrap_or_else(|e| fail(e.context("Prometheus never became ready")));

    // Both targets are up and every series the alerts and the dashboard rely on is there.
    for promql in [
        r#"up{job="database-operator"} == 1"#,
        r#"up{job="backup-operator"} == 1"#,
        "database_operator_reconciliations_total",
        r#"database_operator_databases{phase="Ready"}"#,
        "database_operator_leader == 1",
        "backup_operator_runs_total",
        "backup_operator_leader == 1",
    ] {
        server
            .wait_for(promql)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
    }
    // Nothing in the namespace yet: no Database is Ready.
    let ready_before = server
        .value(r#"sum(database_operator_databases{phase="Ready"})"#)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(ready_before, 0.0, "a Ready Database in an empty namespace");
    let reconciled_before = server
        .value("sum(database_operator_reconciliations_total)")
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    apply_yaml(&client, n, &sample("seed-database.yaml"))
        .await
        .unwrap();
    play_kubelet(&client, n, "my-database", 1)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    testenv::wait_for(&databases, "my-database", database_ready, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let ready = std::time::Instant::now();

    // Prometheus sees it on its next scrapes: more reconciles, and one Database Ready.
    server
        .wait_for(&format!(
            "sum(database_operator_reconciliations_total) > {reconciled_before}"
        ))
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    server
        .wait_for(r#"database_operator_databases{phase="Ready"} >= 1"#)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let reconciled_after = server
        .value("sum(database_operator_reconciliations_total)")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    println!(
        "observability: reconciliations {reconciled_before} -> {reconciled_after}, \
         Ready Databases 0 -> 1, seen by Prometheus {:?} after Ready",
        ready.elapsed()
    );

    drop(server);
    scenario.finish().await;
}

/// The path of a tool `hack/build-tools.sh --env` exports; the justfile's `test` recipe does.
fn tool(variable: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{variable} is not set: run the tests through `./justw test`, or \
             `eval \"$(hack/build-tools.sh --env)\"` first"
            )
        })
}

fn local_address(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `promtool check metrics` on an exposition, which fails on format errors and lint problems
/// (a counter without `_total`, a missing HELP text, ...).
async fn check_metrics(promtool: &Path, text: &str) -> Result<()> {
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", promtool.display()))?;
    let mut stdin = child.stdin.take().context("promtool's stdin")?;
    stdin.write_all(text.as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    ensure!(
        output.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- the metrics ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A Prometheus server with its own storage in a temporary directory, scraping the given
/// operators' `/metrics`; killed when dropped, panic or not.
struct PrometheusServer {
    address: SocketAddr,
    process: OperatorProcess,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// `targets` are the database-operator's and the backup-operator's metrics addresses.
    fn start(binary: &Path, targets: &[SocketAddr; 2]) -> Result<PrometheusServer> {
        let dir = tempfile::Builder::new()
            .prefix("testenv-prometheus-")
            .tempdir()?;
        let config = format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_INTERVAL}\n\
             scrape_configs:\n\
             - job_name: database-operator\n  static_configs: [{{targets: ['{}']}}]\n\
             - job_name: backup-operator\n  static_configs: [{{targets: ['{}']}}]\n",
            targets[0], targets[1]
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let address = local_address(free_port()?);
        let args = [
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={address}"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = OperatorProcess::spawn_program("prometheus", binary, &args)?;
        Ok(PrometheusServer {
            address,
            process,
            _dir: dir,
        })
    }

    /// The instant vector `promql` evaluates to now: each sample's value.
    async fn query(&self, promql: &str) -> Result<Vec<f64>> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let (status, body) = get(self.address, &path).await?;
        let response: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("Prometheus answered {status}: {body}"))?;
        ensure!(
            status == 200 && response["status"] == "success",
            "Prometheus answered {status} to {promql}: {body}"
        );
        let data = &response["data"];
        ensure!(
            data["resultType"] == "vector",
            "{promql} is not an instant vector: {body}"
        );
        data["result"]
            .as_array()
            .context("no result")?
            .iter()
            .map(|sample| {
                sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("a sample without a value: {sample}"))
            })
            .collect()
    }

    /// The single value `promql` evaluates to now.
    async fn value(&self, promql: &str) -> Result<f64> {
        match self.query(promql).await?.as_slice() {
            [value] => Ok(*value),
            other => bail!("{promql} gave {other:?}, not one value"),
        }
    }

    /// Waits until `promql` has a result: the series exist, or a comparison holds. Bounded by
    /// [`CONVERGE`]; Prometheus scrapes every [`SCRAPE_INTERVAL`].
    async fn wait_for(&self, promql: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + CONVERGE;
        loop {
            let last = self.query(promql).await;
            if last.as_ref().is_ok_and(|v| !v.is_empty()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("after {CONVERGE:?}, Prometheus still has no result for {promql}: {last:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Polls `path` until it answers 200, then returns the body. Bounded by [`CONVERGE`]: the
/// servers need a moment to start.
async fn wait_for_ok(address: SocketAddr, path: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let last = get(address, path).await;
        if let Ok((200, body)) = last {
            return Ok(body);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("after {CONVERGE:?}, GET http://{address}{path} gave {last:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One HTTP/1.1 GET: the status code and the body.
async fn get(address: SocketAddr, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let stream = TcpStream::connect(address).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection);
        let request = Request::get(path)
            .header(header::HOST, address.to_string())
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        connection.abort();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .with_context(|| format!("GET http://{address}{path} timed out"))?
}

/// `text` as a URL query value: everything but RFC 3986's unreserved characters escaped.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
