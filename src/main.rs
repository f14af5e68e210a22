//! `entitle`: configuration → nonce → register → verify → record → (run: supervise).

use entitle::config::{self, CheckSettings, Command, TokenSource, VerifySettings};
use entitle::exit::Failure;
use entitle::record::{self, Record};
use entitle::verify::{self, Entitlement, Expected};
use entitle::{logging, nonce, register, supervise};
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::SystemTime;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = match config::parse(args, &|name| std::env::var(name).ok()) {
        Ok(command) => execute(command),
        Err(failure) => {
            eprintln!("entitle: {failure}");
            failure.exit_code()
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn execute(command: Command) -> i32 {
    let options = match &command {
        Command::Help(text) => return print_and_succeed(text),
        Command::Version => return print_and_succeed(&version()),
        Command::Check(options) | Command::Verify(options) | Command::Run(options, _) => options,
    };
    if let Err(failure) = config::log_settings(options).and_then(|s| logging::init(&s)) {
        eprintln!("entitle: {failure}");
        return failure.exit_code();
    }
    let outcome = match command {
        Command::Check(options) => check_settings(&options).and_then(|s| check(&s)).map(|_| 0),
        Command::Verify(options) => verify_settings(&options)
            .and_then(|s| verify_offline(&s))
            .map(|_| 0),
        Command::Run(options, run) => check_settings(&options)
            .and_then(|settings| supervise::run(run, Box::new(move || check(&settings)))),
        Command::Help(_) | Command::Version => Ok(0),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            error!("{failure}");
            failure.exit_code()
        }
    }
}

fn print_and_succeed(text: &str) -> i32 {
    print!("{text}");
    0
}

fn version() -> String {
    format!("entitle {}\n", env!("CARGO_PKG_VERSION"))
}

fn read_file(path: &std::path::Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn check_settings(options: &config::Options) -> Result<CheckSettings, Failure> {
    config::check_settings(options, &read_file)
}

fn verify_settings(options: &config::Options) -> Result<VerifySettings, Failure> {
    config::verify_settings(options, &read_file)
}

/// Register a fresh nonce, verify the answer, write the record: the whole `entitle check`.
fn check(settings: &CheckSettings) -> Result<Entitlement, Failure> {
    let product = &settings.product;
    let nonce = nonce::fresh().map_err(Failure::Internal)?;
    let answer = register::register(settings, &nonce)?;
    if let Some(when) = &answer.key_rotation {
        warn!(
            public_key_version = product.public_key_version,
            rotation = %when,
            "AWS reports this public key version has expired (PublicKeyRotationTimestamp); get the new key and version from the AWS Marketplace Management Portal"
        );
    }
    let expected = Expected {
        product_code: &product.code,
        public_key_version: product.public_key_version,
        nonce: &nonce,
    };
    let entitlement = verify::verify(&answer.signature, &product.public_key, &expected)
        .map_err(|rejection| Failure::Untrusted(rejection.to_string()))?;
    if let Some(path) = &settings.output {
        let record = Record::new(&entitlement, answer.key_rotation.clone(), SystemTime::now());
        record::write_atomically(path, &record.to_json()).map_err(|e| {
            Failure::Config(format!(
                "cannot write the record to {}: {e}",
                path.display()
            ))
        })?;
    }
    info!(
        product_code = %product.code,
        public_key_version = product.public_key_version,
        attempts = answer.attempts,
        elapsed_ms = answer.elapsed.as_millis() as u64,
        "entitled: signature and claims verified"
    );
    Ok(entitlement)
}

/// `entitle verify`: the same verification, offline, for a token or a record.
fn verify_offline(settings: &VerifySettings) -> Result<(), Failure> {
    let product = &settings.product;
    let (token, nonce) = match &settings.source {
        TokenSource::Token { token, nonce } => (token.clone(), nonce.clone()),
        TokenSource::Record(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::Config(format!("cannot read --record file {}: {e}", path.display()))
            })?;
            let record = Record::from_json(&text).map_err(|e| {
                Failure::Untrusted(format!("--record file {}: {e}", path.display()))
            })?;
            (record.signature, record.nonce)
        }
    };
    let expected = Expected {
        product_code: &product.code,
        public_key_version: product.public_key_version,
        nonce: &nonce,
    };
    let entitlement = verify::verify(&token, &product.public_key, &expected)
        .map_err(|rejection| Failure::Untrusted(rejection.to_string()))?;
    info!(
        product_code = %entitlement.product_code,
        public_key_version = entitlement.public_key_version,
        issued_at = entitlement.issued_at,
        "token verified"
    );
    Ok(())
}
