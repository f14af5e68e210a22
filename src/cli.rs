//! The command line: which commands and options exist, their environment variables and help
//! text (one table, so the help can never disagree with the parser), and the syntax of every
//! value. Everything here is a usage error (64) when wrong; whether a value that parses is also
//! *right* (a key of the right size, a folder that exists) is `config`'s job, afterwards, so
//! usage errors always come first.
//!
//! Every option has a flag and an environment variable; the flag wins. A variable that is set
//! but empty counts as unset.

use crate::exit::Failure;
use crate::logging::LogSettings;
use crate::relay::Listen;
use crate::supervise::{RunOptions, StartPolicy};
use crate::transport::ProxyVariables;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

/// Longest duration any option takes: more is surely a typo, and would overflow clock maths.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// What the user asked for.
#[derive(Debug)]
pub enum Command {
    Help(String),
    Version,
    Check(Options),
    Verify(Options),
    Run(Options, RunOptions),
    Seal(SealRequest),
    Inspect,
    /// Copy this binary into a folder (an init container filling an `emptyDir`).
    Install(PathBuf),
    /// The metering relay without a workload (a sidecar).
    Meter(Options),
    /// Report usage to the relay.
    Usage(UsageReport),
    /// Probe the relay (`GET /v1/health`), for containers without an HTTP client.
    Health(String),
}

/// `entitle usage DIMENSION QUANTITY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    pub dimension: String,
    pub quantity: u64,
    /// `http://HOST:PORT` or `unix:/PATH`.
    pub url: String,
}

/// The commands, in the order `entitle help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Check,
    Run,
    Meter,
    Usage,
    Health,
    Verify,
    Seal,
    Inspect,
    Install,
    Help,
}

const COMMANDS: &[(Name, &str, &str)] = &[
    (
        Name::Check,
        "check",
        "register with AWS Marketplace (and dry-run metering), verify, exit",
    ),
    (
        Name::Run,
        "run",
        "check, then run and supervise CMD as PID 1",
    ),
    (
        Name::Meter,
        "meter",
        "the metering relay alone, for a sidecar container",
    ),
    (
        Name::Usage,
        "usage",
        "report usage to the relay (for shell-based products)",
    ),
    (
        Name::Health,
        "health",
        "exit 0 when the relay is up and checked (a container probe)",
    ),
    (Name::Verify, "verify", "verify a token or record offline"),
    (
        Name::Seal,
        "seal",
        "write a copy of this binary that trusts only the given products",
    ),
    (
        Name::Inspect,
        "inspect",
        "show what this binary is sealed for",
    ),
    (Name::Install, "install", "copy this binary to DIR/entitle"),
    (Name::Help, "help", "show the help of a command"),
];

/// One option: flag, environment variable, value placeholder, the commands that take it, help.
struct Spec {
    flag: &'static str,
    env: &'static str,
    value: &'static str,
    commands: &'static [Name],
    help: &'static str,
}

const REGISTERING: &[Name] = &[Name::Check, Name::Run, Name::Meter];
const PRODUCT: &[Name] = &[Name::Check, Name::Run, Name::Meter, Name::Verify];
const METERING: &[Name] = &[Name::Run, Name::Meter];

const SPECS: &[Spec] = &[
    Spec { flag: "product-code", env: "ENTITLE_PRODUCT_CODE", value: "CODE", commands: PRODUCT,
        help: "the product code from the AWS Marketplace Management Portal (required unless sealed)" },
    Spec { flag: "public-key-version", env: "ENTITLE_PUBLIC_KEY_VERSION", value: "N", commands: PRODUCT,
        help: "the version AWS gave with the key, default 1" },
    Spec { flag: "public-key-file", env: "ENTITLE_PUBLIC_KEY_FILE", value: "FILE", commands: PRODUCT,
        help: "the product's RSA public key, PEM (SPKI or PKCS#1)" },
    Spec { flag: "public-key", env: "ENTITLE_PUBLIC_KEY", value: "PEM", commands: PRODUCT,
        help: "the same PEM inline (literal \\n accepted); give one key option only" },
    Spec { flag: "timeout", env: "ENTITLE_TIMEOUT", value: "DURATION", commands: REGISTERING,
        help: "total time for registration including retries, default 30m" },
    Spec { flag: "attempt-timeout", env: "ENTITLE_ATTEMPT_TIMEOUT", value: "DURATION", commands: REGISTERING,
        help: "limit for one attempt, default 10s" },
    Spec { flag: "output", env: "ENTITLE_OUTPUT", value: "FILE", commands: &[Name::Check, Name::Run],
        help: "write the entitlement record (JSON) here, atomically, after verification" },
    Spec { flag: "endpoint-url", env: "AWS_ENDPOINT_URL_MARKETPLACE_METERING", value: "URL", commands: REGISTERING,
        help: "another Metering endpoint (entitle-mock); AWS_ENDPOINT_URL works too" },
    Spec { flag: "meter", env: "ENTITLE_METER_DIMENSIONS", value: "DIM[,DIM...]", commands: &[Name::Check, Name::Run, Name::Meter],
        help: "meter these pricing dimensions (MeterUsage); check does a dry run of each" },
    Spec { flag: "meter-listen", env: "ENTITLE_METER_LISTEN", value: "ADDR:PORT|unix:/PATH", commands: METERING,
        help: "where the relay listens for usage reports, default 127.0.0.1:8787" },
    Spec { flag: "meter-state", env: "ENTITLE_METER_STATE", value: "DIR", commands: METERING,
        help: "folder for the usage journal (an emptyDir or task volume); without it, memory only" },
    Spec { flag: "meter-spread", env: "ENTITLE_METER_SPREAD", value: "DURATION", commands: METERING,
        help: "send each hour's records at a random offset within this, default 10m" },
    Spec { flag: "meter-flush-timeout", env: "ENTITLE_METER_FLUSH_TIMEOUT", value: "DURATION", commands: METERING,
        help: "on stop, time to send what is open, default 20s" },
    Spec { flag: "meter-period", env: "ENTITLE_METER_PERIOD", value: "DURATION", commands: METERING,
        help: "the metering hour, default 1h; shorter only against a test endpoint (entitle-mock)" },
    Spec { flag: "meter-url", env: "ENTITLE_METER_URL", value: "URL", commands: &[Name::Usage, Name::Health],
        help: "the relay, default http://127.0.0.1:8787 (set by entitle run)" },
    Spec { flag: "token", env: "ENTITLE_TOKEN_FILE", value: "FILE", commands: &[Name::Verify],
        help: "the JWT to check (`-` is standard input); without it, ENTITLE_TOKEN" },
    Spec { flag: "nonce", env: crate::handoff::ENV_NONCE, value: "NONCE", commands: &[Name::Verify],
        help: "the nonce sent with the request" },
    Spec { flag: "record", env: "ENTITLE_RECORD", value: "FILE", commands: &[Name::Verify],
        help: "a record written by `entitle check --output`" },
    Spec { flag: "start", env: "ENTITLE_START", value: "gate|concurrent", commands: &[Name::Run],
        help: "gate (default): start CMD once entitled; concurrent: start at once, stop it if not" },
    Spec { flag: "grace-period", env: "ENTITLE_GRACE_PERIOD", value: "DURATION", commands: &[Name::Run],
        help: "SIGKILL CMD this long after a forwarded TERM/INT/QUIT" },
    Spec { flag: "exec", env: "ENTITLE_EXEC", value: "", commands: &[Name::Run],
        help: "replace entitle with CMD after the check (=1 in the variable)" },
    Spec { flag: "kill-process-group", env: "ENTITLE_KILL_PROCESS_GROUP", value: "", commands: &[Name::Run],
        help: "signal CMD's whole process group (=1 in the variable)" },
    Spec { flag: "log-format", env: "ENTITLE_LOG_FORMAT", value: "text|json", commands: PRODUCT,
        help: "log line format on stderr, default text" },
    Spec { flag: "log-level", env: "ENTITLE_LOG", value: "LEVEL|FILTER", commands: PRODUCT,
        help: "error, warn, info (default), debug, trace, off, or a filter like entitle=debug,aws_config=info" },
];

