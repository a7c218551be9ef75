//! Reading the archiver: its Pod from the API server, then `GET /status` on the Pod's IP.
//! Any failure is an observation ([`Seen::NotRunning`]), never a reconcile error: the
//! condition says what is wrong.

use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::health::{ArchiverReport, Seen};
use super::statefulset::STATUS_PORT;

/// A `/status` answer takes milliseconds; a Pod that does not answer within this is
/// reported as not running rather than holding up the reconcile.
const TIMEOUT: Duration = Duration::from_secs(3);

pub async fn poll(pods: &Api<Pod>, pod_name: &str) -> Seen {
    let pod = match pods.get_opt(pod_name).await {
        Ok(Some(pod)) => pod,
        Ok(None) => return Seen::NotRunning(format!("Pod {pod_name} does not exist")),
        Err(error) => {
            return Seen::NotRunning(format!("Pod {pod_name} could not be read: {error}"));
        }
    };
    let status = pod.status.unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let ip = status.pod_ip.clone().filter(|_| phase == "Running");
    let Some(ip) = ip else {
        let waiting = status
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref())
            .map(|w| {
                format!(
                    " ({}: {})",
                    w.reason.clone().unwrap_or_default(),
                    w.message.clone().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        return Seen::NotRunning(format!("Pod {pod_name} is {phase}{waiting}"));
    };
    let url = format!("http://{ip}:{STATUS_PORT}/status");
    match tokio::time::timeout(TIMEOUT, get(&ip)).await {
        Ok(Ok(body)) => match serde_json::from_slice::<ArchiverReport>(&body) {
            Ok(report) => Seen::Report(report),
            Err(error) => {
                Seen::NotRunning(format!("{url} answered with an unreadable status: {error}"))
            }
        },
        Ok(Err(error)) => Seen::NotRunning(format!("{url} did not answer: {error}")),
        Err(_) => Seen::NotRunning(format!("{url} did not answer within {TIMEOUT:?}")),
    }
}

/// One HTTP/1.1 `GET /status` on a fresh connection: a poll every few seconds needs no pool.
async fn get(ip: &str) -> anyhow::Result<Bytes> {
    let stream = tokio::net::TcpStream::connect((ip, STATUS_PORT as u16)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get("/status")
        .header(header::HOST, ip)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        anyhow::bail!("HTTP {}", response.status());
    }
    Ok(response.into_body().collect().await?.to_bytes())
}
