//! Registration: one `RegisterUsage` call, retried on transient failures until the time budget
//! runs out. The only stage that does network I/O; it runs its own tokio runtime and drops it
//! before returning, so nothing async outlives it.
//!
//! Retry policy (AWS Seller Guide, container metering): terminate on any error but throttling,
//! and retry transient problems for up to 30 minutes with exponential backoff. The SDK's own
//! retry is disabled so this loop is the only one and the deadline holds.

use crate::config::CheckSettings;
use crate::exit::Failure;
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
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_marketplacemetering::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_marketplacemetering::operation::register_usage::{
    RegisterUsageError, RegisterUsageOutput,
};
use aws_sdk_marketplacemetering::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::date_time::Format;
use http_body_util::Limited;
use rand::rngs::SysRng;
use rand::TryRng;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Amazon Trust Services roots: AWS endpoints chain to these, so a scratch image needs no CA files.
const AMAZON_ROOTS: &[u8] = include_bytes!("amazon-roots.pem");

/// Network and 5xx failures: 0.5 s doubling to 20 s, jitter in the upper half of the window.
const TRANSIENT_BASE: Duration = Duration::from_millis(500);
const TRANSIENT_CAP: Duration = Duration::from_secs(20);
/// Throttling: the quota is 5 requests/s per account and region, shared by every pod starting
/// at once. Retries are spread uniformly over a growing window (4 s, x1.5, to 60 s). Chosen by
/// simulating herds of 10-200 agents against a 5/s token bucket: no fixed schedule is good for
/// every herd size (small herds want short windows, large ones long ones); this one finishes in
/// 1.2-1.7x the N/5 s floor with 1.5 (N=10) to 5 (N=200) requests per agent.
const THROTTLE_BASE: Duration = Duration::from_secs(4);
const THROTTLE_GROWTH: f64 = 1.5;
const THROTTLE_CAP: Duration = Duration::from_secs(60);
/// Largest answer read: a real RegisterUsage answer is under 2 KiB and the token limit is
/// 64 KiB. Without a cap the SDK reads any body whole, so a redirected endpoint could make us
/// allocate gigabytes (and be OOM-killed) instead of failing closed.
const MAX_ANSWER_BYTES: usize = 128 * 1024;
/// The least time worth one more attempt before the deadline.
const LAST_ATTEMPT_MIN: Duration = Duration::from_millis(200);

/// What AWS answered, before verification.
#[derive(Debug, Clone)]
pub struct Answer {
    pub signature: String,
    /// Set when AWS says the public key version has expired (RFC 3339).
    pub key_rotation: Option<String>,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// How one failed attempt is treated.
#[derive(Debug)]
enum Verdict {
    Retry(String),
    Throttled(String),
    Fail(Failure),
}

/// Registers `nonce` for the configured product, retrying transient failures within the budget.
pub fn register(settings: &CheckSettings, nonce: &str) -> Result<Answer, Failure> {
    register_with(settings, nonce, http_client()?)
}

/// [`register`] over a given HTTP client: the seam the fuzzer uses to feed arbitrary answers
/// through the SDK's parser and this module's classification.
pub fn register_with(
    settings: &CheckSettings,
    nonce: &str,
    http: SharedHttpClient,
) -> Result<Answer, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the I/O runtime: {e}")))?;
    runtime.block_on(register_async(settings, nonce, http))
}

async fn register_async(
    settings: &CheckSettings,
    nonce: &str,
    http: SharedHttpClient,
) -> Result<Answer, Failure> {
    let started = Instant::now();
    let deadline = started + settings.timeout;
    let sdk_config = tokio::time::timeout(settings.timeout, load_sdk_config(settings, http))
        .await
        .map_err(|_| {
            Failure::Config(format!(
                "could not resolve the AWS region within {:?}; set AWS_REGION",
                settings.timeout
            ))
        })??;
    let client = Client::from_conf(
        aws_sdk_marketplacemetering::config::Builder::from(&sdk_config)
            .interceptor(AnswerSizeLimit)
            .build(),
    );
    let (mut attempts, mut failures, mut throttles) = (0, 0, 0);
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = left.min(settings.attempt_timeout);
        debug!(
            attempt = attempts,
            timeout_ms = limit.as_millis() as u64,
            "calling RegisterUsage"
        );
        let verdict = match tokio::time::timeout(limit, call(&client, settings, nonce)).await {
            Ok(Ok(output)) => return answer(output, attempts, started),
            Ok(Err(error)) => classify(&error),
            Err(_) => Verdict::Retry(format!("attempt timed out after {limit:?}")),
        };
        let (reason, pause) = match verdict {
            Verdict::Retry(reason) => {
                failures += 1;
                (reason, transient_backoff(failures))
            }
            Verdict::Throttled(reason) => {
                throttles += 1;
                (reason, throttle_backoff(throttles))
            }
            Verdict::Fail(failure) => return Err(failure),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left < LAST_ATTEMPT_MIN {
            return Err(Failure::Transient(format!(
                "{reason} (after {attempts} attempts in {:?}, --timeout {:?}); check network access to AWS Marketplace Metering",
                started.elapsed(),
                settings.timeout
            )));
        }
        let pause = pause.min(left - LAST_ATTEMPT_MIN);
        debug!(attempt = attempts, %reason, pause_ms = pause.as_millis() as u64, "transient failure, retrying");
        tokio::time::sleep(pause).await;
    }
}