/// Endpoint variables the AWS SDK reads by itself (the STS one for EKS IRSA credentials).
const SDK_ENDPOINT_VARIABLES: &[&str] = &[
    "AWS_ENDPOINT_URL_MARKETPLACE_METERING",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
];

/// The metering options as given.
#[derive(Debug, Clone, Default)]
pub struct MeterOptions {
    pub dimensions: Option<Vec<String>>,
    pub listen: Option<Listen>,
    pub state: Option<PathBuf>,
    pub spread: Option<Duration>,
    pub flush_timeout: Option<Duration>,
    pub period: Option<Duration>,
    /// The Metering endpoint is not AWS's (`--endpoint-url` or `AWS_ENDPOINT_URL*`).
    pub endpoint_overridden: bool,
}

fn meter_options(given: &Given) -> Result<MeterOptions, Failure> {
    Ok(MeterOptions {
        dimensions: given.value("meter")?.map(|list| dimension_list(&list)),
        listen: given
            .value("meter-listen")?
            .map(|text| {
                Listen::parse(&text)
                    .map_err(|e| usage_msg(&format!("{}: {e}", describe("meter-listen"))))
            })
            .transpose()?,
        state: given.value("meter-state")?.map(PathBuf::from),
        spread: optional_duration(given, "meter-spread")?,
        flush_timeout: optional_duration(given, "meter-flush-timeout")?,
        period: optional_duration(given, "meter-period")?,
        endpoint_overridden: given.value("endpoint-url")?.is_some()
            || env_text(given.env, "AWS_ENDPOINT_URL")?.is_some(),
    })
}

/// `scans, gb` → `["scans", "gb"]`; checking the names is configuration's job.
pub fn dimension_list(text: &str) -> Vec<String> {
    text.split(',').map(|d| d.trim().to_owned()).collect()
}

/// `entitle usage DIMENSION QUANTITY` and `entitle health`, from their arguments and options.
fn relay_client(given: &Given, arguments: Vec<OsString>) -> Result<Command, Failure> {
    let arguments = arguments
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|_| usage_msg("arguments must be valid UTF-8"))
        })
        .collect::<Result<Vec<String>, Failure>>()?;
    let url = given
        .value("meter-url")?
        .unwrap_or_else(|| format!("http://{}", crate::relay::DEFAULT_LISTEN));
    if given.command == Name::Health {
        return match arguments.first() {
            None => Ok(Command::Health(url)),
            Some(extra) => Err(usage_msg(&format!(
                "`entitle health` takes no argument, got `{extra}`"
            ))),
        };
    }
    let [dimension, quantity] = <[String; 2]>::try_from(arguments).map_err(|_| {
        usage_msg("`entitle usage` needs DIMENSION and QUANTITY, e.g. `entitle usage scans 3`")
    })?;
    let quantity = quantity
        .parse::<u64>()
        .ok()
        .filter(|q| *q <= crate::ledger::MAX_QUANTITY)
        .ok_or_else(|| {
            usage_msg(&format!(
                "QUANTITY is `{quantity}`, expected a whole number from 0 to {}",
                crate::ledger::MAX_QUANTITY
            ))
        })?;
    Ok(Command::Usage(UsageReport {
        dimension,
        quantity,
        url,
    }))
}

/// Where the product's public key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(String),
    Inline(String),
}

