//! The relay: the local HTTP/1.1 API (hyper's server) through which the workload reports usage.
//! A report is answered 200 only once the journal has made it durable; the sender takes it from
//! there.
//!
//! - `POST /v1/usage` `{"dimension":"scans","quantity":3}`: 200 `{"dimension","quantity","hour"}`
//!   when durable; 400 for an unknown dimension, a quantity that is not an integer in
//!   0..=2147483647, or malformed JSON; 413 for a body over 64 KiB; 503 while stopping or when
//!   the journal cannot write (retry later). Errors are `{"error": "...", "code": "..."}`.
//! - `GET /v1/usage`: per-hour totals per dimension and what became of each (open, sending,
//!   sent with its record id, folded).
//! - `GET /v1/health`: 200 once the start check passed, 503 before and while stopping.

use crate::journal::Journal;
use crate::ledger::{Ledger, Record, MAX_QUANTITY};
use crate::unix_now;
use bytes::Bytes;
use entitle_verify::record::rfc3339;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::debug;

/// Where the relay listens unless told otherwise, and where its clients look for it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Largest request body.
pub const MAX_BODY: usize = 64 * 1024;
/// A client that starts a request must finish its head within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the relay listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Listen {
    /// `127.0.0.1:8787`, `[::1]:8787` or `unix:/run/entitle/meter.sock`.
    pub fn parse(text: &str) -> Result<Listen, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!(
                    "`{text}`: a unix socket needs an absolute path, e.g. unix:/run/entitle/meter.sock"
                ));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        text.parse::<SocketAddr>().map(Listen::Tcp).map_err(|_| {
            format!("`{text}` is not ADDRESS:PORT (e.g. 127.0.0.1:8787) or unix:/PATH")
        })
    }
}

/// A bound listener, before the runtime exists (so a taken port is reported at once).
pub enum Bound {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener, PathBuf),
}

impl Bound {
    pub fn bind(listen: &Listen) -> Result<Bound, String> {
        match listen {
            Listen::Tcp(address) => std::net::TcpListener::bind(address)
                .map(Bound::Tcp)
                .map_err(|e| format!("cannot listen on {address}: {e}; choose a free port with --meter-listen (ENTITLE_METER_LISTEN)")),
            Listen::Unix(path) => {
                remove_stale_socket(path);
                std::os::unix::net::UnixListener::bind(path)
                    .map(|listener| Bound::Unix(listener, path.clone()))
                    .map_err(|e| format!("cannot listen on unix:{}: {e}; its folder must exist and be writable", path.display()))
            }
        }
    }

    /// What the workload gets in `ENTITLE_METER_URL`.
    pub fn url(&self) -> String {
        match self {
            Bound::Tcp(listener) => match listener.local_addr() {
                Ok(address) => format!("http://{address}"),
                Err(_) => "http://127.0.0.1".into(),
            },
            Bound::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }
}

/// A socket file left by an earlier run would make bind fail; anything else is left alone.
fn remove_stale_socket(path: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Shared between the relay, the sender and whoever stops them.
#[derive(Default)]
pub struct Control {
    /// The start check passed: `GET /v1/health` is 200.
    pub ready: AtomicBool,
    /// No new reports (503); the sender flushes.
    pub stopping: AtomicBool,
    pub stop: Notify,
}

impl Control {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
    }
}

pub struct Relay {
    pub journal: Journal,
    pub dimensions: Vec<String>,
    /// The metering hour in seconds.
    pub period: u64,
    pub control: Arc<Control>,
}

/// Serves until the task is dropped: while the relay stops and flushes it still answers, with
/// 503 for new reports, so a reporter learns that it is stopping rather than finding nothing.
pub async fn serve(bound: Bound, relay: Arc<Relay>) -> std::io::Result<()> {
    match bound {
        Bound::Tcp(listener) => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                spawn_connection(TokioIo::new(stream), Arc::clone(&relay));
            }
        }
        Bound::Unix(listener, path) => {
            let _remove = RemoveOnDrop(path);
            listener.set_nonblocking(true)?;
            let listener = tokio::net::UnixListener::from_std(listener)?;
            loop {
                let (stream, _) = listener.accept().await?;
                spawn_connection(TokioIo::new(stream), Arc::clone(&relay));
            }
        }
    }
}

/// The socket file goes when the relay does.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spawn_connection<I>(io: TokioIo<I>, relay: Arc<Relay>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |request| {
            let relay = Arc::clone(&relay);
            async move { Ok::<_, Infallible>(handle(&relay, request).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        if let Err(error) = builder.serve_connection(io, service).await {
            debug!(%error, "relay connection ended");
        }
    });
}

async fn handle(relay: &Relay, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::POST, "/v1/usage") => report(relay, request).await,
        (&Method::GET, "/v1/usage") => respond(StatusCode::OK, usage(relay)),
        (&Method::GET, "/v1/health") => health(&relay.control),
        (_, "/v1/usage" | "/v1/health") => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
            "POST /v1/usage reports usage; GET /v1/usage and GET /v1/health show the state",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such endpoint; the relay serves POST /v1/usage, GET /v1/usage and GET /v1/health",
        ),
    }
}

/// A report, checked field by field: anything else is refused so a typo is not silently lost.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Report<'a> {
    /// Borrowed from the body unless it has escapes: no allocation per report.
    #[serde(borrow)]
    dimension: std::borrow::Cow<'a, str>,
    quantity: serde_json::Number,
}

