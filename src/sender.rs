//! The sender: `MeterUsage` calls. At start, a dry run per dimension (the check that the
//! customer is entitled and every dimension is the product's); then, after each hour, one
//! record per dimension that had usage, at this process's own offset into the hour so a fleet
//! does not hit the account's quota at :00; on stop, every open hour including the current one.
//!
//! Each record is frozen in the journal (quantity, timestamp, client token) before it is sent,
//! and only ever re-sent identically, so a retry after a lost answer is idempotent (MeterUsage
//! API reference: `ClientToken`, and identical requests return the same record). What AWS
//! refuses for the hour (`DuplicateRequestException`, `TimestampOutOfBoundsException`) or what
//! cannot be sent within 5 hours moves to the next open hour; nothing is dropped.

use crate::aws::{self, AwsSettings, Cause, Verdict};
use crate::exit::Failure;
use crate::journal::Journal;
use crate::ledger::{Due, Event, Ledger};
use crate::relay::Control;
use crate::unix_now;
use aws_sdk_marketplacemetering::Client;
use aws_smithy_types::DateTime;
use entitle_verify::record::rfc3339;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// How long a record AWS refused for a reason retrying cannot fix (no permission, not
/// entitled) waits before it is tried again: a deployment fix (an IAM policy) then heals it.
const REFUSED_RETRY: Duration = Duration::from_secs(300);

/// What the sender needs.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub product_code: String,
    pub aws: AwsSettings,
    /// Seconds after each hour this process sends that hour's records.
    pub offset: u64,
    pub flush_timeout: Duration,
}

/// The start check: a `MeterUsage` dry run for each dimension, retried on throttling and
/// transient failures within `budget`. AWS documents `DryRunOperation` as the answer of a dry
/// run that would succeed; a plain 200 counts too, and so does `DuplicateRequestException`.
pub fn dry_run(
    product_code: &str,
    dimensions: &[String],
    aws_settings: &AwsSettings,
    budget: Duration,
) -> Result<(), Failure> {
    let http = aws::transport(aws_settings)?;
    aws::block_on(async {
        let mut attempts = aws::Attempts::new("MeterUsage", budget, aws_settings.attempt_timeout);
        let client = aws::client(aws_settings, http, budget).await?;
        for dimension in dimensions {
            loop {
                let limit = attempts.begin();
                let call = client
                    .meter_usage()
                    .product_code(product_code)
                    .timestamp(DateTime::from_secs(unix_now()))
                    .usage_dimension(dimension)
                    .usage_quantity(0)
                    .dry_run(true)
                    .customize()
                    .config_override(aws::within(limit, aws_settings))
                    .send();
                let verdict = match tokio::time::timeout(limit, call).await {
                    Ok(Ok(_)) => break,
                    // A dry run that got as far as the hour's record was authorised and its
                    // dimension is valid: a record for this hour already exists when the
                    // container restarts within the hour after a stop sent the partial hour.
                    Ok(Err(e))
                        if matches!(
                            code_of(&e),
                            Some("DryRunOperation" | "DuplicateRequestException")
                        ) =>
                    {
                        break
                    }
                    Ok(Err(e)) => aws::classify("MeterUsage", &e),
                    Err(_) => Verdict::Retry(
                        Cause::Timeout,
                        format!("no answer within {}", aws::seconds(limit)),
                    ),
                };
                attempts.failed(verdict).await?;
            }
        }
        info!(
            product_code,
            dimensions = %dimensions.join(","),
            attempts = attempts.count,
            "metering check passed: MeterUsage dry run accepted for every dimension"
        );
        Ok(())
    })
}

fn code_of<E: aws_sdk_marketplacemetering::error::ProvideErrorMetadata>(
    error: &aws_sdk_marketplacemetering::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}

/// The sender task: runs until a stop is requested, then flushes.
pub struct Sender {
    settings: SenderSettings,
    journal: Journal,
    control: Arc<Control>,
    client: Option<Client>,
    backoff: Backoff,
}

impl Sender {
    pub fn new(settings: SenderSettings, journal: Journal, control: Arc<Control>) -> Sender {
        Sender {
            settings,
            journal,
            control,
            client: None,
            backoff: Backoff::default(),
        }
    }

