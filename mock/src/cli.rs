//! Command line.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::duration;
use crate::meter_answer::MeterScript;
use crate::meter_store::Policy;
use crate::register::check_product_code;
use crate::script::Script;

pub const USAGE: &str = "\
entitle-mock: a local AWS Marketplace Metering endpoint (RegisterUsage and MeterUsage), with ECS
and STS credential stand-ins. Vendors use it to test their integration locally, with no AWS
account: point entitle (or any AWS SDK) at it, script the answers, read back what was metered.

Usage: entitle-mock [OPTIONS]

Options:
  --listen ADDR             address to listen on (default 127.0.0.1:0)
  --private-key FILE        RSA private key PEM to sign with (PKCS#8 or PKCS#1); default: generate one
  --key-bits N              size of the generated key, 1024..=4096 (default 2048)
  --write-public-key FILE   write the signing key's public half as SPKI PEM (BEGIN PUBLIC KEY)
  --write-private-key FILE  write the signing key as PKCS#8 PEM, to reuse with --private-key
  --answer SCRIPT           answers to RegisterUsage in order, e.g. `throttle*3,ok`; the last entry
                            repeats forever (default `ok`)
  --rate N                  allow N RegisterUsage requests per second (burst N); over it answer
                            ThrottlingException without consuming a script entry
  --meter-answer SCRIPT     answers to MeterUsage, same syntax as --answer (default `ok`); one entry
                            per MeterUsage request that passes the signature and body checks,
                            dry runs included
  --meter-rate N            like --rate, for MeterUsage
  --period DURATION         MeterUsage keeps one record per usage dimension and period, and takes
                            usage until 6 periods after its period ends (default 1h, like AWS;
                            e.g. 2s, 500ms, 10m, 1h30m)
  --dimensions A,B,...      the product's usage dimensions; MeterUsage for another one answers
                            InvalidUsageDimensionException (default: any dimension)
  --product-code CODE       the product's code; MeterUsage for another one answers
                            InvalidProductCodeException (default: any code)
  --clock-skew DURATION     shift the mock's clock (Date header, SigV4 time check, MeterUsage
                            windows), e.g. -20m or 2h, to play a client whose clock is wrong
  --credentials AKID:SECRET verify SigV4 signatures fully with these credentials, and serve them
                            from the ECS (/ecs/...) and STS (AssumeRoleWithWebIdentity) stand-ins;
                            without it any credentials pass (the signature's form and time are
                            still checked)
  --request-log FILE        append one JSON object per request to FILE
  -h, --help                print this help
  -V, --version             print the version

RegisterUsage answer modes (--answer):
  ok ok-rotation
  not-entitled platform-not-supported invalid-product-code invalid-public-key-version
  invalid-region disabled-api access-denied unrecognized-client throttle internal-error
  http-502-html http-503-empty not-json stall stall-body reset close-mid-body length-mismatch
  chunked-garbage no-read huge-body
  wrong-key alg-none hs256 rs256 wrong-product-code wrong-nonce wrong-version version-as-string
  missing-nonce replay tampered truncated garbage empty no-signature huge

MeterUsage answer modes (--meter-answer):
  ok                        meter for real: check product code, dimension, tags, allocations,
                            time window and duplicates, then record (or answer DryRunOperation)
  dry-run-200               like ok, but a successful DryRun gets a plain 200 `{}`
  not-entitled invalid-product-code invalid-usage-dimension invalid-endpoint-region invalid-tag
  invalid-usage-allocations duplicate timestamp-out-of-bounds access-denied unrecognized-client
  throttle internal-error   answer that AWS error, recording nothing
  http-502-html http-503-empty not-json stall stall-body reset close-mid-body chunked-garbage
  no-read huge-body         HTTP faults, as for RegisterUsage

