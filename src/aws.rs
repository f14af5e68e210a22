//! The AWS Marketplace Metering client that registration, the metering check and the sender
//! share: region, credentials, endpoint and HTTP ([`crate::transport`]), with the SDK's own
//! retry off; what each failure means; and the one retry policy.
//!
//! Retry policy (AWS Seller Guide, container metering): terminate on any error but throttling,
//! and retry transient problems with exponential backoff. The SDK's own retry is disabled so
//! that the loop here is the only one and every deadline holds.

use crate::exit::Failure;
use crate::transport::{NetworkSettings, Transport, TransportError};
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_sdk_marketplacemetering::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_marketplacemetering::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::date_time::{DateTime, Format};
use http_body_util::Limited;
use rand::rngs::SysRng;
use rand::TryRng;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Network and 5xx failures: 0.5 s doubling to 20 s, jitter in the upper half of the window.
const TRANSIENT_BASE: Duration = Duration::from_millis(500);
const TRANSIENT_CAP: Duration = Duration::from_secs(20);
/// Throttling: the quota is per account and Region, shared by every pod starting at once.
/// Retries are spread uniformly over a growing window (4 s, x1.5, to 60 s). Chosen by
/// simulating herds of 10-200 agents against a 5/s token bucket: no fixed schedule is good for
/// every herd size (small herds want short windows, large ones long ones); this one finishes in
/// 1.2-1.7x the N/5 s floor with 1.5 (N=10) to 5 (N=200) requests per agent.
const THROTTLE_BASE: Duration = Duration::from_secs(4);
const THROTTLE_GROWTH: f64 = 1.5;
const THROTTLE_CAP: Duration = Duration::from_secs(60);
/// Largest answer read: a real answer is under 2 KiB and the token limit is 64 KiB. Without a
/// cap the SDK reads any body whole, so a redirected endpoint could make us allocate gigabytes
/// (and be OOM-killed) instead of failing closed.
const MAX_ANSWER_BYTES: usize = 128 * 1024;
/// The least time worth one more attempt before the deadline.
const LAST_ATTEMPT_MIN: Duration = Duration::from_millis(200);
/// How often a long retry says it is still retrying.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// The connection-level timeout the SDK passes to the transport.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the client needs from the configuration.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub endpoint_url: Option<String>,
    pub network: NetworkSettings,
    pub attempt_timeout: Duration,
}

/// A Metering client over our transport, with region and credentials from the default chain
/// (minus the EC2 instance role), or `Err` when there is no usable region. Must run inside a
/// tokio runtime; `limit` bounds the region lookup.
pub async fn client(
    settings: &AwsSettings,
    http: SharedHttpClient,
    limit: Duration,
) -> Result<Client, Failure> {
    let provider_config = ProviderConfig::default().with_http_client(http.clone());
    let region = tokio::time::timeout(limit, region_chain(&provider_config).region())
        .await
        .map_err(|_| {
            Failure::Config(format!(
                "could not find the AWS region within {}; set AWS_REGION",
                seconds(limit)
            ))
        })?;
    check_region(region.as_ref())?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region.clone())
        .credentials_provider(credential_chain(
            &provider_config.with_region(region.clone()),
        ))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(settings.attempt_timeout.min(MAX_CONNECT_TIMEOUT))
                .build(),
        );
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk_config = loader.load().await;
    debug!(
        region = region.as_ref().map_or("", |r| r.as_ref()),
        endpoint = settings.endpoint_url.as_deref().unwrap_or("the AWS endpoint for the region"),
        proxies = %settings.network.proxies.describe(),
        "AWS client ready"
    );
    Ok(Client::from_conf(
        aws_sdk_marketplacemetering::config::Builder::from(&sdk_config)
            .interceptor(AnswerSizeLimit)
            .build(),
    ))
}

/// The per-attempt override: the connection-level timeout (name lookup, connect, proxy, TLS)
/// clipped to the attempt's `limit`, a little under it, so that when the network is what
/// stalls, the transport's own error (which names the host, address or proxy) ends the
/// attempt rather than the bare attempt timeout.
pub fn within(
    limit: Duration,
    settings: &AwsSettings,
) -> aws_sdk_marketplacemetering::config::Builder {
    let connect = limit
        .saturating_sub(Duration::from_millis(100))
        .min(settings.attempt_timeout.min(MAX_CONNECT_TIMEOUT))
        .max(Duration::from_millis(1));
    aws_sdk_marketplacemetering::config::Builder::default()
        .timeout_config(TimeoutConfig::builder().connect_timeout(connect).build())
}

