//! Command line.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::script::Script;

pub const USAGE: &str = "\
entitle-mock: a local AWS Marketplace Metering RegisterUsage endpoint, with ECS and STS
credential stand-ins, for testing paid container images outside ECS/EKS.

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
  --credentials AKID:SECRET verify SigV4 signatures fully with these credentials, and serve them
                            from the ECS (/ecs/...) and STS (AssumeRoleWithWebIdentity) stand-ins
  --request-log FILE        append one JSON object per request to FILE
  -h, --help                print this help
  -V, --version             print the version

Answer modes:
  ok ok-rotation
  not-entitled platform-not-supported invalid-product-code invalid-public-key-version
  invalid-region disabled-api access-denied unrecognized-client throttle internal-error
  http-502-html http-503-empty not-json stall stall-body reset close-mid-body length-mismatch
  chunked-garbage no-read huge-body
  wrong-key alg-none hs256 rs256 wrong-product-code wrong-nonce wrong-version version-as-string
  missing-nonce replay tampered truncated garbage empty no-signature huge

On start it prints one line, http://HOST:PORT, to stdout; one line per request goes to stderr.
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
            Long("rate") => o.rate = Some(parse_rate(&text(&mut parser, "--rate")?)?),
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

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!(
            "--rate: want a positive number of requests per second, got {value:?}"
        )),
    }
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
        ])
        .unwrap();
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
        ] {
            let e = run(args).unwrap_err();
            assert!(!e.contains('\n'), "{args:?}: {e}");
        }
    }

    #[test]
    fn help_and_version() {
        let p = |a: &str| parse(lexopt::Parser::from_args([a])).unwrap();
        assert_eq!(p("--help"), Command::Help);
        assert_eq!(p("-V"), Command::Version);
    }
}
