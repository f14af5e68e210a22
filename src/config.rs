//! Configuration: command line and environment in, a validated request for one command out.
//!
//! Every option has a flag and an environment variable; the flag wins. Unknown flags and
//! unparseable values are usage errors (64); values that parse but cannot be right (a product
//! code with bad characters, a key of the wrong size) are configuration errors (78). All of it is
//! checked before any request is sent.

use crate::exit::Failure;
use crate::key::PublicKey;
use crate::seal::Seal;
use crate::supervise::{RunOptions, StartPolicy};
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_PRODUCT_CODE_LEN: usize = 255;

/// What the user asked for.
#[derive(Debug)]
pub enum Command {
    Help(&'static str),
    Version,
    Check(Options),
    Verify(Options),
    Run(Options, RunOptions),
    Seal(SealRequest),
    Inspect,
    /// Copy this binary into a folder (an init container filling an `emptyDir`).
    Install(PathBuf),
}

/// `entitle seal`: which products to trust, read from the vendor's files at build time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealRequest {
    /// (product code, public key version, public key file)
    pub entries: Vec<(String, Option<String>, Option<String>)>,
    pub default_timeout: Option<String>,
    pub output: Option<String>,
}

/// Options as given (flags over env), not yet validated. Shared by check, verify and run.
#[derive(Debug, Default)]
pub struct Options {
    pub product_code: Option<String>,
    pub public_key_version: Option<String>,
    pub public_key_file: Option<String>,
    pub public_key: Option<String>,
    pub timeout: Option<String>,
    pub attempt_timeout: Option<String>,
    pub output: Option<String>,
    pub endpoint_url: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub token_file: Option<String>,
    pub token: Option<String>,
    pub nonce: Option<String>,
    pub record: Option<String>,
    /// An AWS endpoint variable that is set but blank: the SDK would panic on it.
    pub blank_endpoint_variable: Option<&'static str>,
}

/// Endpoint variables the AWS SDK reads by itself (the STS one for EKS IRSA credentials).
const SDK_ENDPOINT_VARIABLES: &[&str] = &[
    "AWS_ENDPOINT_URL_MARKETPLACE_METERING",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
];

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

/// The product this binary checks entitlement for.
#[derive(Debug, Clone)]
pub struct Product {
    pub code: String,
    pub public_key_version: u64,
    pub public_key: PublicKey,
}

impl Product {
    /// Verifies `token` as the answer to a request for this product with `nonce`.
    pub fn verify(&self, token: &str, nonce: &str) -> Result<crate::verify::Entitlement, Failure> {
        let expected = crate::verify::Expected {
            product_code: &self.code,
            public_key_version: self.public_key_version,
            nonce,
        };
        crate::verify::verify(token, &self.public_key, &expected)
            .map_err(|rejection| Failure::Untrusted(rejection.to_string()))
    }
}

/// A validated `entitle check` (and the registration half of `entitle run`).
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub product: Product,
    pub timeout: Duration,
    pub attempt_timeout: Duration,
    pub output: Option<PathBuf>,
    pub endpoint_url: Option<String>,
}

/// The token `entitle verify` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Token { token: String, nonce: String },
    Record(PathBuf),
}