Control endpoints (for tests; not AWS APIs):
  GET  /_mock/meter         every MeterUsage record and the totals, as JSON:
                            {\"period\": SECS, \"records\": [{\"dimension\", \"period\", \"periodStart\",
                            \"timestamp\", \"quantity\", \"recordId\", ...}],
                            \"totals\": {PERIOD_START_RFC3339: {DIMENSION: QUANTITY}}}
  POST /_mock/meter-answer  replace the MeterUsage script with the body (e.g. `throttle*2,ok`);
                            200, or 400 with a message for a bad script

On start it prints one line, http://HOST:PORT, to stdout, and to stderr the environment that
points entitle at it. One line per request goes to stderr, and one per new MeterUsage record.
On SIGTERM or SIGINT it prints the MeterUsage totals per period to stderr and exits 0.

Example, testing a product locally:
  entitle-mock --product-code prod-abc --dimensions cpu,mem --write-public-key key.pem
  # run entitle (or the product) with the environment the mock printed, then:
  curl -s http://127.0.0.1:PORT/_mock/meter
  curl -s --data 'throttle*3,ok' http://127.0.0.1:PORT/_mock/meter-answer
";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub listen: SocketAddr,
    pub private_key: Option<PathBuf>,
    pub key_bits: usize,
    pub write_public_key: Option<PathBuf>,
    pub write_private_key: Option<PathBuf>,
    pub script: Script,
    pub rate: Option<f64>,
    pub credentials: Option<(String, String)>,
    pub request_log: Option<PathBuf>,
    pub meter_script: MeterScript,
    pub meter_rate: Option<f64>,
    /// --period, --dimensions and --product-code.
    pub metering: Policy,
    pub clock_skew_ms: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            private_key: None,
            key_bits: 2048,
            write_public_key: None,
            write_private_key: None,
            script: Script::default(),
            rate: None,
            credentials: None,
            request_log: None,
            meter_script: MeterScript::default(),
            meter_rate: None,
            metering: Policy::default(),
            clock_skew_ms: 0,
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Box<Options>),
    Help,
    Version,
}

pub fn parse(mut parser: lexopt::Parser) -> Result<Command, String> {
    use lexopt::Arg::{Long, Short};
    let mut o = Options::default();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("listen") => o.listen = parse_listen(&text(&mut parser, "--listen")?)?,
            Long("private-key") => o.private_key = Some(text(&mut parser, "--private-key")?.into()),
            Long("key-bits") => o.key_bits = parse_bits(&text(&mut parser, "--key-bits")?)?,
            Long("write-public-key") => {
                o.write_public_key = Some(text(&mut parser, "--write-public-key")?.into())
            }
            Long("write-private-key") => {
                o.write_private_key = Some(text(&mut parser, "--write-private-key")?.into())
            }
            Long("answer") => {
                o.script = Script::parse(&text(&mut parser, "--answer")?)
                    .map_err(|e| format!("--answer: {e}"))?
            }
            Long("rate") => o.rate = Some(parse_rate(&text(&mut parser, "--rate")?, "--rate")?),
            Long("meter-answer") => {
                o.meter_script = MeterScript::parse(&text(&mut parser, "--meter-answer")?)
                    .map_err(|e| format!("--meter-answer: {e}"))?
            }
            Long("meter-rate") => {
                let value = text(&mut parser, "--meter-rate")?;
                o.meter_rate = Some(parse_rate(&value, "--meter-rate")?)
            }
            Long("period") => {
                o.metering.period_ms = duration::parse_positive(&text(&mut parser, "--period")?)
                    .map_err(|e| format!("--period: {e}"))?
            }
            Long("dimensions") => {
                let value = text(&mut parser, "--dimensions")?;
                o.metering.dimensions = Some(parse_dimensions(&value)?)
            }
            Long("product-code") => {
                let value = text(&mut parser, "--product-code")?;
                o.metering.product_code = Some(parse_product_code(&value)?)
            }
            Long("clock-skew") => {
                o.clock_skew_ms = duration::parse_signed(&text(&mut parser, "--clock-skew")?)
                    .map_err(|e| format!("--clock-skew: {e}"))?
            }
            Long("credentials") => {
                o.credentials = Some(parse_credentials(&text(&mut parser, "--credentials")?)?)
            }
            Long("request-log") => o.request_log = Some(text(&mut parser, "--request-log")?.into()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Command::Run(Box::new(o)))
}

fn text(parser: &mut lexopt::Parser, flag: &str) -> Result<String, String> {
    let value = parser.value().map_err(|e| e.to_string())?;
    value
        .into_string()
        .map_err(|_| format!("{flag}: value is not valid UTF-8"))
}

fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("--listen: {value:?} is not an address like 127.0.0.1:8080"))
}

fn parse_bits(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1024..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "--key-bits: want a number from 1024 to 4096, got {value:?}"
        )),
    }
}

fn parse_rate(value: &str, flag: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!(
            "{flag}: want a positive number of requests per second, got {value:?}"
        )),
    }
}