/// Our transport for the settings, or the configuration error that prevents it.
pub fn transport(settings: &AwsSettings) -> Result<SharedHttpClient, Failure> {
    Transport::new(&settings.network)
        .map(Transport::into_shared)
        .map_err(|e| Failure::Config(format!("cannot set up HTTPS: {e}")))
}

/// Runs `work` on a current-thread runtime made for it, then shuts the runtime down waiting at
/// most a moment for its blocking pool, so nothing stuck (a file read on a hung volume, say)
/// can hold the process past its deadline. Names are resolved outside the runtime (see
/// [`crate::transport`]), so a silent DNS server never holds it either.
pub fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the I/O runtime: {e}")))?;
    let result = runtime.block_on(work);
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// The SDK's default credential chain without its last link, the EC2 instance role (IMDS).
/// AWS Marketplace supports only the ECS task role and EKS IRSA for metering (node roles are
/// "not supported"), and with IMDS in the chain a pod whose IRSA is missing retries a refusing
/// or unreachable metadata service for the whole time budget instead of being told at once
/// that it has no credentials.
fn credential_chain(config: &ProviderConfig) -> CredentialsProviderChain {
    CredentialsProviderChain::first_try(
        "Environment",
        Logged(
            "environment variables",
            EnvironmentVariableCredentialsProvider::new(),
        ),
    )
    .or_else(
        "Profile",
        Logged(
            "profile",
            ProfileFileCredentialsProvider::builder()
                .configure(config)
                .build(),
        ),
    )
    .or_else(
        "WebIdentityToken",
        Logged(
            "EKS IRSA web identity (STS)",
            WebIdentityTokenCredentialsProvider::builder()
                .configure(config)
                .build(),
        ),
    )
    .or_else(
        "EcsContainer",
        Logged(
            "ECS task role",
            EcsCredentialsProvider::builder().configure(config).build(),
        ),
    )
}

/// The names of the credential sources tried, for the "no credentials" message.
const CREDENTIAL_SOURCES: &str =
    "environment variables, profile, EKS IRSA web identity, ECS task role";

/// A credential provider that says, at debug level, when it is the one that answered.
#[derive(Debug)]
struct Logged<P>(&'static str, P);

impl<P: ProvideCredentials> ProvideCredentials for Logged<P> {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let result = self.1.provide_credentials().await;
            if result.is_ok() {
                debug!(source = self.0, "AWS credentials loaded");
            }
            result
        })
    }
}

/// The SDK's default region chain (environment, profile, IMDS), over our HTTP client.
fn region_chain(config: &ProviderConfig) -> RegionProviderChain {
    RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(
            ProfileFileRegionProvider::builder()
                .configure(config)
                .build(),
        )
        .or_else(ImdsRegionProvider::builder().configure(config).build())
}

fn check_region(region: Option<&Region>) -> Result<(), Failure> {
    match region.map(|r| r.as_ref()) {
        None | Some("") => Err(Failure::Config(
            "no AWS region: set AWS_REGION (ECS and the EKS IRSA webhook set it; AWS Marketplace Metering must be called in the region the task or pod runs in)".into(),
        )),
        Some(region) if !is_region_name(region) => Err(Failure::Config(format!(
            "AWS region `{region}` is not a region name such as us-east-1; fix AWS_REGION"
        ))),
        Some(_) => Ok(()),
    }
}

fn is_region_name(region: &str) -> bool {
    region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Cuts the answer body off at [`MAX_ANSWER_BYTES`] while it is read; reading more fails the
/// attempt as a malformed answer (or a transient one for a 5xx status).
#[derive(Debug)]
struct AnswerSizeLimit;

impl Intercept for AnswerSizeLimit {
    fn name(&self) -> &'static str {
        "AnswerSizeLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.response_mut().take_body();
        *context.response_mut().body_mut() =
            body.map(|body| SdkBody::from_body_1_x(Limited::new(body, MAX_ANSWER_BYTES)));
        Ok(())
    }
}

/// Why an attempt failed, for the advice when retrying ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Network,
    Server,
    Timeout,
    Throttled,
}