/// A validated `entitle verify`.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub product: Product,
    pub source: TokenSource,
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses `entitle ARGS` (without the program name), reading missing options from `env`.
pub fn parse(args: Vec<OsString>, env: Env) -> Result<Command, Failure> {
    let mut parser = lexopt::Parser::from_args(args);
    let subcommand = match parser.next().map_err(usage)? {
        None => {
            return Err(usage_msg(
                "no command given; try `entitle check` or `entitle --help`",
            ))
        }
        Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) => {
            return Ok(Command::Help(HELP))
        }
        Some(lexopt::Arg::Long("version")) | Some(lexopt::Arg::Short('V')) => {
            return Ok(Command::Version)
        }
        Some(lexopt::Arg::Value(name)) => name
            .into_string()
            .map_err(|_| usage_msg("command is not UTF-8"))?,
        Some(other) => return Err(usage(other.unexpected())),
    };
    match subcommand.as_str() {
        "help" => help_for(parser.next().map_err(usage)?),
        "check" => parse_options(&mut parser, Subcommand::Check, env),
        "verify" => parse_options(&mut parser, Subcommand::Verify, env),
        "run" => parse_options(&mut parser, Subcommand::Run, env),
        "seal" => parse_seal(&mut parser),
        "inspect" => match parser.next().map_err(usage)? {
            None => Ok(Command::Inspect),
            Some(other) => Err(usage(other.unexpected())),
        },
        "install" => parse_install(&mut parser),
        other => Err(usage_msg(&format!(
            "unknown command `{other}`; the commands are check, verify, run, seal, inspect, install and help"
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Subcommand {
    Check,
    Verify,
    Run,
}

fn help_for(arg: Option<lexopt::Arg>) -> Result<Command, Failure> {
    match arg {
        None => Ok(Command::Help(HELP)),
        Some(lexopt::Arg::Value(v)) if v == "check" => Ok(Command::Help(HELP_CHECK)),
        Some(lexopt::Arg::Value(v)) if v == "verify" => Ok(Command::Help(HELP_VERIFY)),
        Some(lexopt::Arg::Value(v)) if v == "run" => Ok(Command::Help(HELP_RUN)),
        Some(lexopt::Arg::Value(v)) if v == "seal" || v == "inspect" => {
            Ok(Command::Help(HELP_SEAL))
        }
        Some(other) => Err(usage_msg(&format!(
            "no help for {}; the commands are check, verify and run",
            describe(&other)
        ))),
    }
}

/// Flags apply to the entry opened by the last --product-code, so several products can be sealed.
fn parse_seal(parser: &mut lexopt::Parser) -> Result<Command, Failure> {
    let mut request = SealRequest::default();
    while let Some(arg) = parser.next().map_err(usage)? {
        let name = match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => {
                return Ok(Command::Help(HELP_SEAL))
            }
            lexopt::Arg::Long(name) => name.to_owned(),
            other => return Err(usage(other.unexpected())),
        };
        let value = parser
            .value()
            .map_err(usage)?
            .into_string()
            .map_err(|_| usage_msg(&format!("--{name} value is not UTF-8")))?;
        let once = |slot: &mut Option<String>, value: String| match slot {
            Some(_) => Err(usage_msg(&format!(
                "--{name} is given twice for one product"
            ))),
            None => {
                *slot = Some(value);
                Ok(())
            }
        };
        match (name.as_str(), request.entries.last_mut()) {
            ("product-code", _) => request.entries.push((value, None, None)),
            ("public-key-version", Some(entry)) => once(&mut entry.1, value)?,
            ("public-key-file", Some(entry)) => once(&mut entry.2, value)?,
            ("public-key-version" | "public-key-file", None) => {
                return Err(usage_msg(&format!(
                    "--{name} must follow the --product-code it belongs to"
                )))
            }
            ("default-timeout", _) => once(&mut request.default_timeout, value)?,
            ("output", _) => once(&mut request.output, value)?,
            _ => {
                return Err(usage_msg(&format!(
                    "unknown option --{name} for `entitle seal`; see `entitle help seal`"
                )))
            }
        }
    }
    if request.entries.is_empty() || request.output.is_none() {
        return Err(usage_msg(
            "`entitle seal` needs --product-code CODE --public-key-file KEY.pem (repeatable) and --output PATH",
        ));
    }
    Ok(Command::Seal(request))
}

fn parse_install(parser: &mut lexopt::Parser) -> Result<Command, Failure> {
    let folder = match parser.next().map_err(usage)? {
        Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) => {
            return Ok(Command::Help(HELP_INSTALL))
        }
        Some(lexopt::Arg::Value(folder)) => PathBuf::from(folder),
        Some(other) => return Err(usage(other.unexpected())),
        None => {
            return Err(usage_msg(
                "`entitle install` needs the folder to copy the binary into",
            ))
        }
    };
    match parser.next().map_err(usage)? {
        None => Ok(Command::Install(folder)),
        Some(other) => Err(usage(other.unexpected())),
    }
}

fn describe(arg: &lexopt::Arg) -> String {
    match arg {
        lexopt::Arg::Value(v) => format!("`{}`", v.to_string_lossy()),
        lexopt::Arg::Long(l) => format!("`--{l}`"),
        lexopt::Arg::Short(s) => format!("`-{s}`"),
    }
}

/// (flag, env var, which subcommands take it)
const OPTIONS: &[(&str, &str, &[Subcommand])] = {
    use Subcommand::*;
    &[
        (
            "product-code",
            "ENTITLE_PRODUCT_CODE",
            &[Check, Verify, Run],
        ),
        (
            "public-key-version",
            "ENTITLE_PUBLIC_KEY_VERSION",
            &[Check, Verify, Run],
        ),
        (
            "public-key-file",
            "ENTITLE_PUBLIC_KEY_FILE",
            &[Check, Verify, Run],
        ),
        ("public-key", "ENTITLE_PUBLIC_KEY", &[Check, Verify, Run]),
        ("timeout", "ENTITLE_TIMEOUT", &[Check, Run]),
        ("attempt-timeout", "ENTITLE_ATTEMPT_TIMEOUT", &[Check, Run]),
        ("output", "ENTITLE_OUTPUT", &[Check, Run]),
        (
            "endpoint-url",
            "AWS_ENDPOINT_URL_MARKETPLACE_METERING",
            &[Check, Run],
        ),
        ("log-format", "ENTITLE_LOG_FORMAT", &[Check, Verify, Run]),
        ("log-level", "ENTITLE_LOG", &[Check, Verify, Run]),
        ("token", "ENTITLE_TOKEN_FILE", &[Verify]),
        ("nonce", crate::handoff::ENV_NONCE, &[Verify]),
        ("record", "ENTITLE_RECORD", &[Verify]),
        ("start", "ENTITLE_START", &[Run]),
        ("grace-period", "ENTITLE_GRACE_PERIOD", &[Run]),
    ]
};

/// Switches: (flag, env var that turns it on with 1/true/yes).
const SWITCHES: &[(&str, &str)] = &[
    ("exec", "ENTITLE_EXEC"),
    ("kill-process-group", "ENTITLE_KILL_PROCESS_GROUP"),
];

fn parse_options(
    parser: &mut lexopt::Parser,
    subcommand: Subcommand,
    env: Env,
) -> Result<Command, Failure> {
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let mut switches: Vec<&'static str> = Vec::new();
    let mut command: Vec<OsString> = Vec::new();
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => {
                return Ok(Command::Help(subcommand_help(subcommand)))
            }
            lexopt::Arg::Long(name) => {
                if let Some(&(flag, _)) = SWITCHES.iter().find(|(f, _)| *f == name) {
                    if subcommand != Subcommand::Run {
                        return Err(unknown_flag(name, subcommand));
                    }
                    switches.push(flag);
                    continue;
                }
                let flag = OPTIONS
                    .iter()
                    .find(|(f, _, subs)| *f == name && subs.contains(&subcommand))
                    .map(|(f, _, _)| *f)
                    .ok_or_else(|| unknown_flag(name, subcommand))?;
                let value = parser
                    .value()
                    .map_err(usage)?
                    .into_string()
                    .map_err(|_| usage_msg(&format!("--{flag} value is not UTF-8")))?;
                if given.iter().any(|(f, _)| *f == flag) {
                    return Err(usage_msg(&format!("--{flag} is given twice")));
                }
                given.push((flag, value));
            }
            lexopt::Arg::Value(value) if subcommand == Subcommand::Run => {
                command.push(value);
                command.extend(parser.raw_args().map_err(usage)?);
            }
            other => return Err(usage(other.unexpected())),
        }
    }
    let lookup = |flag: &str| -> Option<String> {
        given
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                let (_, var, subs) = OPTIONS.iter().find(|(f, _, _)| *f == flag)?;
                subs.contains(&subcommand)
                    .then(|| env(var))
                    .flatten()
                    .filter(|v| !v.is_empty())
            })
    };
    let options = collect(&lookup, subcommand, &given, env)?;
    let command = match subcommand {
        Subcommand::Check => Command::Check(options),
        Subcommand::Verify => Command::Verify(options),
        Subcommand::Run => {
            let switch_on = |flag: &str| {
                switches.contains(&flag)
                    || SWITCHES
                        .iter()
                        .find(|(f, _)| *f == flag)
                        .and_then(|(_, var)| env(var))
                        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
            };
            let run = run_options(&lookup, &switch_on, command)?;
            Command::Run(options, run)
        }
    };
    Ok(command)
}