/// Where `entitle verify` takes its token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenInput {
    /// A file (`-` is standard input) and the nonce, if given.
    File(String, Option<String>),
    /// The token itself, from `ENTITLE_TOKEN` (what `entitle run` gives the workload).
    Inline(String, Option<String>),
    Record(PathBuf),
    Missing(Option<String>),
}

/// Options of check, verify and run, parsed but not yet checked against the world.
#[derive(Debug, Clone)]
pub struct Options {
    pub product_code: Option<String>,
    pub meter: MeterOptions,
    pub public_key_version: Option<u64>,
    pub public_key: Option<KeySource>,
    pub timeout: Option<Duration>,
    pub attempt_timeout: Option<Duration>,
    pub output: Option<String>,
    pub endpoint_url: Option<String>,
    pub token: TokenInput,
    pub log: LogSettings,
    /// An AWS endpoint variable that is set but blank: the SDK would panic on it.
    pub blank_endpoint_variable: Option<&'static str>,
    /// `SSL_CERT_FILE`: extra trusted CAs.
    pub ssl_cert_file: Option<String>,
    pub proxies: ProxyVariables,
}

/// `entitle seal`: which products to trust, read from the vendor's files at build time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealRequest {
    pub entries: Vec<SealEntry>,
    pub default_timeout: Option<String>,
    pub output: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealEntry {
    pub product_code: String,
    pub public_key_version: Option<u64>,
    pub public_key_file: Option<String>,
    pub meter_dimensions: Option<Vec<String>>,
}

/// Reads one environment variable (`None` when unset).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Parses `entitle ARGS` (without the program name), reading missing options from `env`.
pub fn parse(args: Vec<OsString>, env: Env) -> Result<Command, Failure> {
    let mut parser = lexopt::Parser::from_args(args);
    let name = match parser.next().map_err(usage)? {
        None => {
            return Err(usage_msg(
                "no command given; try `entitle check` or `entitle --help`",
            ))
        }
        Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) => {
            return Ok(Command::Help(overview()))
        }
        Some(lexopt::Arg::Long("version")) | Some(lexopt::Arg::Short('V')) => {
            return Ok(Command::Version)
        }
        Some(lexopt::Arg::Value(name)) => command_name(&name)?,
        Some(other) => return Err(usage(other.unexpected())),
    };
    match name {
        Name::Help => help_for(parser.next().map_err(usage)?),
        Name::Check | Name::Verify | Name::Run | Name::Meter | Name::Usage | Name::Health => {
            parse_options(&mut parser, name, env)
        }
        Name::Seal => parse_seal(&mut parser),
        Name::Inspect => match parser.next().map_err(usage)? {
            None => Ok(Command::Inspect),
            Some(lexopt::Arg::Long("help") | lexopt::Arg::Short('h')) => Ok(help(Name::Inspect)),
            Some(other) => Err(usage(other.unexpected())),
        },
        Name::Install => parse_install(&mut parser),
    }
}

fn command_name(text: &OsStr) -> Result<Name, Failure> {
    let text = text.to_string_lossy();
    COMMANDS
        .iter()
        .find(|(_, name, _)| *name == text)
        .map(|(command, _, _)| *command)
        .ok_or_else(|| {
            usage_msg(&format!(
                "unknown command `{text}`; the commands are {}",
                command_list()
            ))
        })
}

fn command_list() -> String {
    let names: Vec<&str> = COMMANDS.iter().map(|(_, name, _)| *name).collect();
    names.join(", ")
}

fn name_of(command: Name) -> &'static str {
    COMMANDS
        .iter()
        .find(|(c, _, _)| *c == command)
        .map_or("", |(_, name, _)| name)
}

fn help_for(arg: Option<lexopt::Arg>) -> Result<Command, Failure> {
    match arg {
        None => Ok(Command::Help(overview())),
        Some(lexopt::Arg::Value(name)) => command_name(&name).map(help).map_err(|_| {
            usage_msg(&format!(
                "no help for `{}`; the commands are {}",
                name.to_string_lossy(),
                command_list()
            ))
        }),
        Some(other) => Err(usage(other.unexpected())),
    }
}

fn help(command: Name) -> Command {
    Command::Help(help_text(command))
}

/// `entitle --help`.
pub fn overview() -> String {
    let mut text = String::from(
        "entitle: AWS Marketplace entitlement, metering and PID 1 for paid container products\n\nUsage:\n",
    );
    for (command, _, summary) in COMMANDS {
        text.push_str(&format!("  {}\n      {summary}\n", synopsis(*command)));
    }
    text.push_str(
        "  entitle --version\n\nExit codes: 0 entitled, 64 usage, 70 internal, 75 transient failures until --timeout,\n76 untrusted answer, 77 not entitled, 78 configuration or deployment error.\nSee `entitle help COMMAND` for a command's options.\n",
    );
    text
}

fn synopsis(command: Name) -> &'static str {
    match command {
        Name::Check => "entitle check [OPTIONS]",
        Name::Run => "entitle run [OPTIONS] -- CMD [ARGS...]",
        Name::Meter => "entitle meter [OPTIONS] --meter DIM[,DIM...]",
        Name::Usage => "entitle usage DIMENSION QUANTITY",
        Name::Health => "entitle health",
        Name::Verify => "entitle verify [OPTIONS] --token FILE --nonce N | --record FILE",
        Name::Seal => "entitle seal --product-code CODE [--public-key-file KEY] [--meter DIMS] ... --output PATH",
        Name::Inspect => "entitle inspect",
        Name::Install => "entitle install DIR",
        Name::Help => "entitle help [COMMAND]",
    }
}

