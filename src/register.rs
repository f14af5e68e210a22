//! Registration: one `RegisterUsage` call, retried on transient failures until the time budget
//! runs out (the policy is in [`crate::aws`]). It runs its own tokio runtime and drops it before
//! returning, so nothing async outlives it.

use crate::aws::{self, Attempts, Cause, Verdict};
use crate::config::CheckSettings;
use crate::exit::Failure;
use aws_sdk_marketplacemetering::operation::register_usage::RegisterUsageOutput;
use aws_sdk_marketplacemetering::Client;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::Duration;

/// What AWS answered, before verification.
#[derive(Debug, Clone)]
pub struct Answer {
    pub signature: String,
    /// `PublicKeyRotationTimestamp` (seconds since the epoch): AWS sends it only when the public
    /// key version is being retired.
    pub key_rotation: Option<i64>,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// Registers `nonce` for the configured product, retrying transient failures within the budget.
pub fn register(settings: &CheckSettings, nonce: &str) -> Result<Answer, Failure> {
    register_with(settings, nonce, aws::transport(&settings.aws)?)
}

/// [`register`] over a given HTTP client: the seam the fuzzer uses to feed arbitrary answers
/// through the SDK's parser and this module's classification.
pub fn register_with(
    settings: &CheckSettings,
    nonce: &str,
    http: SharedHttpClient,
) -> Result<Answer, Failure> {
    aws::block_on(register_async(settings, nonce, http))
}

async fn register_async(
    settings: &CheckSettings,
    nonce: &str,
    http: SharedHttpClient,
) -> Result<Answer, Failure> {
    let mut attempts = Attempts::new(
        "RegisterUsage",
        settings.timeout,
        settings.aws.attempt_timeout,
    );
    let client = aws::client(&settings.aws, http, settings.timeout).await?;
    loop {
        let limit = attempts.begin();
        let verdict = match tokio::time::timeout(limit, call(&client, settings, nonce, limit)).await
        {
            Ok(Ok(output)) => return answer(output, &attempts),
            Ok(Err(error)) => aws::classify("RegisterUsage", &error),
            Err(_) => Verdict::Retry(
                Cause::Timeout,
                format!("no answer within {}", aws::seconds(limit)),
            ),
        };
        attempts.failed(verdict).await?;
    }
}

async fn call(
    client: &Client,
    settings: &CheckSettings,
    nonce: &str,
    limit: Duration,
) -> Result<
    RegisterUsageOutput,
    aws_sdk_marketplacemetering::error::SdkError<
        aws_sdk_marketplacemetering::operation::register_usage::RegisterUsageError,
        aws_smithy_runtime_api::http::Response,
    >,
> {
    client
        .register_usage()
        .product_code(&settings.product.code)
        .public_key_version(settings.product.public_key_version as i32)
        .nonce(nonce)
        .customize()
        .config_override(aws::within(limit, &settings.aws))
        .send()
        .await
}

fn answer(output: RegisterUsageOutput, attempts: &Attempts) -> Result<Answer, Failure> {
    let signature = output
        .signature()
        .ok_or_else(|| Failure::Untrusted("the RegisterUsage answer has no Signature".into()))?;
    Ok(Answer {
        signature: signature.to_owned(),
        key_rotation: output.public_key_rotation_timestamp().map(|t| t.secs()),
        attempts: attempts.count,
        elapsed: attempts.elapsed(),
    })
}