async fn load_sdk_config(
    settings: &CheckSettings,
    http: SharedHttpClient,
) -> Result<SdkConfig, Failure> {
    let provider_config = ProviderConfig::default().with_http_client(http.clone());
    let region = region_chain(&provider_config).region().await;
    check_region(region.as_ref())?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region.clone())
        .credentials_provider(credential_chain(&provider_config.with_region(region)))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(settings.attempt_timeout.min(Duration::from_secs(5)))
                .build(),
        );
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Ok(loader.load().await)
}

/// The SDK's default credential chain without its last link, the EC2 instance role (IMDS).
/// AWS Marketplace supports only the ECS task role and EKS IRSA for `RegisterUsage` (node roles
/// are "not supported"), and with IMDS in the chain a pod whose IRSA is missing retries a
/// refusing or unreachable metadata service for the whole time budget instead of being told at
/// once that it has no credentials.
fn credential_chain(config: &ProviderConfig) -> CredentialsProviderChain {
    CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "Profile",
        ProfileFileCredentialsProvider::builder()
            .configure(config)
            .build(),
    )
    .or_else(
        "WebIdentityToken",
        WebIdentityTokenCredentialsProvider::builder()
            .configure(config)
            .build(),
    )
    .or_else(
        "EcsContainer",
        EcsCredentialsProvider::builder().configure(config).build(),
    )
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
            "no AWS region: set AWS_REGION (ECS and the EKS IRSA webhook set it; RegisterUsage must be called in the region the task or pod runs in)".into(),
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

/// rustls with ring and only the embedded Amazon roots, plus `SSL_CERT_FILE` for a private CA
/// (a corporate TLS-inspecting proxy, or a local test endpoint).
pub fn http_client() -> Result<SharedHttpClient, Failure> {
    let mut store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        store = store.with_pem_certificate(private_ca_bundle(&path.to_string_lossy())?);
    }
    let tls_context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .map_err(|e| Failure::Config(format!("cannot build the TLS trust store: {e}")))?;
    let client = Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls_context)
        .build_https();
    Ok(SharedHttpClient::new(NoWarmUp(client)))
}