/// The help of one command: what it does, its options from the table, its exit codes.
pub fn help_text(command: Name) -> String {
    let (about, notes) = about(command);
    let mut text = format!("{about}\n\nUsage: {}\n", synopsis(command));
    let specs: Vec<&Spec> = SPECS
        .iter()
        .filter(|s| s.commands.contains(&command))
        .collect();
    if !specs.is_empty() {
        text.push_str(
            "\nOptions (each also read from the environment variable shown; the flag wins):\n",
        );
        for spec in specs {
            let flag = format!("--{} {}", spec.flag, spec.value);
            text.push_str(&format!(
                "  {:<34} {}\n  {:<34}   {}\n",
                flag, spec.env, "", spec.help
            ));
        }
    }
    text.push('\n');
    text.push_str(notes);
    text
}

fn about(command: Name) -> (&'static str, &'static str) {
    match command {
        Name::Check => (
            "entitle check: call AWS Marketplace RegisterUsage, verify the signed answer, exit 0 if entitled",
            "Region and credentials come from the AWS default chain: AWS_REGION, the ECS task role,\nEKS IRSA (web identity), environment, profiles. The role needs aws-marketplace:RegisterUsage.\nExit codes: 0 entitled, 64 usage, 70 internal, 75 transient failures until --timeout,\n76 untrusted answer, 77 not entitled, 78 configuration or deployment error.\n",
        ),
        Name::Run => (
            "entitle run: check entitlement, then run CMD as a supervised child (PID 1 duties included)",
            "CMD gets ENTITLE_TOKEN, ENTITLE_NONCE and ENTITLE_PRODUCT_CODE (gate and --exec modes).\nExit code: CMD's, or 128+signal; 126/127 when CMD cannot be run; 128+n when stopped by\nsignal n before CMD started; otherwise as `entitle check`.\n",
        ),
        Name::Meter => (
            "entitle meter: the metering relay without a workload, for a sidecar container",
            "Checks with a MeterUsage dry run per dimension (and RegisterUsage when a key is given),\nthen accepts usage at --meter-listen (POST /v1/usage {\"dimension\":\"scans\",\"quantity\":3}),\nsends one record per dimension per hour, and on SIGTERM sends what is open and exits.\nExit codes: 0 stopped with everything sent, 75 stopped with usage left in the journal,\nelse as `entitle check`.\n",
        ),
        Name::Usage => (
            "entitle usage: report usage of one dimension to the relay (exit 0 once it is durable)",
            "Exit codes: 0 durable, 64 bad arguments, 78 unknown dimension, 75 relay unreachable or\nstopping (retry), 70 unexpected answer.\n",
        ),
        Name::Health => (
            "entitle health: probe the metering relay (GET /v1/health) from inside a container",
            "For an ECS health check or a Kubernetes exec probe of the relay's container (its image has\nno HTTP client): the relay can stay on 127.0.0.1.\nExit codes: 0 the relay is up and its start check passed, 75 unreachable, still checking or\nstopping, 64 bad arguments.\n",
        ),
        Name::Verify => (
            "entitle verify: check a RegisterUsage token offline, against the product's key and the nonce",
            "Exit codes: 0 valid, 64 usage, 76 the token is not valid for this product and nonce,\n78 configuration error (no key, unreadable file, no token given).\n",
        ),
        Name::Seal => (
            "entitle seal: write a copy of this binary that trusts only the given products and keys",
            "  --product-code CODE        a product to trust; the next options belong to it (repeatable)\n  --public-key-file FILE     its RSA public key, PEM (RegisterUsage)\n  --public-key-version N     its key version, default 1\n  --meter DIM[,DIM...]       its pricing dimensions (MeterUsage); the runtime list must match\n  --default-timeout DURATION the --timeout used when none is given at run time\n  --output PATH              where to write the sealed copy (mode 0755)\n\nA sealed binary needs no product or key options; with several products ENTITLE_PRODUCT_CODE\nchooses one. Runtime key options and unsealed product codes are refused (exit 78).\nNo Rust toolchain is needed: run it in a Dockerfile build stage.\nExit codes: 0 written, 64 usage, 78 unreadable key, bad product code, or already sealed.\n",
        ),
        Name::Inspect => (
            "entitle inspect: show whether this binary is sealed, for which products and keys",
            "Prints one line per sealed product: code, key version, RSA size and the SHA-256 of the key's\nSPKI DER (what `openssl pkey -pubin -outform DER | sha256sum` prints).\nExit codes: 0, 78 when the seal is damaged.\n",
        ),
        Name::Install => (
            "entitle install DIR: copy this binary (sealed or not) to DIR/entitle, mode 0755",
            "For an init container that puts entitle into an emptyDir shared with an application image\nthat does not contain it (a FROM scratch image has no cp).\nExit codes: 0, 64 usage, 78 DIR is not writable or /proc is not mounted.\n",
        ),
        Name::Help => (
            "entitle help: show the help of a command",
            "Commands: check, run, meter, usage, health, verify, seal, inspect, install, help.\n",
        ),
    }
}