fn collect(
    lookup: &dyn Fn(&str) -> Option<String>,
    subcommand: Subcommand,
    given: &[(&'static str, String)],
    env: Env,
) -> Result<Options, Failure> {
    let flag_given = |flag: &str| given.iter().any(|(f, _)| *f == flag);
    // Key: any key flag beats any key env var; two flags at once is ambiguous.
    let (public_key_file, public_key) =
        match (flag_given("public-key-file"), flag_given("public-key")) {
            (true, true) => {
                return Err(usage_msg(
                    "give --public-key-file or --public-key, not both",
                ))
            }
            (true, false) => (lookup("public-key-file"), None),
            (false, true) => (None, lookup("public-key")),
            (false, false) => (lookup("public-key-file"), lookup("public-key")),
        };
    let mut options = Options {
        product_code: lookup("product-code"),
        public_key_version: lookup("public-key-version"),
        public_key_file,
        public_key,
        timeout: lookup("timeout"),
        attempt_timeout: lookup("attempt-timeout"),
        output: lookup("output"),
        endpoint_url: lookup("endpoint-url"),
        log_format: lookup("log-format"),
        log_level: lookup("log-level"),
        token_file: lookup("token"),
        token: None,
        nonce: lookup("nonce"),
        record: lookup("record"),
        blank_endpoint_variable: SDK_ENDPOINT_VARIABLES
            .iter()
            .find(|var| env(var).is_some_and(|v| v.trim().is_empty()))
            .copied(),
    };
    if subcommand == Subcommand::Verify {
        // The workload started by `entitle run` has the token itself in ENTITLE_TOKEN.
        let any_source_flag = flag_given("token") || flag_given("record");
        if !any_source_flag && options.token_file.is_none() && options.record.is_none() {
            options.token = env(crate::handoff::ENV_TOKEN).filter(|t| !t.is_empty());
        }
        if flag_given("token") && flag_given("record") {
            return Err(usage_msg("give --token or --record, not both"));
        }
        if flag_given("record") {
            options.token_file = None;
        } else if flag_given("token") {
            options.record = None;
        }
    }
    Ok(options)
}

fn run_options(
    lookup: &dyn Fn(&str) -> Option<String>,
    switch_on: &dyn Fn(&str) -> bool,
    command: Vec<OsString>,
) -> Result<RunOptions, Failure> {
    if command.is_empty() {
        return Err(usage_msg(
            "no command to run; give it after `--`, e.g. `entitle run -- /app/server`",
        ));
    }
    let start = match lookup("start").as_deref() {
        None | Some("gate") => StartPolicy::Gate,
        Some("concurrent") => StartPolicy::Concurrent,
        Some(other) => {
            return Err(usage_msg(&format!(
                "--start (ENTITLE_START) is `{other}`, expected gate or concurrent"
            )))
        }
    };
    let grace_period = lookup("grace-period")
        .map(|v| parse_duration("--grace-period (ENTITLE_GRACE_PERIOD)", &v))
        .transpose()?;
    Ok(RunOptions {
        start,
        exec: switch_on("exec"),
        kill_process_group: switch_on("kill-process-group"),
        grace_period,
        command,
    })
}

fn subcommand_help(subcommand: Subcommand) -> &'static str {
    match subcommand {
        Subcommand::Check => HELP_CHECK,
        Subcommand::Verify => HELP_VERIFY,
        Subcommand::Run => HELP_RUN,
    }
}

fn unknown_flag(name: &str, subcommand: Subcommand) -> Failure {
    let command = match subcommand {
        Subcommand::Check => "check",
        Subcommand::Verify => "verify",
        Subcommand::Run => "run",
    };
    usage_msg(&format!(
        "unknown option --{name} for `entitle {command}`; see `entitle help {command}`"
    ))
}

fn usage(error: lexopt::Error) -> Failure {
    usage_msg(&error.to_string())
}

fn usage_msg(message: &str) -> Failure {
    Failure::Usage(message.to_owned())
}

/// Validated log settings; done first so later errors are logged in the chosen format.
pub fn log_settings(options: &Options) -> Result<LogSettings, Failure> {
    let json = match options.log_format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(usage_msg(&format!(
                "--log-format (ENTITLE_LOG_FORMAT) is `{other}`, expected text or json"
            )))
        }
    };
    let level = options.log_level.as_deref().unwrap_or("info");
    let filter = match level {
        "error" | "warn" | "info" | "debug" | "trace" | "off" => format!("entitle={level},warn"),
        custom => custom.to_owned(),
    };
    Ok(LogSettings { json, filter })
}