fn parse_dimensions(value: &str) -> Result<Vec<String>, String> {
    let mut dimensions: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim) {
        if !(1..=255).contains(&name.chars().count()) {
            return Err(format!(
                "--dimensions: want comma-separated names of 1 to 255 characters, got {value:?}"
            ));
        }
        if !dimensions.iter().any(|d| d == name) {
            dimensions.push(name.into());
        }
    }
    Ok(dimensions)
}

fn parse_product_code(value: &str) -> Result<String, String> {
    check_product_code(value)
        .map(|()| value.to_string())
        .map_err(|_| {
            format!("--product-code: want 1 to 255 of A-Z a-z 0-9 - / = : _ . @, got {value:?}")
        })
}

fn parse_credentials(value: &str) -> Result<(String, String), String> {
    match value.split_once(':') {
        Some((akid, secret)) if !akid.is_empty() && !secret.is_empty() => {
            Ok((akid.into(), secret.into()))
        }
        _ => Err("--credentials: want ACCESS_KEY_ID:SECRET_ACCESS_KEY".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter_answer::MeterMode;
    use crate::script::Mode;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(lexopt::Parser::from_args(args.iter().copied()))? {
            Command::Run(o) => Ok(*o),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(run(&[]).unwrap(), Options::default());
    }

    #[test]
    fn all_flags() {
        let o = run(&[
            "--listen=127.0.0.1:9000",
            "--key-bits",
            "1024",
            "--answer",
            "throttle*2,ok",
            "--rate",
            "5",
            "--credentials",
            "AKID:se:cret",
            "--private-key",
            "k.pem",
            "--request-log",
            "log.jsonl",
            "--meter-answer",
            "duplicate,ok",
            "--meter-rate=2.5",
            "--period",
            "10m",
            "--dimensions",
            "cpu, mem,cpu",
            "--product-code",
            "prod-1",
            "--clock-skew=-20m",
        ])
        .unwrap();
        assert_eq!(o.meter_script.clone().take(), MeterMode::Duplicate);
        assert_eq!(o.meter_rate, Some(2.5));
        assert_eq!(
            o.metering,
            Policy {
                period_ms: 600_000,
                dimensions: Some(vec!["cpu".into(), "mem".into()]),
                product_code: Some("prod-1".into()),
            }
        );
        assert_eq!(o.clock_skew_ms, -1_200_000);
        assert_eq!(o.listen.port(), 9000);
        assert_eq!(o.key_bits, 1024);
        assert_eq!(o.script.clone().take(), Mode::Throttle);
        assert_eq!(o.rate, Some(5.0));
        assert_eq!(o.credentials, Some(("AKID".into(), "se:cret".into())));
        assert_eq!(o.private_key, Some("k.pem".into()));
    }

    #[test]
    fn bad_flags_are_one_line_errors() {
        for args in [
            &["--key-bits", "512"][..],
            &["--key-bits", "8192"],
            &["--answer", "nope"],
            &["--rate", "0"],
            &["--rate", "fast"],
            &["--credentials", "nocolon"],
            &["--credentials", ":secret"],
            &["--listen", "not-an-address"],
            &["--bogus"],
            &["stray"],
            &["--listen"],
            &["--meter-answer", "wrong-key"],
            &["--meter-rate", "-1"],
            &["--period", "0s"],
            &["--period", "-1h"],
            &["--period", "1"],
            &["--dimensions", "a,,b"],
            &["--dimensions", ""],
            &["--product-code", "p q"],
            &["--product-code", ""],
            &["--clock-skew", "soon"],
            &["--clock-skew", "1000000d"],
        ] {
            let e = run(args).unwrap_err();
            assert!(!e.contains('\n'), "{args:?}: {e}");
        }
    }

    #[test]
    fn help_names_every_flag_and_endpoint() {
        for flag in [
            "--listen",
            "--private-key",
            "--key-bits",
            "--write-public-key",
            "--write-private-key",
            "--answer",
            "--rate",
            "--meter-answer",
            "--meter-rate",
            "--period",
            "--dimensions",
            "--product-code",
            "--clock-skew",
            "--credentials",
            "--request-log",
            "GET  /_mock/meter",
            "POST /_mock/meter-answer",
        ] {
            assert!(USAGE.contains(flag), "{flag}");
        }
        for (name, _) in <MeterMode as crate::script::Named>::NAMES {
            assert!(USAGE.contains(name), "{name}");
        }
    }

    #[test]
    fn help_and_version() {
        let p = |a: &str| parse(lexopt::Parser::from_args([a])).unwrap();
        assert_eq!(p("--help"), Command::Help);
        assert_eq!(p("-V"), Command::Version);
    }
}
