//! The RegisterUsage answer path: an arbitrary HTTP answer (status line, headers, body; see
//! entitle_fuzz::RawAnswer) served by a test HTTP client through `entitle::register::register_with`,
//! i.e. the AWS SDK's response parser and entitle's classification, then `entitle_verify::verify` on
//! whatever signature comes out. One attempt per input: the budget is below the 200 ms that a
//! retry needs. It must never panic, must finish promptly, and must end Ok or in one of the
//! documented failures (75, 76, 77, 78), never Internal (70, "a bug").
#![no_main]

use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use entitle::aws::AwsSettings;
use entitle::config::CheckSettings;
use entitle::exit::Failure;
use entitle::verify::Product;
use entitle_fuzz::{check_against_contract, expected, key, RawAnswer, NONCE, PRODUCT_CODE};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUDGET: Duration = Duration::from_millis(150);

fn settings() -> CheckSettings {
    CheckSettings {
        product: Product {
            code: PRODUCT_CODE.into(),
            public_key_version: 1,
            public_key: Some(key().clone()),
            meter_dimensions: Vec::new(),
        },
        timeout: BUDGET,
        output: None,
        aws: AwsSettings {
            endpoint_url: None,
            network: Default::default(),
            attempt_timeout: BUDGET,
        },
        metering: None,
    }
}

fuzz_target!(
    init: {
        // The SDK reads region and credentials from the environment; nothing else may be found
        // (no profile files, no IMDS). Set once, before any thread exists.
        for (name, value) in [
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDENTITLEFUZZ00001"),
            ("AWS_SECRET_ACCESS_KEY", "entitleFuzzSecretKey000000000000000000000"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials"),
            ("HOME", "/nonexistent"),
        ] {
            std::env::set_var(name, value);
        }
        for name in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MARKETPLACE_METERING"] {
            std::env::remove_var(name);
        }
    },
    |data: &[u8]| {
        let answer = Arc::new(RawAnswer::parse(data));
        let http = infallible_client_fn(move |_request| answer.response().map(SdkBody::from));
        let started = Instant::now();
        let result = entitle::register::register_with(&settings(), NONCE, http);
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?} with a {BUDGET:?} budget");
        if std::env::var_os("ENTITLE_FUZZ_SHOW").is_some() {
            // ENTITLE_FUZZ_SHOW=1 cargo +nightly fuzz run register_response fuzz/seeds/register_response -- -runs=0
            eprintln!("{elapsed:?}: {result:?}");
        }
        match result {
            Ok(answer) => {
                let verdict = entitle_verify::verify(&answer.signature, key(), &expected());
                if verdict.is_ok() {
                    let parts: Vec<&str> = answer.signature.split('.').collect();
                    let decode = |p: &str| {
                        use base64::Engine;
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()
                    };
                    check_against_contract(&decode(parts[0]), &decode(parts[1]), &verdict);
                }
            }
            Err(Failure::Transient(_) | Failure::Untrusted(_) | Failure::NotEntitled(_) | Failure::Config(_)) => {}
            Err(other) => panic!("undocumented failure for an HTTP answer: {other:?} (exit {})", other.exit_code()),
        }
    }
);
