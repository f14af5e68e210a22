//! The relay's client: `entitle usage DIMENSION QUANTITY` for products that report from a shell
//! (exit 0 once the relay says the report is durable), and `entitle health`, a probe for
//! containers that have no HTTP client (exit 0 when the relay is up and its start check passed).

use crate::aws;
use crate::cli::UsageReport;
use crate::exit::Failure;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;
use tracing::debug;

/// The whole exchange, connection included, must end within this.
const TIMEOUT: Duration = Duration::from_secs(10);

pub fn report(report: &UsageReport) -> Result<(), Failure> {
    let (status, body) = within(&report.url, TIMEOUT, post_with_retries(report))?;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let message = answer["error"].as_str().unwrap_or("no message").to_owned();
    match (status, answer["code"].as_str()) {
        (200, _) => {
            debug!(hour = %answer["hour"], "usage recorded");
            Ok(())
        }
        (400, Some("unknown-dimension")) => Err(Failure::Config(message)),
        (400 | 413, _) => Err(Failure::Usage(message)),
        (503, _) => Err(Failure::Transient(format!("{message} (retry)"))),
        (status, _) => Err(Failure::Internal(format!(
            "unexpected answer from the relay at {}: HTTP {status}: {message}",
            report.url
        ))),
    }
}

/// A relay that is (re)starting refuses connections for a moment: retried until [`TIMEOUT`].
async fn post_with_retries(report: &UsageReport) -> Result<(u16, Bytes), Failure> {
    let deadline = tokio::time::Instant::now() + TIMEOUT - Duration::from_millis(300);
    let mut pause = Duration::from_millis(100);
    loop {
        match post(report).await {
            Err(Failure::Transient(why)) if tokio::time::Instant::now() + pause < deadline => {
                debug!(%why, "retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

async fn post(report: &UsageReport) -> Result<(u16, Bytes), Failure> {
    let body = serde_json::json!({ "dimension": report.dimension, "quantity": report.quantity });
    let request = hyper::Request::post("/v1/usage")
        .header(hyper::header::HOST, "entitle-relay")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| Failure::Internal(e.to_string()))?;
    exchange(&report.url, request).await
}

/// `entitle health`: 0 when `GET /v1/health` answers 200; 75 when the relay is unreachable,
/// still checking, or stopping.
pub fn health(url: &str) -> Result<(), Failure> {
    let request = hyper::Request::get("/v1/health")
        .header(hyper::header::HOST, "entitle-relay")
        .body(Full::new(Bytes::new()))
        .map_err(|e| Failure::Internal(e.to_string()))?;
    match within(url, PROBE_TIMEOUT, exchange(url, request))? {
        (200, _) => Ok(()),
        (status, body) => {
            let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            Err(Failure::Transient(format!(
                "the relay at {url} is not ready (HTTP {status}): {}",
                answer["error"].as_str().unwrap_or("no message")
            )))
        }
    }
}

/// A probe answers quickly or not at all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `work` to its end or `limit`, whichever comes first (75 naming the relay at `url`).
fn within<T>(
    url: &str,
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    aws::block_on(async {
        tokio::time::timeout(limit, work).await.map_err(|_| {
            Failure::Transient(format!(
                "the relay at {url} did not answer within {}s",
                limit.as_secs()
            ))
        })?
    })
}

/// One request to the relay at `url` (`http://HOST:PORT` or `unix:/PATH`): status and body.
async fn exchange(
    url: &str,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), Failure> {
    let unreachable = |e: &dyn std::fmt::Display| {
        Failure::Transient(format!(
            "the metering relay at {url} is unreachable: {e}; is entitle run --meter (or entitle meter) running, and is ENTITLE_METER_URL right?"
        ))
    };
    let response = if let Some(path) = url.strip_prefix("unix:") {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| unreachable(&e))?;
        send(stream, request).await
    } else {
        let address = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "--meter-url (ENTITLE_METER_URL) is `{url}`, expected http://HOST:PORT or unix:/PATH"
                ))
            })?;
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| unreachable(&e))?;
        send(stream, request).await
    };
    response.map_err(|e| unreachable(&e))
}

async fn send<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}
