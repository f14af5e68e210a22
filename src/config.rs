//! Configuration: the parsed command line checked against the world, into the settings of one
//! command. Values that parse but cannot be right (a product code with bad characters, a key of
//! the wrong size, a folder that does not exist) are configuration errors (78), all found before
//! any request is sent. A sealed binary takes its products and keys from its seal only.

use crate::aws::AwsSettings;
use crate::cli::{KeySource, MeterOptions, Options, TokenInput};
use crate::exit::Failure;
use crate::relay::{self, Listen};
use crate::seal::Seal;
use crate::transport::{self, NetworkSettings, Proxies};
use crate::verify::{self, Product};
use entitle_verify::{PublicKey, Record, MAX_TOKEN_BYTES};
use std::ffi::CString;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_METER_PERIOD: Duration = Duration::from_secs(3600);
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(20);

/// The no-key message: what RegisterUsage needs, and the metered alternative.
const NO_KEY: &str = "no public key: give the product's RSA public key from the AWS Marketplace Management Portal with --public-key-file (ENTITLE_PUBLIC_KEY_FILE) or --public-key (ENTITLE_PUBLIC_KEY)";

/// Reads a file the configuration names (a key, a token, a record).
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;

/// A validated `entitle check` (and the registration half of `entitle run`).
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub product: Product,
    pub timeout: Duration,
    pub output: Option<PathBuf>,
    pub aws: AwsSettings,
    /// Metering (`--meter`, or dimensions in the seal); `None` when the product is not metered.
    pub metering: Option<MeterSettings>,
}

/// A validated metering relay.
#[derive(Debug, Clone)]
pub struct MeterSettings {
    pub dimensions: Vec<String>,
    pub listen: Listen,
    pub state: Option<PathBuf>,
    /// Each hour's records go out at a random offset within this.
    pub spread: Duration,
    pub flush_timeout: Duration,
    /// The metering hour, in seconds (3600 against AWS).
    pub period: u64,
}

/// A validated `entitle verify`: the token and nonce to check, and for which product.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub product: Product,
    pub token: String,
    pub nonce: String,
}

/// Validated settings for `check` and `run`.
pub fn check_settings(
    options: &Options,
    read_file: ReadFile,
    seal: Option<&Seal>,
) -> Result<CheckSettings, Failure> {
    if let Some(var) = options.blank_endpoint_variable {
        return Err(Failure::Config(format!(
            "{var} is set but empty; unset it to use the AWS endpoint, or set it to an http(s) URL"
        )));
    }
    let product = product(options, options.product_code.as_deref(), read_file, seal)?;
    if product.public_key.is_none() && product.meter_dimensions.is_empty() {
        return Err(Failure::Config(format!(
            "{NO_KEY}; a product priced by custom dimensions gives them with --meter (ENTITLE_METER_DIMENSIONS) instead"
        )));
    }
    if product.public_key.is_none() && options.output.is_some() {
        return Err(Failure::Config(
            "--output (ENTITLE_OUTPUT) needs a public key: the record holds the RegisterUsage token".into(),
        ));
    }
    let metering = match product.meter_dimensions.is_empty() {
        true => None,
        false => Some(meter_settings(&product.meter_dimensions, &options.meter)?),
    };
    let sealed_timeout = seal.and_then(|s| s.default_timeout.as_deref());
    let timeout = match (options.timeout, sealed_timeout) {
        (Some(timeout), _) => positive("--timeout (ENTITLE_TIMEOUT)", timeout)?,
        (None, Some(text)) => positive(
            "the sealed default timeout",
            crate::cli::duration("the sealed default timeout", text)?,
        )?,
        (None, None) => DEFAULT_TIMEOUT,
    };
    let attempt_timeout = match options.attempt_timeout {
        Some(limit) => positive("--attempt-timeout (ENTITLE_ATTEMPT_TIMEOUT)", limit)?,
        None => DEFAULT_ATTEMPT_TIMEOUT,
    };
    Ok(CheckSettings {
        product,
        timeout,
        output: options.output.as_deref().map(output_path).transpose()?,
        aws: AwsSettings {
            endpoint_url: options.endpoint_url.clone(),
            network: network_settings(options)?,
            attempt_timeout,
        },
        metering,
    })
}