/// Flags apply to the entry opened by the last --product-code, so several products can be sealed.
fn parse_seal(parser: &mut lexopt::Parser) -> Result<Command, Failure> {
    let mut request = SealRequest::default();
    while let Some(arg) = parser.next().map_err(usage)? {
        let name = match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(help(Name::Seal)),
            lexopt::Arg::Long(name) => name.to_owned(),
            other => return Err(usage(other.unexpected())),
        };
        let value = utf8_value(parser, &name)?;
        let twice = || usage_msg(&format!("--{name} is given twice for one product"));
        match (name.as_str(), request.entries.last_mut()) {
            ("product-code", _) => request.entries.push(SealEntry {
                product_code: value,
                ..SealEntry::default()
            }),
            ("public-key-version", Some(entry)) if entry.public_key_version.is_none() => {
                entry.public_key_version = Some(whole_number(&format!("--{name}"), &value)?)
            }
            ("public-key-file", Some(entry)) if entry.public_key_file.is_none() => {
                entry.public_key_file = Some(value)
            }
            ("meter", Some(entry)) if entry.meter_dimensions.is_none() => {
                entry.meter_dimensions = Some(dimension_list(&value))
            }
            ("public-key-version" | "public-key-file" | "meter", Some(_)) => return Err(twice()),
            ("public-key-version" | "public-key-file" | "meter", None) => {
                return Err(usage_msg(&format!(
                    "--{name} must follow the --product-code it belongs to"
                )))
            }
            ("default-timeout", _) if request.default_timeout.is_none() => {
                duration("--default-timeout", &value)?;
                request.default_timeout = Some(value)
            }
            ("output", _) if request.output.is_none() => request.output = Some(value),
            ("default-timeout" | "output", _) => {
                return Err(usage_msg(&format!("--{name} is given twice")))
            }
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
    if let Some(entry) = request
        .entries
        .iter()
        .find(|e| e.public_key_file.is_none() && e.meter_dimensions.is_none())
    {
        return Err(usage_msg(&format!(
            "--product-code {} needs its --public-key-file (RegisterUsage) or --meter DIM,... (MeterUsage), or both",
            entry.product_code
        )));
    }
    Ok(Command::Seal(request))
}

fn parse_install(parser: &mut lexopt::Parser) -> Result<Command, Failure> {
    let folder = match parser.next().map_err(usage)? {
        Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) => {
            return Ok(help(Name::Install))
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

/// Flags as given, then each option's value: the flag's, else its variable's.
struct Given<'a> {
    command: Name,
    flags: Vec<(&'static str, Option<String>)>,
    env: Env<'a>,
}

impl Given<'_> {
    fn flag_given(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| *f == flag)
    }

    fn flag_value(&self, flag: &str) -> Option<String> {
        self.flags
            .iter()
            .find(|(f, _)| *f == flag)
            .and_then(|(_, v)| v.clone())
    }

    fn env_value(&self, flag: &str) -> Result<Option<String>, Failure> {
        let spec = spec(flag);
        if !spec.commands.contains(&self.command) {
            return Ok(None);
        }
        env_text(self.env, spec.env)
    }

    /// The flag's value, else the variable's.
    fn value(&self, flag: &str) -> Result<Option<String>, Failure> {
        match self.flag_value(flag) {
            Some(value) => Ok(Some(value)),
            None => self.env_value(flag),
        }
    }

    /// A switch: given as a flag, or its variable is 1/true/yes.
    fn switch(&self, flag: &str) -> Result<bool, Failure> {
        if self.flag_given(flag) {
            return Ok(true);
        }
        match self.env_value(flag)?.as_deref() {
            None | Some("0" | "false" | "no") => Ok(false),
            Some("1" | "true" | "yes") => Ok(true),
            Some(other) => Err(usage_msg(&format!(
                "{} is `{other}`, expected 1 or 0",
                spec(flag).env
            ))),
        }
    }
}

/// A variable's text: `None` when unset or empty, a usage error when it is not UTF-8.
fn env_text(env: Env, name: &str) -> Result<Option<String>, Failure> {
    match env(name) {
        None => Ok(None),
        Some(value) => match value.into_string() {
            Ok(text) if text.is_empty() => Ok(None),
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(usage_msg(&format!(
                "{name} is not valid UTF-8; set it to plain text"
            ))),
        },
    }
}

fn spec(flag: &str) -> &'static Spec {
    SPECS.iter().find(|s| s.flag == flag).unwrap_or(&SPECS[0])
}

/// `--flag (VARIABLE)`, for messages.
fn describe(flag: &str) -> String {
    format!("--{flag} ({})", spec(flag).env)
}

fn parse_options(parser: &mut lexopt::Parser, command: Name, env: Env) -> Result<Command, Failure> {
    let mut given = Given {
        command,
        flags: Vec::new(),
        env,
    };
    // Run's command, or the arguments of usage and health.
    let mut arguments: Vec<OsString> = Vec::new();
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(help(command)),
            lexopt::Arg::Long(name) => {
                let spec = SPECS
                    .iter()
                    .find(|s| s.flag == name && s.commands.contains(&command))
                    .ok_or_else(|| unknown_flag(name, command))?;
                if given.flag_given(spec.flag) {
                    return Err(usage_msg(&format!("--{} is given twice", spec.flag)));
                }
                let value = if spec.value.is_empty() {
                    None
                } else {
                    Some(utf8_value(parser, spec.flag)?)
                };
                given.flags.push((spec.flag, value));
            }
            lexopt::Arg::Value(value) if command == Name::Run => {
                arguments.push(value);
                arguments.extend(parser.raw_args().map_err(usage)?);
            }
            lexopt::Arg::Value(value) if matches!(command, Name::Usage | Name::Health) => {
                arguments.push(value)
            }
            other => return Err(usage(other.unexpected())),
        }
    }
    if matches!(command, Name::Usage | Name::Health) {
        return relay_client(&given, arguments);
    }
    let options = options(&given)?;
    Ok(match command {
        Name::Run => Command::Run(options, run_options(&given, arguments)?),
        Name::Verify => Command::Verify(options),
        Name::Meter => Command::Meter(options),
        _ => Command::Check(options),
    })
}

fn options(given: &Given) -> Result<Options, Failure> {
    Ok(Options {
        log: log_settings(
            given.value("log-format")?.as_deref(),
            given.value("log-level")?.as_deref(),
        )?,
        product_code: given.value("product-code")?,
        meter: meter_options(given)?,
        public_key_version: given
            .value("public-key-version")?
            .map(|v| whole_number(&describe("public-key-version"), &v))
            .transpose()?,
        public_key: key_source(given)?,
        timeout: optional_duration(given, "timeout")?,
        attempt_timeout: optional_duration(given, "attempt-timeout")?,
        output: given.value("output")?,
        endpoint_url: given
            .value("endpoint-url")?
            .map(|url| endpoint_url(&url))
            .transpose()?,
        token: token_input(given)?,
        blank_endpoint_variable: blank_endpoint_variable(given.env),
        ssl_cert_file: env_text(given.env, "SSL_CERT_FILE")?,
        proxies: proxy_variables(given.env)?,
    })
}