    /// Sends each hour's records when due; on stop, flushes within the flush timeout.
    pub async fn run(mut self) {
        while !self.control.stopping() {
            self.plan(false).await;
            if self.backoff.ready() {
                self.send_due(None).await;
            }
            self.sleep_until_due().await;
        }
        self.flush().await;
    }

    /// Journals what is due now: frozen records, folds.
    async fn plan(&mut self, stopping: bool) {
        let now = unix_now();
        let events = self
            .journal
            .ledger()
            .plan(now, self.settings.offset, stopping, seed());
        for event in &events {
            self.say_planned(event);
        }
        if let Err(e) = self.journal.record(events).await {
            error!(error = %e, "cannot journal the hour's records; retrying");
            self.backoff.failed(Cause::Network, e.to_string(), None);
        }
    }

    fn say_planned(&self, event: &Event) {
        if let Event::Folded {
            dimension,
            hour,
            to,
            reason,
        } = event
        {
            let ledger = self.journal.ledger();
            let quantity = ledger
                .due()
                .into_iter()
                .find(|d| d.dimension == *dimension && d.hour == *hour)
                .map_or(0, |d| d.quantity);
            warn!(
                dimension,
                hour = %hour_text(&ledger, *hour),
                quantity,
                into = %hour_text(&ledger, *to),
                "MeterUsage record folded into a later hour: {reason}"
            );
        }
    }

    /// Sends every frozen record, oldest first, until one fails transiently (the quota and the
    /// network are shared: the next one would fail the same way).
    async fn send_due(&mut self, deadline: Option<Instant>) {
        let due = self.journal.ledger().due();
        for record in due {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) || !self.send(&record, left).await {
                return;
            }
        }
    }

    /// One record. `true` when it is settled (sent or folded), `false` to pause.
    async fn send(&mut self, due: &Due, left: Option<Duration>) -> bool {
        let verdict = match self.call(due, left).await {
            Ok(record_id) => {
                info!(
                    dimension = %due.dimension,
                    hour = %hour_text(&self.journal.ledger(), due.hour),
                    quantity = due.quantity,
                    record_id = %record_id,
                    "MeterUsage recorded"
                );
                self.backoff.succeeded();
                return self
                    .settle(Event::Sent {
                        dimension: due.dimension.clone(),
                        hour: due.hour,
                        record_id,
                    })
                    .await;
            }
            Err(verdict) => verdict,
        };
        match verdict {
            Verdict::Fold(reason) => {
                let event =
                    self.journal
                        .ledger()
                        .fold(&due.dimension, due.hour, reason, unix_now());
                self.say_planned(&event);
                self.settle(event).await
            }
            Verdict::ClockSkew(reason, _) if !self.backoff.skewed => {
                self.backoff.skewed = true;
                info!(%reason, "AWS refused the request's time; retrying once with AWS's clock");
                false
            }
            Verdict::Retry(cause, reason) => {
                self.backoff.failed(cause, reason, Some(due));
                false
            }
            Verdict::ClockSkew(reason, _) => {
                self.backoff.refused(
                    &Failure::Config(format!("{reason}; fix the node's time synchronisation")),
                    due,
                );
                false
            }
            Verdict::Fail(failure) => {
                self.backoff.refused(&failure, due);
                false
            }
        }
    }

    async fn settle(&mut self, event: Event) -> bool {
        match self.journal.record(vec![event]).await {
            Ok(()) => true,
            Err(e) => {
                error!(error = %e, "cannot journal a MeterUsage result; it will be re-sent (identically)");
                self.backoff.failed(Cause::Network, e.to_string(), None);
                false
            }
        }
    }

    async fn call(&mut self, due: &Due, left: Option<Duration>) -> Result<String, Verdict> {
        let limit = left.map_or(self.settings.aws.attempt_timeout, |l| {
            l.min(self.settings.aws.attempt_timeout)
        });
        let client = self.client(limit).await.map_err(Verdict::Fail)?;
        let call = client
            .meter_usage()
            .product_code(&self.settings.product_code)
            .timestamp(DateTime::from_secs(due.timestamp))
            .usage_dimension(&due.dimension)
            .usage_quantity(i32::try_from(due.quantity).unwrap_or(i32::MAX))
            .client_token(&due.token)
            .customize()
            .config_override(aws::within(limit, &self.settings.aws))
            .send();
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(output)) => Ok(output.metering_record_id().unwrap_or("(no id)").to_owned()),
            Ok(Err(e)) => Err(aws::classify("MeterUsage", &e)),
            Err(_) => Err(Verdict::Retry(
                Cause::Timeout,
                format!("no answer within {}", aws::seconds(limit)),
            )),
        }
    }

    async fn client(&mut self, limit: Duration) -> Result<Client, Failure> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let http = aws::transport(&self.settings.aws)?;
        let client = aws::client(&self.settings.aws, http, limit).await?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Sleeps until the next send time (at the latest, this hour's: a report may arrive any
    /// moment), a fold time or the end of a backoff, or a stop. Idle, that is one wake-up an
    /// hour.
    async fn sleep_until_due(&self) {
        let now = unix_now();
        let wake_at = {
            let ledger = self.journal.ledger();
            let this_hour = ledger.send_time(ledger.hour_of(now), self.settings.offset);
            ledger
                .next_wake(self.settings.offset)
                .map_or(this_hour, |at| at.min(this_hour))
        };
        let mut pause = Duration::from_secs(u64::try_from(wake_at - now).unwrap_or(0));
        if !self.journal.ledger().due().is_empty() {
            pause = pause.min(self.backoff.wait());
        }
        let stop = self.control.stop.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        if self.control.stopping() || pause.is_zero() {
            return;
        }
        let _ = tokio::time::timeout(pause.max(Duration::from_millis(50)), stop).await;
    }

    /// Freezes every open hour (the current one at now), sends within the flush timeout.
    async fn flush(&mut self) {
        let deadline = Instant::now() + self.settings.flush_timeout;
        self.plan(true).await;
        self.backoff.progress_every = Duration::from_secs(5);
        loop {
            if self.journal.ledger().due().is_empty() || Instant::now() >= deadline {
                return;
            }
            let pause = self
                .backoff
                .wait()
                .min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
            if Instant::now() < deadline {
                self.send_due(Some(deadline)).await;
            }
        }
    }
}