/// The relay's settings. A shortened hour is for local tests only: against AWS a record per
/// hour is the contract, so another period is refused unless the endpoint is overridden.
fn meter_settings(dimensions: &[String], options: &MeterOptions) -> Result<MeterSettings, Failure> {
    let period = options.period.unwrap_or(DEFAULT_METER_PERIOD);
    if period != DEFAULT_METER_PERIOD && !options.endpoint_overridden {
        return Err(Failure::Config(
            "--meter-period (ENTITLE_METER_PERIOD) is for local tests against entitle-mock and is refused against AWS; unset it, or set AWS_ENDPOINT_URL_MARKETPLACE_METERING to the test endpoint".into(),
        ));
    }
    if period.subsec_nanos() != 0 || period.is_zero() {
        return Err(Failure::Config(
            "--meter-period (ENTITLE_METER_PERIOD) must be a whole number of seconds, at least 1s"
                .into(),
        ));
    }
    let spread = options.spread.unwrap_or(period / 6);
    if spread >= period {
        return Err(Failure::Config(format!(
            "--meter-spread (ENTITLE_METER_SPREAD) must be shorter than the metering period ({}s)",
            period.as_secs()
        )));
    }
    Ok(MeterSettings {
        dimensions: dimensions.to_vec(),
        listen: options.listen.clone().unwrap_or_else(|| {
            Listen::Tcp(relay::DEFAULT_LISTEN.parse().expect("a valid address"))
        }),
        state: options.state.clone(),
        spread,
        flush_timeout: positive(
            "--meter-flush-timeout (ENTITLE_METER_FLUSH_TIMEOUT)",
            options.flush_timeout.unwrap_or(DEFAULT_FLUSH_TIMEOUT),
        )?,
        period: period.as_secs(),
    })
}

/// `SSL_CERT_FILE` read and checked once, and the proxy variables.
fn network_settings(options: &Options) -> Result<NetworkSettings, Failure> {
    let extra_roots = match &options.ssl_cert_file {
        Some(path) => transport::read_ca_bundle(path).map_err(Failure::Config)?,
        None => Vec::new(),
    };
    let proxies = Proxies::from_variables(&options.proxies).map_err(Failure::Config)?;
    Ok(NetworkSettings {
        extra_roots,
        proxies,
    })
}

/// Validated settings for `verify`. With a record, the record names its product: a binary
/// sealed for several products checks it against that product's sealed key.
pub fn verify_settings(
    options: &Options,
    read_file: ReadFile,
    seal: Option<&Seal>,
) -> Result<VerifySettings, Failure> {
    let (token, nonce, recorded_code) = match &options.token {
        TokenInput::Record(path) => {
            let record = read_record(path, read_file)?;
            (
                Some(record.signature),
                Some(record.nonce),
                Some(record.product_code),
            )
        }
        TokenInput::File(path, nonce) => {
            (Some(read_token_file(path, read_file)?), nonce.clone(), None)
        }
        TokenInput::Inline(token, nonce) => (Some(token.clone()), nonce.clone(), None),
        TokenInput::Missing(nonce) => (None, nonce.clone(), None),
    };
    let code = match (&options.product_code, seal, &recorded_code) {
        (Some(code), _, _) => Some(code.as_str()),
        (None, Some(seal), Some(recorded)) if seal.has(recorded) => Some(recorded.as_str()),
        _ => None,
    };
    let product = product(options, code, read_file, seal)?;
    if product.public_key.is_none() {
        return Err(Failure::Config(format!(
            "{NO_KEY}; a token is checked against it"
        )));
    }
    let token = token.ok_or_else(|| {
        Failure::Config(
            "no token to verify: give --token FILE (or ENTITLE_TOKEN) with --nonce, or --record FILE".into(),
        )
    })?;
    let nonce = nonce.ok_or_else(|| {
        Failure::Config(
            "--nonce (ENTITLE_NONCE) is required with a token: the nonce sent with the request"
                .into(),
        )
    })?;
    Ok(VerifySettings {
        product,
        token,
        nonce,
    })
}

fn read_record(path: &Path, read_file: ReadFile) -> Result<Record, Failure> {
    let text = read_file(path).map_err(|e| {
        Failure::Config(format!("cannot read --record file {}: {e}", path.display()))
    })?;
    Record::from_json(&text)
        .map_err(|e| Failure::Untrusted(format!("--record file {}: {e}", path.display())))
}