/// How one failed attempt is treated.
#[derive(Debug)]
pub enum Verdict {
    /// Worth another attempt after a pause.
    Retry(Cause, String),
    /// AWS refused the signature's time: the node's clock is off (by `offset` seconds, AWS's
    /// clock minus ours, when its answer had a `Date`). The SDK learns the offset from that
    /// answer, so one immediate retry through the same client signs with corrected time.
    ClockSkew(String, Option<i64>),
    /// Retrying cannot help.
    Fail(Failure),
    /// MeterUsage: this record cannot be written as it is (`DuplicateRequestException`,
    /// `TimestampOutOfBoundsException`); its quantity must go into a later hour.
    Fold(String),
}

/// Classifies a failed call to `operation` (`RegisterUsage` or `MeterUsage`). Everything not
/// known to be transient fails closed.
pub fn classify<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> Verdict
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code();
            let message = service
                .err()
                .message()
                .unwrap_or("no message")
                .replace('\n', " ");
            let date = service
                .raw()
                .headers()
                .get("date")
                .and_then(|d| DateTime::from_str(d, Format::HttpDate).ok());
            classify_code(operation, code, &message, status, date)
        }
        SdkError::TimeoutError(_) => Verdict::Retry(Cause::Timeout, "the request timed out".into()),
        SdkError::DispatchFailure(failure) => {
            if let Some(credentials) = find_source::<CredentialsError>(error) {
                return classify_credentials_error(credentials);
            }
            match find_source::<TransportError>(error) {
                Some(transport) if transport.is_untrusted_certificate() => {
                    Verdict::Fail(Failure::Untrusted(format!(
                        "{transport}; the endpoint's TLS certificate is not trusted (if a TLS-inspecting proxy is in the way, give its CA in SSL_CERT_FILE)"
                    )))
                }
                Some(transport) if transport.is_proxy_refusal() => {
                    Verdict::Fail(Failure::Config(format!(
                        "{transport}; check the proxy's credentials in HTTPS_PROXY (http://USER:PASSWORD@HOST:PORT) and that it allows AWS Marketplace Metering, or exempt the endpoint with NO_PROXY"
                    )))
                }
                Some(transport) => Verdict::Retry(Cause::Network, transport.to_string()),
                None if failure.is_user() => Verdict::Fail(Failure::Config(format!(
                    "the request could not be sent: {}",
                    error_chain(error)
                ))),
                None => Verdict::Retry(
                    Cause::Network,
                    format!("could not reach the endpoint: {}", error_chain(error)),
                ),
            }
        }
        SdkError::ResponseError(_) if status.is_some_and(is_transient_status) => {
            let status = status.unwrap_or_default();
            let cause = if status == 429 {
                Cause::Throttled
            } else {
                Cause::Server
            };
            Verdict::Retry(cause, format!("HTTP {status} from the endpoint"))
        }
        SdkError::ResponseError(_) => Verdict::Fail(Failure::Untrusted(format!(
            "the {operation} answer is malformed{}: {}",
            status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
            error_chain(error)
        ))),
        SdkError::ConstructionFailure(_) => Verdict::Fail(Failure::Config(format!(
            "the request could not be built: {}",
            error_chain(error)
        ))),
        _ => Verdict::Fail(Failure::Internal(format!(
            "unexpected SDK error: {}",
            error_chain(error)
        ))),
    }
}