/// Validated settings for `check` and `run`.
pub fn check_settings(
    options: &Options,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
    seal: Option<&Seal>,
) -> Result<CheckSettings, Failure> {
    let product = product(options, read_file, seal)?;
    if let Some(var) = options.blank_endpoint_variable {
        return Err(Failure::Config(format!(
            "{var} is set but empty; unset it to use the AWS endpoint, or set it to an http(s) URL"
        )));
    }
    let sealed_timeout = seal.and_then(|s| s.default_timeout.as_deref());
    let timeout = match (&options.timeout, sealed_timeout) {
        (Some(v), _) => positive_duration("--timeout (ENTITLE_TIMEOUT)", v)?,
        (None, Some(v)) => positive_duration("the sealed default timeout", v)?,
        (None, None) => DEFAULT_TIMEOUT,
    };
    let attempt_timeout = match &options.attempt_timeout {
        Some(v) => positive_duration("--attempt-timeout (ENTITLE_ATTEMPT_TIMEOUT)", v)?,
        None => DEFAULT_ATTEMPT_TIMEOUT,
    };
    let output = options.output.as_deref().map(output_path).transpose()?;
    let endpoint_url = options
        .endpoint_url
        .as_deref()
        .map(endpoint_url)
        .transpose()?;
    Ok(CheckSettings {
        product,
        timeout,
        attempt_timeout,
        output,
        endpoint_url,
    })
}

/// Validated settings for `verify`.
pub fn verify_settings(
    options: &Options,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
    seal: Option<&Seal>,
) -> Result<VerifySettings, Failure> {
    let product = product(options, read_file, seal)?;
    let source = match (&options.record, &options.token_file, &options.token) {
        (Some(record), _, _) => TokenSource::Record(PathBuf::from(record)),
        (None, file, inline) => {
            let token = match (file, inline) {
                (Some(path), _) => read_token_file(path, read_file)?,
                (None, Some(token)) => token.clone(),
                (None, None) => {
                    return Err(Failure::Config(
                        "no token to verify: give --token FILE (or ENTITLE_TOKEN) with --nonce, or --record FILE".into(),
                    ))
                }
            };
            let nonce = options.nonce.clone().ok_or_else(|| {
                Failure::Config("--nonce (ENTITLE_NONCE) is required with a token: the nonce sent with the request".into())
            })?;
            TokenSource::Token { token, nonce }
        }
    };
    Ok(VerifySettings { product, source })
}