fn seed() -> u64 {
    (aws::random_fraction() * u64::MAX as f64) as u64
}

fn hour_text(ledger: &Ledger, hour: u64) -> String {
    rfc3339(ledger.hour_start(hour)).unwrap_or_else(|| hour.to_string())
}

/// One backoff for all sends (they share the account's quota and the network), and the lines
/// that say why sending is paused.
struct Backoff {
    until: Option<Instant>,
    failures: u32,
    throttles: u32,
    skewed: bool,
    last_said: Option<Instant>,
    progress_every: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            until: None,
            failures: 0,
            throttles: 0,
            skewed: false,
            last_said: None,
            progress_every: aws::PROGRESS_EVERY,
        }
    }
}

impl Backoff {
    fn ready(&self) -> bool {
        self.until.is_none_or(|until| Instant::now() >= until)
    }

    fn wait(&self) -> Duration {
        self.until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        })
    }

    fn succeeded(&mut self) {
        if self.failures + self.throttles > 0 {
            info!("MeterUsage calls succeed again");
        }
        *self = Backoff {
            progress_every: self.progress_every,
            ..Backoff::default()
        };
    }

    fn failed(&mut self, cause: Cause, reason: String, due: Option<&Due>) {
        let pause = if cause == Cause::Throttled {
            self.throttles += 1;
            aws::throttle_backoff(self.throttles)
        } else {
            self.failures += 1;
            aws::transient_backoff(self.failures)
        };
        self.until = Some(Instant::now() + pause);
        if self
            .last_said
            .is_none_or(|at| at.elapsed() >= self.progress_every)
        {
            let (dimension, quantity) = due.map_or(("", 0), |d| (d.dimension.as_str(), d.quantity));
            warn!(
                dimension,
                quantity,
                attempts = self.failures + self.throttles,
                retry_in = %aws::seconds(pause),
                "MeterUsage failed, retrying (nothing is lost: the record stays in the journal): {reason}"
            );
            self.last_said = Some(Instant::now());
        }
    }

    /// AWS refused for a reason retrying soon cannot fix: said every time, retried later.
    fn refused(&mut self, failure: &Failure, due: &Due) {
        self.until = Some(Instant::now() + REFUSED_RETRY);
        error!(
            dimension = %due.dimension,
            quantity = due.quantity,
            retry_in = %aws::seconds(REFUSED_RETRY),
            "MeterUsage refused; the record is kept and retried: {failure}"
        );
    }
}