/// The standard proxy variables, lower case first (curl reads only `http_proxy` in lower case;
/// others read both).
fn proxy_variables(env: Env) -> Result<ProxyVariables, Failure> {
    let first = |names: [&'static str; 2]| -> Result<Option<(&'static str, String)>, Failure> {
        for name in names {
            if let Some(value) = env_text(env, name)? {
                return Ok(Some((name, value)));
            }
        }
        Ok(None)
    };
    Ok(ProxyVariables {
        https: first(["https_proxy", "HTTPS_PROXY"])?,
        http: first(["http_proxy", "HTTP_PROXY"])?,
        all: first(["all_proxy", "ALL_PROXY"])?,
        no_proxy: first(["no_proxy", "NO_PROXY"])?.map(|(_, list)| list),
    })
}

/// One key option: a flag beats any variable; two flags, or two variables, are ambiguous.
fn key_source(given: &Given) -> Result<Option<KeySource>, Failure> {
    let both = |what: &str| {
        usage_msg(&format!(
            "{what}; give the key one way only (a flag beats a variable)"
        ))
    };
    match (
        given.flag_value("public-key-file"),
        given.flag_value("public-key"),
    ) {
        (Some(_), Some(_)) => {
            return Err(both("both --public-key-file and --public-key are given"))
        }
        (Some(file), None) => return Ok(Some(KeySource::File(file))),
        (None, Some(pem)) => return Ok(Some(KeySource::Inline(pem))),
        (None, None) => {}
    }
    match (
        given.env_value("public-key-file")?,
        given.env_value("public-key")?,
    ) {
        (Some(_), Some(_)) => Err(both(
            "both ENTITLE_PUBLIC_KEY_FILE and ENTITLE_PUBLIC_KEY are set",
        )),
        (Some(file), None) => Ok(Some(KeySource::File(file))),
        (None, Some(pem)) => Ok(Some(KeySource::Inline(pem))),
        (None, None) => Ok(None),
    }
}

/// `entitle verify`'s token: --token or --record (flags beat variables); without either, the
/// token itself from ENTITLE_TOKEN, which `entitle run` gives the workload.
fn token_input(given: &Given) -> Result<TokenInput, Failure> {
    if given.command != Name::Verify {
        return Ok(TokenInput::Missing(None));
    }
    let nonce = given.value("nonce")?;
    match (given.flag_value("token"), given.flag_value("record")) {
        (Some(_), Some(_)) => return Err(usage_msg("give --token or --record, not both")),
        (Some(file), None) => return Ok(TokenInput::File(file, nonce)),
        (None, Some(record)) => return Ok(TokenInput::Record(record.into())),
        (None, None) => {}
    }
    if let Some(record) = given.env_value("record")? {
        return Ok(TokenInput::Record(record.into()));
    }
    if let Some(file) = given.env_value("token")? {
        return Ok(TokenInput::File(file, nonce));
    }
    match env_text(given.env, crate::handoff::ENV_TOKEN)? {
        Some(token) => Ok(TokenInput::Inline(token, nonce)),
        None => Ok(TokenInput::Missing(nonce)),
    }
}

fn blank_endpoint_variable(env: Env) -> Option<&'static str> {
    SDK_ENDPOINT_VARIABLES
        .iter()
        .find(|var| env(var).is_some_and(|v| v.to_str().is_some_and(|v| v.trim().is_empty())))
        .copied()
}

fn run_options(given: &Given, command: Vec<OsString>) -> Result<RunOptions, Failure> {
    if command.is_empty() {
        return Err(usage_msg(
            "no command to run; give it after `--`, e.g. `entitle run -- /app/server`",
        ));
    }
    let start = match given.value("start")?.as_deref() {
        None | Some("gate") => StartPolicy::Gate,
        Some("concurrent") => StartPolicy::Concurrent,
        Some(other) => {
            return Err(usage_msg(&format!(
                "{} is `{other}`, expected gate or concurrent",
                describe("start")
            )))
        }
    };
    let exec = given.switch("exec")?;
    if exec && start == StartPolicy::Concurrent {
        return Err(usage_msg(
            "--exec cannot be combined with --start concurrent",
        ));
    }
    Ok(RunOptions {
        start,
        exec,
        kill_process_group: given.switch("kill-process-group")?,
        grace_period: optional_duration(given, "grace-period")?,
        command,
        env: Vec::new(),
    })
}

/// Log format and level, checked strictly: an unknown level would silence every line, errors
/// included.
pub fn log_settings(format: Option<&str>, level: Option<&str>) -> Result<LogSettings, Failure> {
    let json = match format {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(usage_msg(&format!(
                "{} is `{other}`, expected text or json",
                describe("log-format")
            )))
        }
    };
    let level = level.unwrap_or("info");
    let filter = if LEVELS.contains(&level) {
        format!("entitle={level},warn")
    } else {
        check_filter(level)?;
        level.to_owned()
    };
    Ok(LogSettings { json, filter })
}

const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// A filter is `TARGET=LEVEL` directives (or bare levels) separated by commas.
fn check_filter(filter: &str) -> Result<(), Failure> {
    let valid_target = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
    };
    let valid = |directive: &str| match directive.split_once('=') {
        Some((target, level)) => valid_target(target) && LEVELS.contains(&level),
        None => LEVELS.contains(&directive),
    };
    if filter.split(',').all(valid) {
        return Ok(());
    }
    Err(usage_msg(&format!(
        "{} is `{filter}`; expected one of {} or a filter such as entitle=debug,aws_config=info",
        describe("log-level"),
        LEVELS.join(", ")
    )))
}