fn is_transient_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// An AWS error code (awsJson `__type`) and what it means for us.
pub fn classify_code(
    operation: &str,
    code: Option<&str>,
    message: &str,
    status: Option<u16>,
    date: Option<DateTime>,
) -> Verdict {
    let code_text = code.unwrap_or("unknown error");
    let config =
        |fix: &str| Verdict::Fail(Failure::Config(format!("{code_text}: {message}; {fix}")));
    match code.unwrap_or_default() {
        "CustomerNotEntitledException" => Verdict::Fail(Failure::NotEntitled(format!(
            "CustomerNotEntitledException: {message}; the AWS account running this task or pod has no subscription to the product"
        ))),
        "ThrottlingException" | "ThrottledException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            Verdict::Retry(Cause::Throttled, format!("{code_text}: {message}"))
        }
        "InternalServiceErrorException" => Verdict::Retry(Cause::Server, format!("{code_text}: {message}")),
        "InvalidProductCodeException" => config("check --product-code (ENTITLE_PRODUCT_CODE) against the AWS Marketplace Management Portal"),
        "InvalidPublicKeyVersionException" => config("check --public-key-version (ENTITLE_PUBLIC_KEY_VERSION) matches the product's current key"),
        "InvalidRegionException" | "InvalidEndpointRegionException" => config("do not hard-code a region: let AWS_REGION come from ECS or EKS"),
        "PlatformNotSupportedException" => config("AWS Marketplace Metering works only on Amazon ECS, Amazon EKS and AWS Fargate; test locally with entitle-mock"),
        "DisabledApiException" => config("the API is disabled in this region"),
        "InvalidUsageDimensionException" => config("every --meter dimension must be one of the product's pricing dimensions in the AWS Marketplace Management Portal (names are case-sensitive)"),
        "InvalidTagException" | "InvalidUsageAllocationsException" => config("the usage allocations (tags) were refused"),
        "DuplicateRequestException" | "TimestampOutOfBoundsException" | "IdempotencyConflictException" => {
            Verdict::Fold(format!("{code_text}: {message}"))
        }
        "AccessDeniedException" => config(&format!(
            "grant aws-marketplace:{operation} to the task role (ECS) or the IRSA role (EKS); see deploy/iam/"
        )),
        "InvalidSignatureException" | "SignatureDoesNotMatch"
            if message.contains("Signature expired") || message.contains("Signature not yet current") =>
        {
            let offset = date.map(|date| date.secs() - crate::unix_now());
            Verdict::ClockSkew(format!("{code_text}: {message}"), offset)
        }
        "UnrecognizedClientException" | "InvalidSignatureException" | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException" | "ExpiredTokenException" | "InvalidClientTokenId"
        | "SignatureDoesNotMatch" => config("the credentials were refused: use the ECS task role or EKS IRSA, not static keys"),
        _ if status == Some(429) => Verdict::Retry(Cause::Throttled, format!("HTTP 429 {code_text}: {message}")),
        _ if status.is_some_and(is_transient_status) => Verdict::Retry(
            Cause::Server,
            format!("HTTP {} {code_text}: {message}", status.unwrap_or_default()),
        ),
        _ => Verdict::Fail(Failure::Untrusted(format!(
            "unexpected answer {code_text}{}: {message}",
            status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
        ))),
    }
}

/// No credential source at all, or one that is misconfigured, is a deployment error; a source
/// that exists but failed this time (ECS agent not ready, STS hiccup) is retried.
fn classify_credentials_error(error: &CredentialsError) -> Verdict {
    let fix = "on EKS use IRSA (a service account annotated with eks.amazonaws.com/role-arn), on ECS a task role";
    match error {
        CredentialsError::CredentialsNotLoaded(_) => Verdict::Fail(Failure::Config(format!(
            "no AWS credentials (tried {CREDENTIAL_SOURCES}); {fix}"
        ))),
        CredentialsError::InvalidConfiguration(_) => Verdict::Fail(Failure::Config(format!(
            "the AWS credential configuration is invalid: {}; {fix}",
            error_chain(error)
        ))),
        _ if is_refusal(&error_chain(error)) => Verdict::Fail(Failure::Config(format!(
            "the credential provider refused: {}; check the role's trust policy (IRSA) or the task role",
            error_chain(error)
        ))),
        _ => Verdict::Retry(
            Cause::Network,
            format!("could not load credentials: {}", error_chain(error)),
        ),
    }
}

/// STS answers a bad trust policy or token with a modeled error; those will not heal by retrying.
fn is_refusal(detail: &str) -> bool {
    [
        "AccessDenied",
        "InvalidIdentityToken",
        "ExpiredToken",
        "IDPRejectedClaim",
        "MalformedPolicyDocument",
    ]
    .iter()
    .any(|code| detail.contains(code))
}

/// The first error of type `T` among `error`'s sources.
fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = error.source();
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The error and its sources on one line, without duplicates (the SDK nests the same text).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// A duration for people: `19.8s`, `2m 05s`, `1h 00m`.
pub fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 100.0 {
        return format!("{secs:.1}s");
    }
    let whole = duration.as_secs();
    if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// One retried call's bookkeeping: attempts, backoff, progress lines and the final failure.
pub struct Attempts {
    operation: &'static str,
    started: Instant,
    deadline: Instant,
    budget: Duration,
    attempt_timeout: Duration,
    pub count: u32,
    failures: u32,
    throttles: u32,
    skewed: bool,
    last_said: Option<Instant>,
}

impl Attempts {
    pub fn new(operation: &'static str, budget: Duration, attempt_timeout: Duration) -> Attempts {
        let started = Instant::now();
        Attempts {
            operation,
            started,
            deadline: started + budget,
            budget,
            attempt_timeout,
            count: 0,
            failures: 0,
            throttles: 0,
            skewed: false,
            last_said: None,
        }
    }