fn read_token_file(
    path: &str,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<String, Failure> {
    let text = if path == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::stdin().take(2 * crate::verify::MAX_TOKEN_BYTES as u64),
            &mut text,
        )
        .map_err(|e| Failure::Config(format!("cannot read the token from standard input: {e}")))?;
        text
    } else {
        read_file(Path::new(path))
            .map_err(|e| Failure::Config(format!("cannot read --token file {path}: {e}")))?
    };
    Ok(text.trim().to_owned())
}

fn product(
    options: &Options,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
    seal: Option<&Seal>,
) -> Result<Product, Failure> {
    match seal {
        Some(seal) => sealed_product(options, seal),
        None => runtime_product(options, read_file),
    }
}

/// A sealed binary trusts only its sealed entries: runtime key options are refused outright
/// rather than ignored, so a misconfigured deployment is noticed.
fn sealed_product(options: &Options, seal: &Seal) -> Result<Product, Failure> {
    let refused = [
        (
            "--public-key-file / ENTITLE_PUBLIC_KEY_FILE",
            options.public_key_file.is_some(),
        ),
        (
            "--public-key / ENTITLE_PUBLIC_KEY",
            options.public_key.is_some(),
        ),
        (
            "--public-key-version / ENTITLE_PUBLIC_KEY_VERSION",
            options.public_key_version.is_some(),
        ),
    ];
    if let Some((option, _)) = refused.iter().find(|(_, given)| *given) {
        return Err(Failure::Config(format!(
            "this binary is sealed (products: {}); it trusts only its sealed keys, remove {option}",
            seal.codes().join(", ")
        )));
    }
    let entry = seal
        .entry(options.product_code.as_deref())
        .map_err(Failure::Config)?;
    let public_key = PublicKey::from_pem(&entry.public_key)
        .map_err(|e| Failure::Config(format!("sealed key for {}: {e}", entry.product_code)))?;
    Ok(Product {
        code: entry.product_code.clone(),
        public_key_version: entry.public_key_version,
        public_key,
    })
}

fn runtime_product(
    options: &Options,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Product, Failure> {
    let code = product_code(options.product_code.as_deref())?;
    let public_key_version = public_key_version(options.public_key_version.as_deref())?;
    let pem = match (&options.public_key_file, &options.public_key) {
        (Some(path), _) => read_file(Path::new(path)).map_err(|e| {
            Failure::Config(format!(
                "cannot read the public key file {path} (--public-key-file / ENTITLE_PUBLIC_KEY_FILE): {e}"
            ))
        })?,
        (None, Some(pem)) => pem.clone(),
        (None, None) => {
            return Err(Failure::Config(
                "no public key: give the product's RSA public key from the AWS Marketplace Management Portal with --public-key-file (ENTITLE_PUBLIC_KEY_FILE) or --public-key (ENTITLE_PUBLIC_KEY)".into(),
            ))
        }
    };
    let public_key = PublicKey::from_pem(&pem)
        .map_err(|e| Failure::Config(format!("invalid public key: {e}")))?;
    Ok(Product {
        code,
        public_key_version,
        public_key,
    })
}

/// RegisterUsage `ProductCode`: 1..255 characters of `[-a-zA-Z0-9/=:_.@]` (API reference).
pub fn product_code(value: Option<&str>) -> Result<String, Failure> {
    let code = value.ok_or_else(|| {
        Failure::Config("no product code: set --product-code or ENTITLE_PRODUCT_CODE to the code AWS Marketplace gave the product".into())
    })?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-/=:_.@".contains(c);
    if code.is_empty() {
        return Err(Failure::Config(
            "product code is empty; set it to the code AWS Marketplace gave the product".into(),
        ));
    }
    if code.len() > MAX_PRODUCT_CODE_LEN {
        return Err(Failure::Config(format!(
            "product code is {} characters, at most {MAX_PRODUCT_CODE_LEN} are allowed",
            code.len()
        )));
    }
    if let Some(bad) = code.chars().find(|&c| !allowed(c)) {
        return Err(Failure::Config(format!(
            "product code contains {bad:?}; only letters, digits and -/=:_.@ are allowed"
        )));
    }
    Ok(code.to_owned())
}

/// RegisterUsage `PublicKeyVersion`: an integer >= 1 (the SDK carries it as a 32-bit integer).
pub fn public_key_version(value: Option<&str>) -> Result<u64, Failure> {
    let Some(text) = value else { return Ok(1) };
    let version: u64 = text.parse().map_err(|_| {
        usage_msg(&format!(
            "--public-key-version (ENTITLE_PUBLIC_KEY_VERSION) is `{text}`, expected a whole number such as 1"
        ))
    })?;
    if version == 0 || version > i32::MAX as u64 {
        return Err(Failure::Config(format!(
            "public key version {version} is out of range; it is the version AWS Marketplace gave with the key, starting at 1"
        )));
    }
    Ok(version)
}

fn parse_duration(what: &str, text: &str) -> Result<Duration, Failure> {
    humantime::parse_duration(text).map_err(|e| {
        usage_msg(&format!(
            "{what} is `{text}`: {e}; use a duration such as 90s, 10m or 1h"
        ))
    })
}

fn positive_duration(what: &str, text: &str) -> Result<Duration, Failure> {
    let duration = parse_duration(what, text)?;
    if duration.is_zero() {
        return Err(Failure::Config(format!("{what} must be longer than zero")));
    }
    Ok(duration)
}

fn output_path(text: &str) -> Result<PathBuf, Failure> {
    let path = PathBuf::from(text);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Err(Failure::Config(format!(
            "--output (ENTITLE_OUTPUT) {text} names no file"
        )));
    }
    if !parent.is_dir() {
        return Err(Failure::Config(format!(
            "--output (ENTITLE_OUTPUT) folder {} does not exist; mount it (e.g. an emptyDir) or create it first",
            parent.display()
        )));
    }
    Ok(path)
}