fn read_token_file(path: &str, read_file: ReadFile) -> Result<String, Failure> {
    let text = if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(2 * MAX_TOKEN_BYTES as u64)
            .read_to_string(&mut text)
            .map_err(|e| {
                Failure::Config(format!("cannot read the token from standard input: {e}"))
            })?;
        text
    } else {
        read_file(Path::new(path))
            .map_err(|e| Failure::Config(format!("cannot read --token file {path}: {e}")))?
    };
    Ok(text.trim().to_owned())
}

fn product(
    options: &Options,
    code: Option<&str>,
    read_file: ReadFile,
    seal: Option<&Seal>,
) -> Result<Product, Failure> {
    match seal {
        Some(seal) => sealed_product(options, code, seal),
        None => runtime_product(options, code, read_file),
    }
}

/// A sealed binary trusts only its sealed entries: runtime key options are refused outright
/// rather than ignored, so a misconfigured deployment is noticed.
fn sealed_product(options: &Options, code: Option<&str>, seal: &Seal) -> Result<Product, Failure> {
    let refused = match (&options.public_key, options.public_key_version) {
        (Some(KeySource::File(_)), _) => Some("--public-key-file / ENTITLE_PUBLIC_KEY_FILE"),
        (Some(KeySource::Inline(_)), _) => Some("--public-key / ENTITLE_PUBLIC_KEY"),
        (None, Some(_)) => Some("--public-key-version / ENTITLE_PUBLIC_KEY_VERSION"),
        (None, None) => None,
    };
    if let Some(option) = refused {
        return Err(Failure::Config(format!(
            "this binary is sealed (products: {}); it trusts only its sealed keys, remove {option}",
            seal.codes().join(", ")
        )));
    }
    let entry = seal.entry(code).map_err(Failure::Config)?;
    let public_key = entry
        .public_key
        .as_deref()
        .map(PublicKey::from_pem)
        .transpose()
        .map_err(|e| Failure::Config(format!("sealed key for {}: {e}", entry.product_code)))?;
    if let Some(runtime) = &options.meter.dimensions {
        if !same_set(runtime, &entry.meter_dimensions) {
            return Err(Failure::Config(format!(
                "this binary is sealed to meter {} for product {}; --meter (ENTITLE_METER_DIMENSIONS) says {}: remove it, or seal the binary again",
                describe_dimensions(&entry.meter_dimensions),
                entry.product_code,
                describe_dimensions(runtime)
            )));
        }
    }
    Ok(Product {
        code: entry.product_code.clone(),
        public_key_version: entry.public_key_version,
        public_key,
        meter_dimensions: entry.meter_dimensions.clone(),
    })
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

fn describe_dimensions(dimensions: &[String]) -> String {
    match dimensions.is_empty() {
        true => "no dimensions".into(),
        false => dimensions.join(","),
    }
}

fn runtime_product(
    options: &Options,
    code: Option<&str>,
    read_file: ReadFile,
) -> Result<Product, Failure> {
    let code = verify::product_code(code)?;
    let public_key_version = verify::public_key_version(options.public_key_version)?;
    let pem = match &options.public_key {
        Some(KeySource::File(path)) => Some(read_file(Path::new(path)).map_err(|e| {
            Failure::Config(format!(
                "cannot read the public key file {path} (--public-key-file / ENTITLE_PUBLIC_KEY_FILE): {e}"
            ))
        })?),
        Some(KeySource::Inline(pem)) => Some(pem.clone()),
        None => None,
    };
    let public_key = pem
        .as_deref()
        .map(PublicKey::from_pem)
        .transpose()
        .map_err(|e| Failure::Config(format!("invalid public key: {e}")))?;
    let meter_dimensions = options.meter.dimensions.clone().unwrap_or_default();
    verify::meter_dimensions(&meter_dimensions)?;
    Ok(Product {
        code,
        public_key_version,
        public_key,
        meter_dimensions,
    })
}

fn positive(what: &str, duration: Duration) -> Result<Duration, Failure> {
    if duration.is_zero() {
        return Err(Failure::Config(format!("{what} must be longer than zero")));
    }
    Ok(duration)
}

/// The record's path, once its folder is known to exist and be writable: a read-only mount
/// must fail now, not after registering.
fn output_path(text: &str) -> Result<PathBuf, Failure> {
    let path = PathBuf::from(text);
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Err(Failure::Config(format!(
            "--output (ENTITLE_OUTPUT) {text} names no file"
        )));
    }
    if !folder.is_dir() {
        return Err(Failure::Config(format!(
            "--output (ENTITLE_OUTPUT) folder {} does not exist; mount it (e.g. an emptyDir) or create it first",
            folder.display()
        )));
    }
    if !writable(&folder) {
        return Err(Failure::Config(format!(
            "--output (ENTITLE_OUTPUT) folder {} is not writable by this user; mount a writable volume (e.g. an emptyDir) there",
            folder.display()
        )));
    }
    Ok(path)
}