fn endpoint_url(text: &str) -> Result<String, Failure> {
    if !(text.starts_with("https://") || text.starts_with("http://")) {
        return Err(usage_msg(&format!(
            "{} is `{text}`, expected an http:// or https:// URL",
            describe("endpoint-url")
        )));
    }
    Ok(text.to_owned())
}

fn optional_duration(given: &Given, flag: &str) -> Result<Option<Duration>, Failure> {
    given
        .value(flag)?
        .map(|v| duration(&describe(flag), &v))
        .transpose()
}

/// A duration such as 90s, 10m or 1h, at most a year.
pub fn duration(what: &str, text: &str) -> Result<Duration, Failure> {
    let parsed = humantime::parse_duration(text).map_err(|e| {
        usage_msg(&format!(
            "{what} is `{text}`: {e}; use a duration such as 90s, 10m or 1h"
        ))
    })?;
    if parsed > MAX_DURATION {
        return Err(usage_msg(&format!(
            "{what} is `{text}`, more than the 366-day limit; use a duration such as 90s, 10m or 1h"
        )));
    }
    Ok(parsed)
}

fn whole_number(what: &str, text: &str) -> Result<u64, Failure> {
    text.parse().map_err(|_| {
        usage_msg(&format!(
            "{what} is `{text}`, expected a whole number such as 1"
        ))
    })
}

fn utf8_value(parser: &mut lexopt::Parser, flag: &str) -> Result<String, Failure> {
    parser
        .value()
        .map_err(usage)?
        .into_string()
        .map_err(|_| usage_msg(&format!("--{flag} value is not valid UTF-8")))
}