fn endpoint_url(text: &str) -> Result<String, Failure> {
    if !(text.starts_with("https://") || text.starts_with("http://")) {
        return Err(usage_msg(&format!(
            "--endpoint-url (AWS_ENDPOINT_URL_MARKETPLACE_METERING) is `{text}`, expected an http:// or https:// URL"
        )));
    }
    Ok(text.to_owned())
}

pub const HELP: &str = "\
entitle: AWS Marketplace entitlement check and PID 1 for paid container products

Usage:
  entitle check  [OPTIONS]                  register with AWS Marketplace, verify, exit
  entitle run    [OPTIONS] -- CMD [ARGS...] check, then run and supervise CMD as PID 1
  entitle verify [OPTIONS] --token FILE --nonce NONCE | --record FILE
                                            verify a token offline
  entitle seal   --product-code CODE --public-key-file KEY.pem ... --output PATH
                                            embed the vendor's trusted products and keys
  entitle inspect                           show what this binary is sealed for
  entitle install DIR                       copy this binary to DIR/entitle
  entitle help [COMMAND]
  entitle --version

Exit codes: 0 entitled, 64 usage, 70 internal, 75 transient failures until --timeout,
76 untrusted answer, 77 not entitled, 78 configuration or deployment error.
See `entitle help check` for the options.
";

pub const HELP_CHECK: &str = "\
entitle check: call AWS Marketplace RegisterUsage, verify the signed answer, exit 0 if entitled

Options (each also read from the environment variable shown; the flag wins):
  --product-code CODE         ENTITLE_PRODUCT_CODE         product code (required)
  --public-key-version N      ENTITLE_PUBLIC_KEY_VERSION   key version, default 1
  --public-key-file FILE      ENTITLE_PUBLIC_KEY_FILE      product RSA public key, PEM
  --public-key PEM            ENTITLE_PUBLIC_KEY           the same PEM, inline
  --timeout DURATION          ENTITLE_TIMEOUT              total time incl. retries, default 30m
  --attempt-timeout DURATION  ENTITLE_ATTEMPT_TIMEOUT      one attempt's limit, default 10s
  --output FILE               ENTITLE_OUTPUT               write the entitlement record (JSON)
  --endpoint-url URL          AWS_ENDPOINT_URL_MARKETPLACE_METERING (or AWS_ENDPOINT_URL)
  --log-format text|json      ENTITLE_LOG_FORMAT           default text, on stderr
  --log-level LEVEL|FILTER    ENTITLE_LOG                  default info

Region and credentials come from the AWS default chain: AWS_REGION, the ECS task role,
EKS IRSA (web identity), profiles. The role needs aws-marketplace:RegisterUsage.
";

pub const HELP_VERIFY: &str = "\
entitle verify: check a RegisterUsage token offline (exit 0 valid, 76 not valid)

  --token FILE        ENTITLE_TOKEN_FILE  the JWT (`-` reads standard input); without it,
                                          ENTITLE_TOKEN (set by `entitle run`) is used
  --nonce NONCE       ENTITLE_NONCE       the nonce sent with the request
  --record FILE       ENTITLE_RECORD      a record written by `entitle check --output`
  plus --product-code, --public-key-version, --public-key-file, --public-key,
  --log-format, --log-level as for `entitle check`.
";

pub const HELP_RUN: &str = "\
entitle run: check entitlement, then run CMD as a supervised child (PID 1 duties included)

Usage: entitle run [OPTIONS] -- CMD [ARGS...]

  --start gate|concurrent   ENTITLE_START               gate (default): start CMD only once
                                                        entitled; concurrent: start at once,
                                                        stop it if entitlement fails
  --exec                    ENTITLE_EXEC=1              replace entitle with CMD after the check
  --kill-process-group      ENTITLE_KILL_PROCESS_GROUP=1  signal CMD's whole process group
  --grace-period DURATION   ENTITLE_GRACE_PERIOD        SIGKILL this long after a stop signal
  plus every option of `entitle check`.