/// The PEM bundle named by `SSL_CERT_FILE`, checked the way the SDK will use it: the SDK
/// panics on a bundle it cannot parse, and a panic here would kill the container's PID 1.
fn private_ca_bundle(path: &str) -> Result<Vec<u8>, Failure> {
    let pem = std::fs::read(path)
        .map_err(|e| Failure::Config(format!("cannot read SSL_CERT_FILE {path}: {e}")))?;
    let invalid = |why: String| {
        Failure::Config(format!(
            "SSL_CERT_FILE {path} is not a usable PEM certificate bundle: {why}"
        ))
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("it holds no BEGIN CERTIFICATE block".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(pem)
}

/// The SDK's hyper client builds a whole TLS connector, and throws it away, each time an SDK
/// client is created (`validate_base_client_config`, meant to load native roots early). With
/// the embedded roots that is pure cost: two extra trust-store parses, about 60% of all the
/// instructions `entitle run -- true` executes (measured with callgrind). Connectors are still
/// built, once, when a request needs one.
#[derive(Debug)]
struct NoWarmUp(SharedHttpClient);

impl HttpClient for NoWarmUp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

async fn call(
    client: &Client,
    settings: &CheckSettings,
    nonce: &str,
) -> Result<RegisterUsageOutput, SdkError<RegisterUsageError, aws_smithy_runtime_api::http::Response>>
{
    client
        .register_usage()
        .product_code(&settings.product.code)
        .public_key_version(settings.product.public_key_version as i32)
        .nonce(nonce)
        .send()
        .await
}

fn answer(output: RegisterUsageOutput, attempts: u32, started: Instant) -> Result<Answer, Failure> {
    let signature = output
        .signature()
        .ok_or_else(|| Failure::Untrusted("the RegisterUsage answer has no Signature".into()))?;
    let key_rotation = output.public_key_rotation_timestamp().map(|t| {
        t.fmt(Format::DateTime)
            .unwrap_or_else(|_| t.secs().to_string())
    });
    Ok(Answer {
        signature: signature.to_owned(),
        key_rotation,
        attempts,
        elapsed: started.elapsed(),
    })
}

/// Which failures are worth another attempt. Everything not known to be transient fails closed.
fn classify(
    error: &SdkError<RegisterUsageError, aws_smithy_runtime_api::http::Response>,
) -> Verdict {
    let status = error.raw_response().map(|r| r.status().as_u16());
    match error {
        SdkError::ServiceError(e) => classify_service_error(e.err(), status),
        SdkError::TimeoutError(_) => Verdict::Retry("the request timed out".into()),
        SdkError::DispatchFailure(failure) => match find_source::<CredentialsError>(error) {
            Some(cred) => classify_credentials_error(cred),
            None if is_untrusted_certificate(error) => Verdict::Fail(Failure::Untrusted(format!(
                "the endpoint's TLS certificate is not trusted: {}; if a TLS-inspecting proxy is in the way, give its CA in SSL_CERT_FILE",
                error_chain(error)
            ))),
            None if failure.is_user() => Verdict::Fail(Failure::Config(format!(
                "the request could not be sent: {}",
                error_chain(error)
            ))),
            None => Verdict::Retry(format!(
                "could not reach the endpoint: {}",
                error_chain(error)
            )),
        },
        SdkError::ResponseError(_) if status.is_some_and(is_transient_status) => Verdict::Retry(
            format!("HTTP {} from the endpoint", status.unwrap_or_default()),
        ),
        SdkError::ResponseError(_) => Verdict::Fail(Failure::Untrusted(format!(
            "the RegisterUsage answer is malformed{}: {}",
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

fn classify_service_error(error: &RegisterUsageError, status: Option<u16>) -> Verdict {
    let message = error.message().unwrap_or("no message").replace('\n', " ");
    let config = |fix: &str| {
        Verdict::Fail(Failure::Config(format!(
            "{}: {message}; {fix}",
            error.code().unwrap_or("error")
        )))
    };
    match error {
        RegisterUsageError::CustomerNotEntitledException(_) => Verdict::Fail(Failure::NotEntitled(format!(
            "CustomerNotEntitledException: {message}; the AWS account running this task or pod has no subscription to the product"
        ))),
        RegisterUsageError::ThrottlingException(_) => Verdict::Throttled(format!("ThrottlingException: {message}")),
        RegisterUsageError::InternalServiceErrorException(_) => {
            Verdict::Retry(format!("InternalServiceErrorException: {message}"))
        }
        RegisterUsageError::InvalidProductCodeException(_) => {
            config("check --product-code (ENTITLE_PRODUCT_CODE) against the AWS Marketplace Management Portal")
        }
        RegisterUsageError::InvalidPublicKeyVersionException(_) => {
            config("check --public-key-version (ENTITLE_PUBLIC_KEY_VERSION) matches the product's current key")
        }
        RegisterUsageError::InvalidRegionException(_) => {
            config("do not hard-code a region: let AWS_REGION come from ECS or EKS")
        }
        RegisterUsageError::PlatformNotSupportedException(_) => {
            config("RegisterUsage works only on Amazon ECS, Amazon EKS and AWS Fargate; test locally with entitle-mock")
        }
        RegisterUsageError::DisabledApiException(_) => config("the API is disabled in this region"),
        _ => classify_unmodeled(error.code(), &message, status),
    }
}

/// Errors the model does not list: IAM and signing problems are deployment errors; 5xx and 429
/// are transient; anything else is an answer we do not understand.
fn classify_unmodeled(code: Option<&str>, message: &str, status: Option<u16>) -> Verdict {
    let code_text = code.unwrap_or("unknown error");
    match code {
        Some("AccessDeniedException") => Verdict::Fail(Failure::Config(format!(
            "AccessDeniedException: {message}; grant aws-marketplace:RegisterUsage to the task role (ECS) or the IRSA role (EKS), e.g. the managed policy AWSMarketplaceMeteringRegisterUsage"
        ))),
        Some(
            "UnrecognizedClientException" | "InvalidSignatureException" | "IncompleteSignatureException"
            | "MissingAuthenticationTokenException" | "ExpiredTokenException" | "InvalidClientTokenId"
            | "SignatureDoesNotMatch",
        ) => Verdict::Fail(Failure::Config(format!(
            "{code_text}: {message}; the credentials were refused: use the ECS task role or EKS IRSA, not static keys"
        ))),
        Some("ThrottledException" | "TooManyRequestsException" | "RequestLimitExceeded") => {
            Verdict::Throttled(format!("{code_text}: {message}"))
        }
        _ if status == Some(429) => Verdict::Throttled(format!("HTTP 429 {code_text}: {message}")),
        _ if status.is_some_and(is_transient_status) => Verdict::Retry(format!(
            "HTTP {} {code_text}: {message}",
            status.unwrap_or_default()
        )),
        _ => Verdict::Fail(Failure::Untrusted(format!(
            "unexpected answer {code_text}{}: {message}",
            status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
        ))),
    }
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

/// A certificate rustls refused (unknown issuer, wrong name, expired...): retrying cannot help,
/// and it is what a redirected endpoint looks like. The SDK's TLS shim passes rustls errors on
/// as text only, so the text is all there is to go by (rustls `Error::InvalidCertificate`).
fn is_untrusted_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    error_chain(error).contains("invalid peer certificate")
}

/// No credential source at all, or one that is misconfigured, is a deployment error; a source
/// that exists but failed this time (ECS agent not ready, STS hiccup) is retried.
fn classify_credentials_error(error: &CredentialsError) -> Verdict {
    let detail = error_chain(error);
    match error {
        CredentialsError::CredentialsNotLoaded(_) | CredentialsError::InvalidConfiguration(_) => {
            Verdict::Fail(Failure::Config(format!(
                "no AWS credentials: {detail}; on EKS use IRSA (a service account annotated with eks.amazonaws.com/role-arn), on ECS a task role"
            )))
        }
        _ if is_refusal(&detail) => Verdict::Fail(Failure::Config(format!(
            "the credential provider refused: {detail}; check the role's trust policy (IRSA) or the task role"
        ))),
        _ => Verdict::Retry(format!("could not load credentials: {detail}")),
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

/// The error and its sources on one line, without duplicates (the SDK nests the same text).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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

/// Capped exponential backoff, jitter in the upper half of the window.
fn transient_backoff(failures: u32) -> Duration {
    let window = TRANSIENT_BASE
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(TRANSIENT_CAP);
    window.mul_f64(0.5 + random_fraction() / 2.0)
}

/// Full jitter over a slowly growing window (see [`THROTTLE_BASE`]).
fn throttle_backoff(throttles: u32) -> Duration {
    let growth = THROTTLE_GROWTH.powi(throttles.saturating_sub(1).min(32) as i32);
    THROTTLE_BASE
        .mul_f64(growth)
        .min(THROTTLE_CAP)
        .mul_f64(random_fraction())
}

/// A uniform number in [0, 1] from the OS generator (1.0 if it fails: the full window).
fn random_fraction() -> f64 {
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
    fn unmodeled_errors_are_classified() {
        let fail_config = |v: Verdict| matches!(v, Verdict::Fail(Failure::Config(_)));
        assert!(fail_config(classify_unmodeled(
            Some("AccessDeniedException"),
            "m",
            Some(400)
        )));
        assert!(fail_config(classify_unmodeled(
            Some("UnrecognizedClientException"),
            "m",
            Some(400)
        )));
        assert!(matches!(
            classify_unmodeled(None, "m", Some(503)),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            classify_unmodeled(Some("Weird"), "m", Some(502)),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            classify_unmodeled(None, "m", Some(429)),
            Verdict::Throttled(_)
        ));
        assert!(matches!(
            classify_unmodeled(Some("Weird"), "m", Some(400)),
            Verdict::Fail(Failure::Untrusted(_))
        ));
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(is_refusal(
            "service error: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity"
        ));
        assert!(!is_refusal("connection refused"));
    }
}