fn unknown_flag(name: &str, command: Name) -> Failure {
    let command = name_of(command);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    pub fn parse_with(list: &[&str], env: &[(&str, &str)]) -> Result<Command, Failure> {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        parse(args(list), &move |k| env.get(k).cloned())
    }

    fn check_options(list: &[&str], env: &[(&str, &str)]) -> Options {
        match parse_with(list, env) {
            Ok(Command::Check(o)) => o,
            other => panic!("{other:?}"),
        }
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
        assert_eq!(o.timeout, Some(Duration::from_secs(90)));
        assert_eq!(o.output.as_deref(), Some("/tmp/r.json"));
    }

    #[test]
    fn a_key_flag_beats_either_key_variable_and_two_variables_are_ambiguous() {
        let o = check_options(
            &["check", "--public-key", "PEM"],
            &[
                ("ENTITLE_PUBLIC_KEY_FILE", "/k.pem"),
                ("ENTITLE_PUBLIC_KEY", "OTHER"),
            ],
        );
        assert_eq!(o.public_key, Some(KeySource::Inline("PEM".into())));
        let both = parse_with(
            &["check"],
            &[
                ("ENTITLE_PUBLIC_KEY_FILE", "/k.pem"),
                ("ENTITLE_PUBLIC_KEY", "PEM"),
            ],
        );
        assert!(
            matches!(&both, Err(Failure::Usage(m)) if m.contains("ENTITLE_PUBLIC_KEY_FILE") && m.contains("ENTITLE_PUBLIC_KEY are")),
            "{both:?}"
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
            vec!["check", "--timeout", "abc"],
            vec!["check", "--timeout", "500000000000y"],
            vec!["check", "--public-key-version", "x"],
            vec!["check", "--public-key-version", "-1"],
            vec!["check", "--endpoint-url", "ftp://x"],
            vec!["check", "--log-level", "verbose"],
            vec!["check", "--log-level", "warning"],
            vec!["check", "--log-level", "debug3"],
            vec!["check", "--log-level", "entitle=loud"],
            vec!["check", "--log-format", "xml"],
            vec!["run"],
            vec!["run", "--start", "later", "--", "true"],
            vec!["run", "--grace-period", "soon", "--", "true"],
            vec!["run", "--exec", "--start", "concurrent", "--", "true"],
            vec!["help", "frobnicate"],
            vec!["verify", "--token", "t", "--record", "r"],
        ] {
            let result = parse_with(&list, &[]);
            assert!(
                matches!(result, Err(Failure::Usage(_))),
                "{list:?}: {result:?}"
            );
        }
    }

    #[test]
    fn non_utf8_variables_are_named_not_ignored() {
        let env: HashMap<&str, OsString> = [(
            "ENTITLE_PRODUCT_CODE",
            std::os::unix::ffi::OsStringExt::from_vec(vec![0xff, b'x']),
        )]
        .into();
        let result = parse(args(&["check"]), &move |k| env.get(k).cloned());
        assert!(
            matches!(&result, Err(Failure::Usage(m)) if m.contains("ENTITLE_PRODUCT_CODE is not valid UTF-8")),
            "{result:?}"
        );
    }

    #[test]
    fn log_levels_and_filters() {
        let filter = |level: &str| log_settings(None, Some(level)).map(|s| s.filter);
        assert_eq!(filter("debug").unwrap(), "entitle=debug,warn");
        assert_eq!(
            filter("entitle=debug,aws_config=info").unwrap(),
            "entitle=debug,aws_config=info"
        );
        assert!(filter("info,hyper=off").is_ok());
        for bad in [
            "", "verbose", "warning", "debug3", "entitle=", "=debug", "a b=info",
        ] {
            assert!(matches!(filter(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
        let default = log_settings(None, None).unwrap();
        assert_eq!(
            default,
            LogSettings {
                json: false,
                filter: "entitle=info,warn".into()
            }
        );
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
        let entry = |code: &str, version, file: &str| SealEntry {
            product_code: code.into(),
            public_key_version: version,
            public_key_file: Some(file.into()),
            meter_dimensions: None,
        };
        assert_eq!(
            request.entries,
            vec![entry("a", None, "a.pem"), entry("b", Some(2), "b.pem")]
        );
        assert_eq!(request.output.as_deref(), Some("out"));
        for bad in [
            &[
                "seal",
                "--public-key-file",
                "a.pem",
                "--product-code",
                "a",
                "--output",
                "o",
            ][..],
            &[
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
            &["seal", "--product-code", "a", "--public-key-file", "a.pem"],
            &["seal", "--product-code", "a", "--output", "o"],
            &["seal", "--output", "o"],
            &[
                "seal",
                "--product-code",
                "a",
                "--public-key-file",
                "a",
                "--default-timeout",
                "x",
                "--output",
                "o",
            ],
            &["inspect", "extra"],
            &["install"],
            &["install", "a", "b"],
        ] {
            assert!(
                matches!(parse_with(bad, &[]), Err(Failure::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_command_has_help_and_the_list_is_complete() {
        for (command, name, _) in COMMANDS {
            let Ok(Command::Help(text)) = parse_with(&["help", name], &[]) else {
                panic!("help {name}")
            };
            assert!(
                text.starts_with(&format!("entitle {name}")),
                "{name}: {text}"
            );
            assert_eq!(text, help_text(*command));
            assert!(overview().contains(synopsis(*command)));
        }
        let Err(Failure::Usage(message)) = parse_with(&["help", "foo"], &[]) else {
            panic!()
        };
        for (_, name, _) in COMMANDS {
            assert!(message.contains(name), "{message}");
        }
        assert!(help_text(Name::Verify).contains("78"));
        assert!(help_text(Name::Check).contains("ENTITLE_TIMEOUT"));
        assert!(matches!(
            parse_with(&["check", "-h"], &[]),
            Ok(Command::Help(t)) if t == help_text(Name::Check)
        ));
        assert!(
            matches!(parse_with(&["inspect", "--help"], &[]), Ok(Command::Help(t)) if t.starts_with("entitle inspect"))
        );
        assert!(matches!(
            parse_with(&["--version"], &[]),
            Ok(Command::Version)
        ));
    }

    #[test]
    fn usage_takes_a_dimension_and_a_quantity() {
        let cmd = parse_with(
            &["usage", "scans", "3"],
            &[("ENTITLE_METER_URL", "unix:/run/m.sock")],
        );
        let Ok(Command::Usage(report)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            report,
            UsageReport {
                dimension: "scans".into(),
                quantity: 3,
                url: "unix:/run/m.sock".into()
            }
        );
        for bad in [
            &["usage"][..],
            &["usage", "scans"],
            &["usage", "scans", "-1"],
            &["usage", "scans", "1.5"],
            &["usage", "scans", "2147483648"],
            &["usage", "scans", "1", "2"],
            &["usage", "--bogus", "scans", "1"],
        ] {
            assert!(
                matches!(parse_with(bad, &[]), Err(Failure::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn meter_options_parse_and_seal_takes_dimensions() {
        let cmd = parse_with(
            &[
                "meter",
                "--meter",
                "scans, gb",
                "--meter-listen",
                "unix:/run/m.sock",
                "--meter-spread",
                "1m",
            ],
            &[
                ("ENTITLE_METER_STATE", "/state"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ],
        );
        let Ok(Command::Meter(o)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(o.meter.dimensions, Some(vec!["scans".into(), "gb".into()]));
        assert_eq!(o.meter.listen, Some(Listen::Unix("/run/m.sock".into())));
        assert_eq!(o.meter.state, Some(PathBuf::from("/state")));
        assert_eq!(o.meter.spread, Some(Duration::from_secs(60)));
        assert!(o.meter.endpoint_overridden);
        assert!(matches!(
            parse_with(&["meter", "--meter-listen", "8787"], &[]),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            parse_with(&["verify", "--meter", "a"], &[]),
            Err(Failure::Usage(_))
        ));
        let sealed = parse_with(
            &[
                "seal",
                "--product-code",
                "p",
                "--meter",
                "a,b",
                "--output",
                "o",
            ],
            &[],
        );
        let Ok(Command::Seal(request)) = sealed else {
            panic!("{sealed:?}")
        };
        assert_eq!(
            request.entries[0].meter_dimensions,
            Some(vec!["a".into(), "b".into()])
        );
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
        assert!(matches!(
            parse_with(&["run", "--", "true"], &[("ENTITLE_EXEC", "maybe")]),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let o = check_options(&["check"], &[("ENTITLE_PRODUCT_CODE", "")]);
        assert_eq!(o.product_code, None);
    }

    #[test]
    fn verify_takes_the_token_from_entitle_token_when_no_source_is_given() {
        let verify = |list: &[&str], env: &[(&str, &str)]| match parse_with(list, env) {
            Ok(Command::Verify(o)) => o.token,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            verify(
                &["verify"],
                &[("ENTITLE_TOKEN", "a.b.c"), ("ENTITLE_NONCE", "n")]
            ),
            TokenInput::Inline("a.b.c".into(), Some("n".into()))
        );
        assert_eq!(
            verify(
                &["verify", "--record", "r.json"],
                &[("ENTITLE_TOKEN", "a.b.c")]
            ),
            TokenInput::Record("r.json".into())
        );
        assert_eq!(
            verify(&["verify", "--token", "t"], &[("ENTITLE_RECORD", "r.json")]),
            TokenInput::File("t".into(), None)
        );
        assert_eq!(verify(&["verify"], &[]), TokenInput::Missing(None));
    }

    #[test]
    fn every_spec_names_a_variable_and_help() {
        for s in SPECS {
            assert!(!s.env.is_empty() && !s.help.is_empty(), "{}", s.flag);
            assert_eq!(spec(s.flag).flag, s.flag);
        }
    }
}