CMD gets ENTITLE_TOKEN, ENTITLE_NONCE and ENTITLE_PRODUCT_CODE (gate and --exec modes).
Exit code: CMD's, or 128+signal; 126/127 when CMD cannot be run; else as `entitle check`.
";

pub const HELP_INSTALL: &str = "\
entitle install DIR: copy this binary (sealed or not) to DIR/entitle, mode 0755

For an init container that puts entitle into an emptyDir shared with an application image
that does not contain it (a FROM scratch image has no cp). Exit 0, or 78 if DIR is not writable.
";

pub const HELP_SEAL: &str = "\
entitle seal: write a copy of this binary that trusts only the given products and keys

Usage:
  entitle seal --product-code CODE --public-key-file KEY.pem [--public-key-version N]
               [--product-code CODE2 --public-key-file KEY2.pem ...]
               [--default-timeout DURATION] --output PATH
  entitle inspect        show whether this binary is sealed, for which products and keys

A sealed binary needs no product or key options; with several products ENTITLE_PRODUCT_CODE
chooses one. Runtime key options and unsealed product codes are refused (exit 78).
No Rust toolchain is needed: run it in a Dockerfile build stage.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::test_keys;
    use std::collections::HashMap;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn parse_with(list: &[&str], env: &[(&str, &str)]) -> Result<Command, Failure> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args(list), &move |k| env.get(k).cloned())
    }

    fn check_options(list: &[&str], env: &[(&str, &str)]) -> Options {
        match parse_with(list, env) {
            Ok(Command::Check(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    fn no_files(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn flags_win_over_environment() {
        let o = check_options(
            &["check", "--product-code", "flag-code", "--timeout=90s"],
            &[
                ("ENTITLE_PRODUCT_CODE", "env-code"),
                ("ENTITLE_TIMEOUT", "5s"),
                ("ENTITLE_OUTPUT", "/tmp/r.json"),
            ],
        );
        assert_eq!(o.product_code.as_deref(), Some("flag-code"));
        assert_eq!(o.timeout.as_deref(), Some("90s"));
        assert_eq!(o.output.as_deref(), Some("/tmp/r.json"));
    }

    #[test]
    fn a_key_flag_beats_either_key_variable() {
        let o = check_options(
            &["check", "--public-key", "PEM"],
            &[("ENTITLE_PUBLIC_KEY_FILE", "/k.pem")],
        );
        assert_eq!(
            (o.public_key_file, o.public_key.as_deref()),
            (None, Some("PEM"))
        );
    }

    #[test]
    fn usage_errors_are_64() {
        for list in [
            vec![],
            vec!["frobnicate"],
            vec!["check", "--bogus"],
            vec!["check", "--product-code"],
            vec!["check", "extra"],
            vec!["check", "--token", "x"],
            vec!["check", "--exec"],
            vec!["check", "--timeout", "1", "--timeout", "2"],
            vec!["run"],
            vec!["run", "--start", "later", "--", "true"],
            vec!["run", "--grace-period", "soon", "--", "true"],
            vec!["help", "frobnicate"],
        ] {
            let result = parse_with(&list, &[]);
            assert!(
                matches!(result, Err(Failure::Usage(_))),
                "{list:?}: {result:?}"
            );
        }
    }

    #[test]
    fn seal_options_group_by_product_code() {
        let cmd = parse_with(
            &[
                "seal",
                "--product-code",
                "a",
                "--public-key-file",
                "a.pem",
                "--product-code",
                "b",
                "--public-key-version",
                "2",
                "--public-key-file",
                "b.pem",
                "--output",
                "out",
            ],
            &[],
        );
        let Ok(Command::Seal(request)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            request.entries,
            vec![
                ("a".to_owned(), None, Some("a.pem".to_owned())),
                (
                    "b".to_owned(),
                    Some("2".to_owned()),
                    Some("b.pem".to_owned())
                ),
            ]
        );
        assert_eq!(request.output.as_deref(), Some("out"));
        for bad in [
            vec![
                "seal",
                "--public-key-file",
                "a.pem",
                "--product-code",
                "a",
                "--output",
                "o",
            ],
            vec![
                "seal",
                "--product-code",
                "a",
                "--public-key-file",
                "a",
                "--public-key-file",
                "b",
                "--output",
                "o",
            ],
            vec!["seal", "--product-code", "a", "--public-key-file", "a.pem"],
            vec!["seal", "--output", "o"],
            vec!["inspect", "extra"],
            vec!["install"],
            vec!["install", "a", "b"],
        ] {
            assert!(
                matches!(parse_with(&bad, &[]), Err(Failure::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(
            parse_with(&["--help"], &[]),
            Ok(Command::Help(HELP))
        ));
        assert!(matches!(
            parse_with(&["help", "run"], &[]),
            Ok(Command::Help(HELP_RUN))
        ));
        assert!(matches!(
            parse_with(&["check", "-h"], &[]),
            Ok(Command::Help(HELP_CHECK))
        ));
        assert!(matches!(
            parse_with(&["--version"], &[]),
            Ok(Command::Version)
        ));
    }

    #[test]
    fn run_takes_the_command_after_the_options() {
        let cmd = parse_with(
            &[
                "run",
                "--grace-period",
                "3s",
                "--kill-process-group",
                "--",
                "/bin/sh",
                "-c",
                "--x",
            ],
            &[("ENTITLE_START", "concurrent")],
        );
        let Ok(Command::Run(_, run)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(run.command, args(&["/bin/sh", "-c", "--x"]));
        assert_eq!(run.grace_period, Some(Duration::from_secs(3)));
        assert!(run.kill_process_group && !run.exec);
        assert!(matches!(run.start, StartPolicy::Concurrent));
    }

    #[test]
    fn switches_come_from_the_environment_too() {
        let cmd = parse_with(&["run", "--", "true"], &[("ENTITLE_EXEC", "1")]);
        let Ok(Command::Run(_, run)) = cmd else {
            panic!("{cmd:?}")
        };
        assert!(run.exec);
    }

    #[test]
    fn product_codes_are_checked() {
        assert!(product_code(Some("a-Z0/=:_.@9")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("has space"),
            Some("ünï"),
            Some(&*"a".repeat(256)),
        ] {
            let result = product_code(bad);
            assert!(matches!(result, Err(Failure::Config(_))), "{bad:?}");
        }
    }

    #[test]
    fn empty_values_count_as_unset() {
        let o = check_options(&["check"], &[("ENTITLE_PRODUCT_CODE", "")]);
        assert_eq!(o.product_code, None);
    }

    #[test]
    fn key_versions_parse_and_range_check() {
        assert_eq!(public_key_version(None).unwrap(), 1);
        assert_eq!(public_key_version(Some("7")).unwrap(), 7);
        assert!(matches!(
            public_key_version(Some("x")),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            public_key_version(Some("-1")),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            public_key_version(Some("0")),
            Err(Failure::Config(_))
        ));
        assert!(matches!(
            public_key_version(Some("2147483648")),
            Err(Failure::Config(_))
        ));
    }

    #[test]
    fn check_settings_validate_everything_before_any_request() {
        let base = |extra: &[(&str, &str)]| {
            let mut env = vec![
                ("ENTITLE_PRODUCT_CODE", "prod"),
                ("ENTITLE_PUBLIC_KEY", test_keys::PUBLIC_2048_SPKI),
            ];
            env.extend_from_slice(extra);
            check_settings(&check_options(&["check"], &env), &no_files, None)
        };
        let ok = base(&[]).unwrap();
        assert_eq!(
            (ok.timeout, ok.attempt_timeout),
            (DEFAULT_TIMEOUT, DEFAULT_ATTEMPT_TIMEOUT)
        );
        assert!(matches!(
            base(&[("ENTITLE_TIMEOUT", "0s")]),
            Err(Failure::Config(_))
        ));
        assert!(matches!(
            base(&[("ENTITLE_TIMEOUT", "never")]),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            base(&[("ENTITLE_OUTPUT", "/no/such/dir/r.json")]),
            Err(Failure::Config(_))
        ));
        assert!(matches!(
            base(&[("ENTITLE_PUBLIC_KEY", "junk")]),
            Err(Failure::Config(_))
        ));
        assert!(matches!(
            base(&[("AWS_ENDPOINT_URL_MARKETPLACE_METERING", "ftp://x")]),
            Err(Failure::Usage(_))
        ));
        let missing_file = check_settings(
            &check_options(
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
    fn verify_takes_the_token_from_entitle_token_when_no_source_flag() {
        let cmd = parse_with(
            &["verify"],
            &[("ENTITLE_TOKEN", "a.b.c"), ("ENTITLE_NONCE", "n")],
        );
        let Ok(Command::Verify(o)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            (o.token.as_deref(), o.nonce.as_deref()),
            (Some("a.b.c"), Some("n"))
        );
        let cmd = parse_with(
            &["verify", "--record", "r.json"],
            &[("ENTITLE_TOKEN", "a.b.c")],
        );
        let Ok(Command::Verify(o)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!((o.token, o.record.as_deref()), (None, Some("r.json")));
    }

    #[test]
    fn log_settings_default_to_info_text() {
        let s = log_settings(&Options::default()).unwrap();
        assert_eq!(
            s,
            LogSettings {
                json: false,
                filter: "entitle=info,warn".into()
            }
        );
        let o = Options {
            log_format: Some("xml".into()),
            ..Options::default()
        };
        assert!(matches!(log_settings(&o), Err(Failure::Usage(_))));
    }
}