async fn report(relay: &Relay, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if relay.control.stopping() {
        return stopping();
    }
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return too_large();
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad-body",
                &format!("cannot read the request body: {e}"),
            )
        }
    };
    let report: Report = match serde_json::from_slice(&body) {
        Ok(report) => report,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad-json",
                &format!(
                    "the body must be JSON like {{\"dimension\":\"scans\",\"quantity\":3}}: {e}"
                ),
            )
        }
    };
    let Some(quantity) = report.quantity.as_u64().filter(|q| *q <= MAX_QUANTITY) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-quantity",
            &format!(
                "quantity {} is not a whole number from 0 to {MAX_QUANTITY}",
                report.quantity
            ),
        );
    };
    if !relay.dimensions.iter().any(|d| *d == report.dimension) {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown-dimension",
            &format!(
                "unknown dimension `{}`; this product meters {}",
                report.dimension,
                relay.dimensions.join(", ")
            ),
        );
    }
    match relay
        .journal
        .report(&report.dimension, quantity, unix_now())
        .await
    {
        Ok(hour) => {
            let start = i64::try_from(hour.saturating_mul(relay.period)).unwrap_or(i64::MAX);
            // Written directly: the hot path's answer, and every part of it is already valid JSON
            // (a known dimension, a number, an RFC 3339 time).
            let body = format!(
                "{{\"dimension\":{},\"quantity\":{quantity},\"hour\":\"{}\"}}\n",
                Value::from(report.dimension.as_ref()),
                rfc3339(start).unwrap_or_default()
            );
            respond_text(StatusCode::OK, body)
        }
        Err(_) if relay.control.stopping() => stopping(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-durable",
            &format!("the report was not recorded: {e}; retry later"),
        ),
    }
}

fn health(control: &Control) -> Response<Full<Bytes>> {
    match (control.stopping(), control.ready.load(Ordering::SeqCst)) {
        (true, _) => stopping(),
        (false, true) => respond(StatusCode::OK, json!({ "status": "ok" })),
        (false, false) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the start check (MeterUsage dry run) has not passed yet",
        ),
    }
}

/// The ledger as JSON: every hour still known, newest last.
pub fn usage(relay: &Relay) -> Value {
    let ledger = relay.journal.ledger().clone();
    usage_json(&ledger, &relay.dimensions, relay.control.stopping())
}

fn usage_json(ledger: &Ledger, dimensions: &[String], stopping: bool) -> Value {
    let mut hours: std::collections::BTreeMap<u64, serde_json::Map<String, Value>> =
        Default::default();
    for (dimension, slots) in &ledger.state().slots {
        for (&hour, slot) in slots {
            let entry = match &slot.record {
                None => json!({ "state": "open", "quantity": slot.open }),
                Some(Record::Sending {
                    quantity,
                    timestamp,
                    ..
                }) => json!({
                    "state": "sending", "quantity": quantity, "timestamp": rfc3339(*timestamp),
                    "pending": slot.open,
                }),
                Some(Record::Sent {
                    quantity,
                    timestamp,
                    record_id,
                }) => json!({
                    "state": "sent", "quantity": quantity, "timestamp": rfc3339(*timestamp),
                    "recordId": record_id,
                }),
                Some(Record::Folded {
                    quantity,
                    to,
                    reason,
                }) => json!({
                    "state": "folded", "quantity": quantity,
                    "foldedInto": rfc3339(ledger.hour_start(*to)), "reason": reason,
                }),
            };
            hours
                .entry(hour)
                .or_default()
                .insert(dimension.clone(), entry);
        }
    }
    let hours: Vec<Value> = hours
        .into_iter()
        .map(|(hour, dims)| json!({ "hour": rfc3339(ledger.hour_start(hour)), "dimensions": dims }))
        .collect();
    json!({
        "period": ledger.period(),
        "dimensions": dimensions,
        "stopping": stopping,
        "hours": hours,
    })
}

fn stopping() -> Response<Full<Bytes>> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "stopping",
        "the relay is stopping and no longer accepts usage",
    )
}

fn too_large() -> Response<Full<Bytes>> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        &format!("the body is over {MAX_BODY} bytes; a report is one small JSON object"),
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    respond(status, json!({ "error": message, "code": code }))
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    respond_text(status, body.to_string() + "\n")
}

fn respond_text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Event;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            Listen::parse("127.0.0.1:8787"),
            Ok(Listen::Tcp("127.0.0.1:8787".parse().unwrap()))
        );
        assert_eq!(
            Listen::parse("unix:/run/m.sock"),
            Ok(Listen::Unix("/run/m.sock".into()))
        );
        for bad in ["8787", "localhost:8787", "unix:relative.sock", ""] {
            assert!(Listen::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_usage_listing_shows_each_hour_and_state() {
        let mut ledger = Ledger::new(60);
        ledger.apply(&Event::Started { at: 0, period: 60 });
        ledger.apply(&Event::Usage {
            dimension: "scans".into(),
            hour: 1,
            quantity: 5,
        });
        ledger.apply(&Event::Intent {
            dimension: "scans".into(),
            hour: 1,
            quantity: 5,
            timestamp: 61,
            token: "t".into(),
            carry: None,
        });
        ledger.apply(&Event::Sent {
            dimension: "scans".into(),
            hour: 1,
            record_id: "rec-1".into(),
        });
        ledger.apply(&Event::Usage {
            dimension: "gb".into(),
            hour: 2,
            quantity: 7,
        });
        let listing = usage_json(&ledger, &["scans".into(), "gb".into()], false);
        assert_eq!(listing["hours"][0]["hour"], "1970-01-01T00:01:00Z");
        assert_eq!(
            listing["hours"][0]["dimensions"]["scans"]["recordId"],
            "rec-1"
        );
        assert_eq!(listing["hours"][1]["dimensions"]["gb"]["state"], "open");
        assert_eq!(listing["hours"][1]["dimensions"]["gb"]["quantity"], 7);
    }
}
