//! Metering, the stage beside the workload: the journal, the relay and the sender started
//! together on their own threads (the PID 1 loop is untouched) and stopped together: stop
//! accepting, send every open hour within the flush timeout, say exactly what is left.

use crate::aws::{self, AwsSettings};
use crate::check;
use crate::config::{CheckSettings, MeterSettings};
use crate::exit::Failure;
use crate::journal::Journal;
use crate::ledger::Event;
use crate::relay::{self, Bound, Control, Relay};
use crate::sender::{Sender, SenderSettings};
use crate::supervise::{self, RunOptions};
use crate::unix_now;
use entitle_verify::record::rfc3339;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use tracing::{error, info, warn};

/// The variable that tells the workload where to report usage.
pub const ENV_METER_URL: &str = "ENTITLE_METER_URL";

/// `entitle run` for a metered product: the relay starts first (the workload gets its URL in
/// `ENTITLE_METER_URL`), the workload runs under the unchanged supervisor, and once it has
/// exited the relay flushes. The exit code stays the workload's (or the check's).
pub fn run(settings: CheckSettings, mut run: RunOptions) -> Result<i32, Failure> {
    let Some(metering) = settings.metering.clone() else {
        return supervise::run(run, Box::new(move || check::check(&settings)));
    };
    if run.exec {
        return Err(Failure::Config(
            "--exec (ENTITLE_EXEC) would replace entitle and end the metering relay; metered products run under entitle".into(),
        ));
    }
    supervise::block_signals()?;
    let meter = Meter::start(&metering, &settings.product.code, &settings.aws)?;
    run.env.push((ENV_METER_URL.into(), meter.url().into()));
    let control = meter.control();
    let outcome = supervise::run(
        run,
        Box::new(move || {
            let entitlement = check::check(&settings)?;
            control.ready.store(true, Ordering::SeqCst);
            Ok(entitlement)
        }),
    );
    let _ = meter.stop();
    outcome
}

/// `entitle meter`: the start check, then the relay until HUP, INT, QUIT or TERM; 0 when all
/// usage was sent at the stop, 75 when some is left.
pub fn sidecar(settings: CheckSettings) -> Result<i32, Failure> {
    let Some(metering) = settings.metering.clone() else {
        return Err(Failure::Config(
            "`entitle meter` needs the product's dimensions: give --meter DIM[,DIM...] (ENTITLE_METER_DIMENSIONS)".into(),
        ));
    };
    let check_settings = settings.clone();
    supervise::interruptible(Box::new(move || check::check(&check_settings)))?;
    let meter = Meter::start(&metering, &settings.product.code, &settings.aws)?;
    meter.set_ready();
    let signal = supervise::wait_for_stop()?;
    info!(signal = %crate::exit::signal_name(signal), "stop requested");
    meter.stop().map(|()| 0)
}

