//! Log lines on stderr, as text or JSON. Secrets never reach them: the SDK's trace level prints
//! HTTP bodies (an STS answer holds a session token), so other crates are capped at debug.

use crate::exit::Failure;
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Where log lines go and how much: always stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub json: bool,
    /// A tracing filter: a bare level applies to `entitle` itself, other crates stay at `warn`.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            json: false,
            filter: "entitle=info,warn".into(),
        }
    }
}

/// Where Kubernetes reads a container's termination message (`terminationMessagePath`).
const TERMINATION_LOG: &str = "/dev/termination-log";

/// The final line of a failed run: one line naming the cause and the fix. In Kubernetes the
/// same line goes to the termination log, so `kubectl describe pod` says why (on ECS the
/// container's last log line is the reason); not for a command that runs inside a container
/// it does not own (`usage`, a `health` probe), whose failure is not the container's.
pub fn report(failure: &Failure, owns_the_container: bool) {
    match failure {
        Failure::Interrupted(_) => tracing::warn!("{failure}"),
        _ => tracing::error!("{failure}"),
    }
    if owns_the_container {
        write_termination_message(&failure.to_string());
    }
}

/// Writes only where the kubelet made the file: never creates one.
fn write_termination_message(line: &str) {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(TERMINATION_LOG)
    else {
        return;
    };
    let _ = std::io::Write::write_all(&mut file, format!("entitle: {line}\n").as_bytes());
}

pub fn init(settings: &LogSettings) -> Result<(), Failure> {
    let targets: Targets = settings.filter.parse().map_err(|e| {
        Failure::Usage(format!(
            "--log-level (ENTITLE_LOG) `{}` is not a level (error, warn, info, debug, trace) or a filter such as entitle=debug,aws_config=info: {e}",
            settings.filter
        ))
    })?;
    let no_foreign_trace =
        filter_fn(|meta| *meta.level() < Level::TRACE || meta.target().starts_with("entitle"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let layer = if settings.json {
        layer.json().flatten_event(true).boxed()
    } else {
        layer.boxed()
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(targets).with_filter(no_foreign_trace))
        .try_init()
        .map_err(|e| Failure::Internal(format!("cannot set up logging: {e}")))
}
