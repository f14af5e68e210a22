//! `entitle`: configuration → nonce → register → verify → record → (run: supervise).

use entitle::config::{
    self, CheckSettings, Command, LogSettings, SealRequest, TokenSource, VerifySettings,
};
use entitle::exit::Failure;
use entitle::key::PublicKey;
use entitle::record::{self, Record};
use entitle::seal::{self, Seal};
use entitle::verify::Entitlement;
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
    let log_settings = match &command {
        Command::Help(text) => return print_and_succeed(text),
        Command::Version => return print_and_succeed(&version()),
        Command::Check(options) | Command::Verify(options) | Command::Run(options, _) => {
            config::log_settings(options)
        }
        Command::Seal(_) | Command::Inspect | Command::Install(_) => Ok(LogSettings::default()),
    };
    if let Err(failure) = log_settings.and_then(|s| logging::init(&s)) {
        eprintln!("entitle: {failure}");
        return failure.exit_code();
    }
    let outcome = own_seal().and_then(|seal| match command {
        Command::Check(options) => check_settings(&options, seal.as_ref())
            .and_then(|s| check(&s))
            .map(|_| 0),
        Command::Verify(options) => verify_settings(&options, seal.as_ref())
            .and_then(|s| verify_offline(&s))
            .map(|_| 0),
        Command::Run(options, run) => check_settings(&options, seal.as_ref())
            .and_then(|settings| supervise::run(run, Box::new(move || check(&settings)))),
        Command::Seal(request) => seal_copy(&request, seal.as_ref()).map(|_| 0),
        Command::Inspect => print_seal(seal.as_ref()).map(|_| 0),
        Command::Install(folder) => install(&folder).map(|_| 0),
        Command::Help(_) | Command::Version => Ok(0),
    });
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
    let status = match seal::decode(&seal::own_slot()) {
        Ok(None) => "unsealed".to_owned(),
        Ok(Some(seal)) => format!("sealed: {}", seal.codes().join(", ")),
        Err(e) => format!("seal damaged: {e}"),
    };
    format!("entitle {} ({status})\n", env!("CARGO_PKG_VERSION"))
}

/// This binary's sealed trust, if any. A damaged seal stops everything: never fall back to
/// runtime options.
fn own_seal() -> Result<Option<Seal>, Failure> {
    seal::decode(&seal::own_slot()).map_err(Failure::Config)
}

fn read_file(path: &std::path::Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn check_settings(
    options: &config::Options,
    seal: Option<&Seal>,
) -> Result<CheckSettings, Failure> {
    config::check_settings(options, &read_file, seal)
}

fn verify_settings(
    options: &config::Options,
    seal: Option<&Seal>,
) -> Result<VerifySettings, Failure> {
    config::verify_settings(options, &read_file, seal)
}

/// `entitle seal`: a copy of this executable with the vendor's products in its seal slot.
fn seal_copy(request: &SealRequest, current: Option<&Seal>) -> Result<(), Failure> {
    if let Some(current) = current {
        return Err(Failure::Config(format!(
            "this binary is already sealed (products: {}); seal the released, unsealed entitle binary",
            current.codes().join(", ")
        )));
    }
    let entries = request
        .entries
        .iter()
        .map(|(code, version, key_file)| {
            let key_file = key_file.as_deref().ok_or_else(|| {
                Failure::Usage(format!("--product-code {code} needs its --public-key-file"))
            })?;
            let public_key = std::fs::read_to_string(key_file)
                .map_err(|e| Failure::Config(format!("cannot read {key_file}: {e}")))?;
            Ok(seal::Entry {
                product_code: code.clone(),
                public_key_version: config::public_key_version(version.as_deref())?,
                public_key,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let new_seal = Seal {
        entries,
        default_timeout: request.default_timeout.clone(),
    };
    let output = request.output.as_deref().unwrap_or_default();
    let binary = own_executable()?;
    let sealed =
        seal::seal_binary(&binary, &seal::own_slot(), &new_seal).map_err(Failure::Config)?;
    record::write_atomically(std::path::Path::new(output), &sealed, 0o755)
        .map_err(|e| Failure::Config(format!("cannot write --output {output}: {e}")))?;
    info!(products = %new_seal.codes().join(", "), output, "sealed");
    Ok(())
}

/// This program's own file, read through /proc so it works however it was started.
fn own_executable() -> Result<Vec<u8>, Failure> {
    std::fs::read("/proc/self/exe").map_err(|e| {
        Failure::Internal(format!("cannot read this executable (/proc/self/exe): {e}"))
    })
}

/// `entitle install DIR`: this executable, byte for byte (a seal included), as DIR/entitle.
fn install(folder: &std::path::Path) -> Result<(), Failure> {
    let target = folder.join("entitle");
    let binary = own_executable()?;
    record::write_atomically(&target, &binary, 0o755).map_err(|e| {
        Failure::Config(format!(
            "cannot install into {}: {e}; mount a writable folder (e.g. an emptyDir) there",
            folder.display()
        ))
    })?;
    info!(path = %target.display(), bytes = binary.len(), "installed");
    Ok(())
}

/// `entitle inspect`: the seal in a form a vendor can compare with the portal.
fn print_seal(seal: Option<&Seal>) -> Result<(), Failure> {
    let Some(seal) = seal else {
        println!(
            "entitle {}: unsealed (product and key come from options)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    };
    println!("entitle {}: sealed", env!("CARGO_PKG_VERSION"));
    for entry in &seal.entries {
        let key = PublicKey::from_pem(&entry.public_key).map_err(Failure::Config)?;
        println!(
            "product {} key-version {} RSA-{} sha256:{}",
            entry.product_code,
            entry.public_key_version,
            key.bits(),
            key.fingerprint()
        );
    }
    if let Some(timeout) = &seal.default_timeout {
        println!("default timeout {timeout}");
    }
    Ok(())
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
    let entitlement = product.verify(&answer.signature, &nonce)?;
    if let Some(path) = &settings.output {
        let record = Record::new(&entitlement, answer.key_rotation.clone(), SystemTime::now());
        record::write_atomically(path, record.to_json().as_bytes(), 0o644).map_err(|e| {
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
    let entitlement = settings.product.verify(&token, &nonce)?;
    info!(
        product_code = %entitlement.product_code,
        public_key_version = entitlement.public_key_version,
        issued_at = entitlement.issued_at,
        "token verified"
    );
    Ok(())
}