    /// Starts the next attempt: how long it may take.
    pub fn begin(&mut self) -> Duration {
        self.count += 1;
        let limit = self.left().min(self.attempt_timeout);
        debug!(
            attempt = self.count,
            timeout_ms = limit.as_millis() as u64,
            "calling {}",
            self.operation
        );
        limit
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// After a failed attempt: `Ok` once it is time for the next one, or the failure that ends
    /// the call.
    pub async fn failed(&mut self, verdict: Verdict) -> Result<(), Failure> {
        let (cause, reason, pause) = match verdict {
            Verdict::Fail(failure) => return Err(failure),
            Verdict::Fold(reason) => {
                return Err(Failure::Untrusted(format!(
                    "unexpected answer to {}: {reason}",
                    self.operation
                )))
            }
            Verdict::ClockSkew(reason, _) if !self.skewed => {
                self.skewed = true;
                info!(%reason, "AWS refused the request's time; retrying once with AWS's clock");
                return Ok(());
            }
            Verdict::ClockSkew(reason, offset) => return Err(clock_failure(&reason, offset)),
            Verdict::Retry(Cause::Throttled, reason) => {
                self.throttles += 1;
                (Cause::Throttled, reason, throttle_backoff(self.throttles))
            }
            Verdict::Retry(cause, reason) => {
                self.failures += 1;
                (cause, reason, transient_backoff(self.failures))
            }
        };
        let left = self.left();
        if left < LAST_ATTEMPT_MIN {
            return Err(self.give_up(cause, &reason));
        }
        self.say_progress(&reason, left);
        let pause = pause.min(left - LAST_ATTEMPT_MIN);
        debug!(attempt = self.count, %reason, pause_ms = pause.as_millis() as u64, "transient failure, retrying");
        tokio::time::sleep(pause).await;
        Ok(())
    }

    /// The first transient failure, then a line at most every 30 s: a long wait says what it
    /// waits for.
    fn say_progress(&mut self, reason: &str, left: Duration) {
        let due = self
            .last_said
            .is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        if !due {
            return;
        }
        if self.last_said.is_none() {
            warn!(
                "{} failed, retrying for up to {} more: {reason}",
                self.operation,
                seconds(left)
            );
        } else {
            warn!(
                "still retrying {}: {} attempts in {}, {} left; last error: {reason}",
                self.operation,
                self.count,
                seconds(self.elapsed()),
                seconds(left)
            );
        }
        self.last_said = Some(Instant::now());
    }

    fn give_up(&self, cause: Cause, reason: &str) -> Failure {
        let advice = match cause {
            Cause::Throttled => format!(
                "AWS throttled {}: its quota is per account and Region and shared by every task or pod starting at once; stagger large rollouts, or give more time with --timeout",
                self.operation
            ),
            Cause::Server => "AWS Marketplace Metering answered with server errors; check the AWS Health Dashboard, retrying later usually works".to_owned(),
            Cause::Network | Cause::Timeout => "check network access to AWS Marketplace Metering: security groups, NAT or a VPC endpoint, DNS, and HTTPS_PROXY/NO_PROXY when a proxy is required".to_owned(),
        };
        Failure::Transient(format!(
            "{reason} (after {} attempts in {}, --timeout {}); {advice}",
            self.count,
            seconds(self.elapsed()),
            seconds(self.budget)
        ))
    }
}

fn clock_failure(reason: &str, offset: Option<i64>) -> Failure {
    let measured = match offset {
        Some(offset) if offset > 0 => format!(
            "this node's clock is {} behind AWS's",
            seconds(Duration::from_secs(offset.unsigned_abs()))
        ),
        Some(offset) => format!(
            "this node's clock is {} ahead of AWS's",
            seconds(Duration::from_secs(offset.unsigned_abs()))
        ),
        None => "this node's clock is off".to_owned(),
    };
    Failure::Config(format!(
        "{reason}; {measured} (from the answer's Date header): fix the node's time synchronisation (NTP, chrony, the Amazon Time Sync Service)"
    ))
}

/// Capped exponential backoff, jitter in the upper half of the window.
pub fn transient_backoff(failures: u32) -> Duration {
    let window = TRANSIENT_BASE
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(TRANSIENT_CAP);
    window.mul_f64(0.5 + random_fraction() / 2.0)
}

/// Full jitter over a slowly growing window: 4 s, x1.5 per throttle, to 60 s (why these: see
/// the comment on `THROTTLE_BASE`).
pub fn throttle_backoff(throttles: u32) -> Duration {
    let growth = THROTTLE_GROWTH.powi(throttles.saturating_sub(1).min(32) as i32);
    THROTTLE_BASE
        .mul_f64(growth)
        .min(THROTTLE_CAP)
        .mul_f64(random_fraction())
}

/// A uniform number in [0, 1] from the OS generator (1.0 if it fails: the full window).
pub fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    match SysRng.try_fill_bytes(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes) as f64 / u32::MAX as f64,
        Err(_) => {
            warn!("no randomness for backoff jitter; using the full window");
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_backoff_grows_to_the_cap_with_jitter_in_the_upper_half() {
        for failures in 1..40 {
            let window = TRANSIENT_BASE
                .saturating_mul(1 << (failures - 1).min(16))
                .min(TRANSIENT_CAP);
            let pause = transient_backoff(failures);
            assert!(
                pause >= window / 2 && pause <= window,
                "{failures}: {pause:?}"
            );
        }
    }

    #[test]
    fn throttle_backoff_spreads_over_a_growing_capped_window() {
        let pauses: Vec<Duration> = (0..200).map(|_| throttle_backoff(1)).collect();
        assert!(pauses.iter().all(|p| *p <= THROTTLE_BASE));
        assert!(
            pauses.iter().any(|p| *p < THROTTLE_BASE / 4),
            "uses the whole window"
        );
        assert!((0..50).all(|_| throttle_backoff(100) <= THROTTLE_CAP));
    }

    #[test]
    fn error_codes_are_classified() {
        let verdict = |code: &str, message: &str, status: u16| {
            classify_code("RegisterUsage", Some(code), message, Some(status), None)
        };
        let fail_config = |v: Verdict| matches!(v, Verdict::Fail(Failure::Config(_)));
        assert!(fail_config(verdict("AccessDeniedException", "m", 400)));
        assert!(fail_config(verdict(
            "UnrecognizedClientException",
            "m",
            400
        )));
        assert!(fail_config(verdict(
            "InvalidSignatureException",
            "The request signature we calculated does not match",
            403
        )));
        assert!(fail_config(verdict(
            "InvalidUsageDimensionException",
            "m",
            400
        )));
        assert!(matches!(
            verdict("InvalidSignatureException", "Signature expired: 20261203T101500Z is now earlier than 20261203T103000Z (20261203T104500Z - 15 min.)", 403),
            Verdict::ClockSkew(..)
        ));
        assert!(matches!(
            verdict("CustomerNotEntitledException", "m", 400),
            Verdict::Fail(Failure::NotEntitled(_))
        ));
        assert!(matches!(
            verdict("DuplicateRequestException", "m", 400),
            Verdict::Fold(_)
        ));
        assert!(matches!(
            verdict("ThrottlingException", "m", 400),
            Verdict::Retry(Cause::Throttled, _)
        ));
        assert!(matches!(
            verdict("Weird", "m", 502),
            Verdict::Retry(Cause::Server, _)
        ));
        assert!(matches!(
            verdict("Weird", "m", 429),
            Verdict::Retry(Cause::Throttled, _)
        ));
        assert!(matches!(
            verdict("Weird", "m", 400),
            Verdict::Fail(Failure::Untrusted(_))
        ));
        assert!(matches!(
            classify_code("RegisterUsage", None, "m", Some(503), None),
            Verdict::Retry(Cause::Server, _)
        ));
    }

    #[test]
    fn clock_skew_names_the_direction_and_size() {
        let behind = clock_failure("InvalidSignatureException: Signature expired", Some(1200));
        assert!(behind.to_string().contains("20m 00s behind"), "{behind}");
        let ahead = clock_failure("x", Some(-7200));
        assert!(ahead.to_string().contains("2h 00m ahead"), "{ahead}");
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(is_refusal(
            "service error: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity"
        ));
        assert!(!is_refusal("connection refused"));
    }

    #[test]
    fn durations_are_rounded_for_people() {
        assert_eq!(seconds(Duration::from_millis(19_802)), "19.8s");
        assert_eq!(seconds(Duration::from_secs(125)), "2m 05s");
        assert_eq!(seconds(Duration::from_secs(1800)), "30m 00s");
        assert_eq!(seconds(Duration::from_secs(7260)), "2h 01m");
    }
}