/// A running relay.
pub struct Meter {
    url: String,
    control: Arc<Control>,
    journal: Journal,
    state: Option<PathBuf>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Meter {
    /// Binds the listener, replays the journal and starts serving and sending. Call it with
    /// signals blocked (see [`crate::supervise::block_signals`]) so its threads never take a
    /// signal meant for the supervisor.
    pub fn start(
        settings: &MeterSettings,
        product_code: &str,
        aws_settings: &AwsSettings,
    ) -> Result<Meter, Failure> {
        let bound = Bound::bind(&settings.listen).map_err(Failure::Config)?;
        let url = bound.url();
        let now = unix_now();
        let started = Event::Started {
            at: now,
            period: settings.period,
        };
        let (journal, replayed) =
            Journal::open(settings.state.as_deref(), started, now).map_err(Failure::Config)?;
        let waiting: u64 = journal.ledger().unsent().iter().map(|u| u.quantity).sum();
        match &settings.state {
            Some(folder) => info!(
                url = %url,
                dimensions = %settings.dimensions.join(","),
                state = %folder.display(),
                replayed_frames = replayed.frames,
                unsent_quantity = waiting,
                "metering relay listening"
            ),
            None => warn!(
                url = %url,
                dimensions = %settings.dimensions.join(","),
                "metering relay listening without --meter-state: acknowledged usage lives only in memory until it is sent, and a crash loses it; give it a volume with --meter-state (ENTITLE_METER_STATE)"
            ),
        }
        let control = Arc::new(Control::default());
        let sender = SenderSettings {
            product_code: product_code.to_owned(),
            aws: aws_settings.clone(),
            offset: (aws::random_fraction() * settings.spread.as_secs_f64()) as u64,
            flush_timeout: settings.flush_timeout,
        };
        let relay = Arc::new(Relay {
            journal: journal.clone(),
            dimensions: settings.dimensions.clone(),
            period: settings.period,
            control: Arc::clone(&control),
        });
        let thread = thread::Builder::new()
            .name("meter".into())
            .spawn(move || serve_and_send(bound, relay, sender))
            .map_err(|e| Failure::Internal(format!("cannot start the metering thread: {e}")))?;
        Ok(Meter {
            url,
            control,
            journal,
            state: settings.state.clone(),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:8787` or `unix:/path`, for `ENTITLE_METER_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The flag the start check sets once it passed (`GET /v1/health` turns 200).
    pub fn control(&self) -> Arc<Control> {
        Arc::clone(&self.control)
    }

    pub fn set_ready(&self) {
        self.control.ready.store(true, Ordering::SeqCst);
    }

    /// Stops accepting (503), sends what is open within the flush timeout, and logs one error
    /// line per dimension and hour still unsent, with its exact quantity. `Err` when any usage
    /// is left (it stays in the journal for the next start, if there is a journal).
    pub fn stop(mut self) -> Result<(), Failure> {
        info!("metering relay stopping: no new reports; sending what is open");
        self.control.request_stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the metering thread panicked");
            }
        }
        self.journal.close();
        let stats = self.journal.stats();
        info!(
            reports = stats.reports,
            batches = stats.batches,
            "metering journal: {} reports made durable in {} synced batches",
            stats.reports,
            stats.batches
        );
        let ledger = self.journal.ledger().clone();
        let left: Vec<_> = ledger
            .unsent()
            .into_iter()
            .filter(|u| u.quantity > 0)
            .collect();
        let kept = match &self.state {
            Some(folder) => format!("kept in {} and sent at the next start", folder.display()),
            None => "LOST: there is no --meter-state to keep it in".to_owned(),
        };
        for unsent in &left {
            error!(
                dimension = %unsent.dimension,
                hour = %rfc3339(ledger.hour_start(unsent.hour)).unwrap_or_default(),
                quantity = unsent.quantity,
                "usage not sent to AWS before the flush timeout: {kept}"
            );
        }
        if left.is_empty() {
            info!("metering relay stopped: all usage sent");
            Ok(())
        } else {
            let total: u64 = left.iter().map(|u| u.quantity).sum();
            Err(Failure::Transient(format!(
                "{total} units of usage in {} records were not sent before --meter-flush-timeout; {kept}",
                left.len()
            )))
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.control.request_stop();
        }
    }
}

/// The metering thread: the relay and the sender on one runtime until the sender has flushed.
fn serve_and_send(bound: Bound, relay: Arc<Relay>, sender: SenderSettings) {
    let journal = relay.journal.clone();
    let control = Arc::clone(&relay.control);
    let result = aws::block_on(async move {
        let server = tokio::spawn(async move {
            if let Err(e) = relay::serve(bound, relay).await {
                error!(error = %e, "the metering relay stopped listening");
            }
        });
        Sender::new(sender, journal, control).run().await;
        server.abort();
        let _ = server.await;
        Ok(())
    });
    if let Err(failure) = result {
        error!(%failure, "the metering relay failed");
    }
}