fn writable(folder: &Path) -> bool {
    let Ok(path) = CString::new(folder.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads a NUL-terminated path; no memory is written.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Command};
    use entitle_verify::key::test_keys;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn options(list: &[&str], env: &[(&str, &str)]) -> Options {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let args = list.iter().map(OsString::from).collect();
        match parse(args, &move |k| env.get(k).cloned()) {
            Ok(Command::Check(o)) | Ok(Command::Verify(o)) | Ok(Command::Run(o, _)) => o,
            other => panic!("{other:?}"),
        }
    }

    fn no_files(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn check_settings_validate_everything_before_any_request() {
        let base = |extra: &[(&str, &str)]| {
            let mut env = vec![
                ("ENTITLE_PRODUCT_CODE", "prod"),
                ("ENTITLE_PUBLIC_KEY", test_keys::PUBLIC_2048_SPKI),
            ];
            env.extend_from_slice(extra);
            check_settings(&options(&["check"], &env), &no_files, None)
        };
        let ok = base(&[]).unwrap();
        assert_eq!(
            (ok.timeout, ok.aws.attempt_timeout),
            (DEFAULT_TIMEOUT, DEFAULT_ATTEMPT_TIMEOUT)
        );
        for (env, expected) in [
            (("ENTITLE_TIMEOUT", "0s"), "must be longer than zero"),
            (("ENTITLE_OUTPUT", "/no/such/dir/r.json"), "does not exist"),
            (("ENTITLE_PUBLIC_KEY", "junk"), "invalid public key"),
            (("ENTITLE_PUBLIC_KEY_VERSION", "0"), "out of range"),
            (("ENTITLE_PRODUCT_CODE", "has space"), "product code"),
            (("AWS_ENDPOINT_URL", " "), "set but empty"),
            (
                ("HTTPS_PROXY", "socks5://p:1080"),
                "HTTPS_PROXY: the proxy scheme socks5",
            ),
            (
                ("SSL_CERT_FILE", "/no/such/bundle.pem"),
                "cannot read SSL_CERT_FILE",
            ),
        ] {
            let result = base(&[env]);
            assert!(
                matches!(&result, Err(Failure::Config(m)) if m.contains(expected)),
                "{env:?}: {result:?}"
            );
        }
        let missing_file = check_settings(
            &options(
                &[
                    "check",
                    "--product-code",
                    "p",
                    "--public-key-file",
                    "/nope.pem",
                ],
                &[],
            ),
            &no_files,
            None,
        );
        assert!(matches!(missing_file, Err(Failure::Config(m)) if m.contains("/nope.pem")));
    }

    #[test]
    fn verify_needs_a_token_and_its_nonce() {
        let env = [
            ("ENTITLE_PRODUCT_CODE", "prod"),
            ("ENTITLE_PUBLIC_KEY", test_keys::PUBLIC_2048_SPKI),
        ];
        let without = verify_settings(&options(&["verify"], &env), &no_files, None);
        assert!(matches!(without, Err(Failure::Config(m)) if m.contains("no token")));
        let mut with_token = env.to_vec();
        with_token.push(("ENTITLE_TOKEN", "a.b.c"));
        let no_nonce = verify_settings(&options(&["verify"], &with_token), &no_files, None);
        assert!(matches!(no_nonce, Err(Failure::Config(m)) if m.contains("--nonce")));
        with_token.push(("ENTITLE_NONCE", "n"));
        let settings =
            verify_settings(&options(&["verify"], &with_token), &no_files, None).unwrap();
        assert_eq!(
            (settings.token.as_str(), settings.nonce.as_str()),
            ("a.b.c", "n")
        );
    }
}
