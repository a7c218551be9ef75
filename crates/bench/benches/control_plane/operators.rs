//! The operators under measurement: release binaries (this tree's or a baseline's, see
//! [`Binaries`]) run as host processes under their own ServiceAccounts, each watching only the
//! benchmark's namespace, with its metrics endpoint on a loopback port and kube's per-request
//! debug log line enabled. A baseline's binaries get the same flags, so only flags that every
//! compared commit takes are passed (`f53b16a`, before the runtime crate, takes them too).
//! The controller-runtime operator runs the same way, with client-go's per-request log line
//! (see [`comparison`](crate::comparison)).

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use anyhow::{Context, Result, bail};
use bench::readings;
use testenv::{Cluster, Operator, OperatorProcess};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{binaries::Binaries, comparison, cpu};

/// How long an operator may take to sync its caches and report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether the operators log each API request. kube logs one `requesting` line per request
/// at debug level for `kube_client::client::builder`; the operators' own logs stay at info.
/// `BENCH_REQUEST_LOG=0` turns it off, to check that it does not change what is measured.
pub fn requests_logged() -> bool {
    std::env::var("BENCH_REQUEST_LOG").map_or(true, |v| v != "0")
}

fn log_filter() -> &'static str {
    if requests_logged() {
        "info,kube_client::client::builder=debug"
    } else {
        "info"
    }
}

/// Reconciles in flight per controller that the controller-runtime operator is given: our
/// operators' default (`CONCURRENT_RECONCILES`), where controller-runtime's own is 1.
pub const CONTROLLER_RUNTIME_WORKERS: &str = "16";

/// A process under measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Ours(Operator),
    /// `bench/controller-runtime`: one process doing both operators' job.
    ControllerRuntime,
}

impl Program {
    /// The binary's and the ServiceAccount's name.
    pub fn name(self) -> &'static str {
        match self {
            Program::Ours(operator) => operator.name(),
            Program::ControllerRuntime => comparison::NAME,
        }
    }

    /// The username the API server sees, as in audit events.
    pub fn username(self) -> String {
        match self {
            Program::Ours(operator) => operator.username(),
            Program::ControllerRuntime => comparison::username(),
        }
    }

    /// The counter of its reconciles, summed over its labels.
    fn reconciles_metric(self) -> &'static str {
        match self {
            Program::Ours(Operator::Database) => "database_operator_reconciliations_total",
            Program::Ours(Operator::Backup) => "backup_operator_reconcile_duration_seconds_count",
            Program::ControllerRuntime => "controller_runtime_reconcile_total",
        }
    }

    /// Whether a log line is one of its client's per-request lines.
    fn is_request_line(self, line: &str) -> bool {
        match self {
            Program::Ours(_) => line.contains("\"kube_client::client::builder\""),
            Program::ControllerRuntime => line.contains("\"msg\":\"Response\""),
        }
    }
}

pub struct RunningOperator {
    pub program: Program,
    process: OperatorProcess,
    metrics: SocketAddr,
}

impl RunningOperator {
    /// Starts `program` from `binaries` on namespace `ns` and waits until `/readyz` answers
    /// 200 (caches synced), so what follows measures work, not start-up.
    pub async fn start(
        cluster: &Cluster,
        program: Program,
        binaries: &Binaries,
        ns: &str,
    ) -> Result<Self> {
        let kubeconfig = binaries.kubeconfig(cluster, program).await?;
        let metrics = free_loopback_port()?;
        let address = metrics.to_string();
        let binary = binaries.path(program);
        if !binary.is_file() {
            bail!("{} not found at {}", program.name(), binary.display());
        }
        let mut args = vec!["--namespace", ns, "--metrics-address", &address];
        let process = match program {
            Program::Ours(operator) => {
                if operator == Operator::Backup {
                    args.insert(0, "run");
                }
                args.extend(["--log-format", "json"]);
                let env = [("RUST_LOG", log_filter())];
                OperatorProcess::spawn_binary(operator, &binary, &kubeconfig, &args, &env)?
            }
            Program::ControllerRuntime => {
                let kubeconfig = kubeconfig.to_string_lossy();
                let log_requests = format!("--log-requests={}", requests_logged());
                args.extend([
                    "--kubeconfig",
                    &kubeconfig,
                    "--concurrent-reconciles",
                    CONTROLLER_RUNTIME_WORKERS,
                    &log_requests,
                ]);
                OperatorProcess::spawn_program(program.name(), &binary, &args)?
            }
        };
        let mut running = RunningOperator {
            program,
            process,
            metrics,
        };
        running.wait_ready().await?;
        Ok(running)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok((200, _)) = http_get(self.metrics, "/readyz").await {
                return Ok(());
            }
            if !self.process.is_running() {
                bail!(
                    "{} exited while starting:\n{}",
                    self.program.name(),
                    self.process.log_tail(30)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{} was not ready within {READY_TIMEOUT:?}:\n{}",
                    self.program.name(),
                    self.process.log_tail(30)
                );
            }
            // Readiness is only offered by polling; the bound above keeps it finite.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many reconciles the operator reports, summed over results and controllers.
    pub async fn reconciles(&self) -> Result<u64> {
        let (status, text) = http_get(self.metrics, "/metrics").await?;
        if status != 200 {
            bail!("{} answered /metrics with {status}", self.program.name());
        }
        let metric = self.program.reconciles_metric();
        Ok(readings::metric_sum(&text, metric) as u64)
    }

    /// Peak and current resident memory, in bytes, from `/proc/<pid>/status`.
    pub fn memory(&self) -> Result<(u64, u64)> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let read = |key| {
            readings::proc_status_bytes(&status, key)
                .with_context(|| format!("no {key} in /proc/{pid}/status"))
        };
        Ok((read("VmHWM")?, read("VmRSS")?))
    }

    /// CPU time used so far, in clock ticks (see [`cpu::ticks`]).
    pub fn cpu_ticks(&self) -> Result<u64> {
        cpu::ticks(self.pid()?)
    }

    fn pid(&self) -> Result<u32> {
        self.process
            .pid()
            .with_context(|| format!("{} is not running", self.program.name()))
    }

    /// The length of the log so far, to count requests from here on with [`Self::requests_since`].
    pub fn log_mark(&self) -> Result<usize> {
        Ok(self.log()?.len())
    }

    /// The API requests the operator logged after `mark`, by kind.
    pub fn requests_since(&self, mark: usize) -> Result<BTreeMap<String, u64>> {
        let log = self.log()?;
        let since = log.get(mark..).unwrap_or_default();
        Ok(match self.program {
            Program::Ours(_) => readings::api_requests(since),
            Program::ControllerRuntime => readings::client_go_requests(since),
        })
    }

    /// The operator's own last `lines` log lines, without its client's per-request lines.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log().unwrap_or_else(|e| format!("{e:#}"));
        let own: Vec<_> = log
            .lines()
            .filter(|line| !self.program.is_request_line(line))
            .collect();
        own[own.len().saturating_sub(lines)..].join("\n")
    }

    fn log(&self) -> Result<String> {
        let path = self.process.log_path();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A loopback port free right now. Another process could take it before the operator binds
/// it; the operator then exits at once and [`RunningOperator::start`] says so.
fn free_loopback_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// A plain HTTP/1.0 GET: the status code and the body.
async fn http_get(address: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path}: no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("GET {path}: no status in {head:?}"))?;
    Ok((status, body.to_string()))
}
