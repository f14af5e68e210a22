//! SigV4 (AWS4-HMAC-SHA256): parsing the Authorization header, checking its structure and,
//! when the secret is known, recomputing the signature.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::aws::AwsError;
use crate::clock;
use crate::http::Request;
use crate::util::{hex, percent_decode, uri_encode};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const SERVICE: &str = "aws-marketplace";
/// AWS rejects requests whose X-Amz-Date is further than this from its clock (SigV4's 15 minutes;
/// a node 15+ minutes off gets `InvalidSignatureException: Signature expired`).
const MAX_SKEW_SECS: i64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// The credentials a signature must have been made with.
pub struct Expected<'a> {
    pub access_key: &'a str,
    pub secret: &'a str,
    /// A request may carry this session token (credentials served by the ECS/STS stand-ins)
    /// or none (the static credentials themselves).
    pub session_token: &'a str,
}

/// What the check found, for the log, plus the error to answer with if it failed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub access_key: Option<String>,
    pub region: Option<String>,
    pub security_token: bool,
    /// `ok`, `structure-only`, or a short problem name.
    pub verdict: String,
    pub error: Option<AwsError>,
}

/// Checks the request's SigV4 header against the clock (`now`, epoch seconds) and, when
/// `expected` is given, recomputes the signature.
pub fn check(req: &Request, expected: Option<&Expected>, now: i64) -> Outcome {
    let mut outcome = Outcome {
        security_token: req.header("x-amz-security-token").is_some(),
        ..Outcome::default()
    };
    match check_inner(req, expected, now, &mut outcome) {
        Ok(verdict) => outcome.verdict = verdict.into(),
        Err((verdict, error)) => {
            outcome.verdict = verdict;
            outcome.error = Some(error);
        }
    }
    outcome
}

type Failure = (String, AwsError);

fn check_inner(
    req: &Request,
    expected: Option<&Expected>,
    now: i64,
    outcome: &mut Outcome,
) -> Result<&'static str, Failure> {
    let Some(header) = req.header("authorization") else {
        return Err(fail_missing_token());
    };
    let auth = parse_authorization(header).map_err(|(short, msg)| incomplete(short, msg))?;
    outcome.access_key = Some(auth.access_key.clone());
    outcome.region = Some(auth.region.clone());
    check_scope(&auth)?;
    let amz_date = check_date(req, &auth)?;
    check_skew(amz_date, now)?;
    let Some(expected) = expected else {
        return Ok("structure-only");
    };
    check_identity(req, &auth, expected)?;
    let canonical = canonical_request(req, &auth.signed_headers)
        .map_err(|name| mismatch(format!("signed-header-missing:{name}"), String::new()))?;
    let computed = signature(
        expected.secret,
        amz_date,
        &auth.region,
        &auth.service,
        &canonical,
    );
    if computed != auth.signature {
        let sts = string_to_sign(amz_date, &scope(&auth), &canonical);
        let shown = redact_token(&canonical, req.header("x-amz-security-token"));
        return Err(mismatch(
            "signature-mismatch".into(),
            format!(
                "\n\nThe Canonical String for this request should have been\n'{shown}'\n\n\
                 The String-to-Sign should have been\n'{sts}'\n"
            ),
        ));
    }
    Ok("ok")
}

fn fail_missing_token() -> Failure {
    let e = AwsError::new(
        400,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    );
    ("missing-authorization".into(), e)
}

fn incomplete(short: &str, message: String) -> Failure {
    let e = AwsError::new(400, "IncompleteSignatureException", message);
    (short.into(), e)
}

fn invalid(short: String, message: String) -> Failure {
    (
        short,
        AwsError::new(403, "InvalidSignatureException", message),
    )
}

fn mismatch(short: String, detail: String) -> Failure {
    invalid(
        short,
        format!(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.{detail}"
        ),
    )
}

fn unrecognized(short: &str) -> Failure {
    let e = AwsError::new(
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    (short.into(), e)
}

fn check_scope(auth: &Authorization) -> Result<(), Failure> {
    if auth.service != SERVICE {
        return Err(invalid(
            format!("wrong-service:{}", auth.service),
            format!("Credential should be scoped to correct service: '{SERVICE}'. "),
        ));
    }
    if auth.terminator != "aws4_request" {
        return Err(invalid(
            "bad-terminator".into(),
            format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
                auth.terminator
            ),
        ));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(invalid(
            "host-not-signed".into(),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let hex_ok = auth.signature.len() == 64
        && auth
            .signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex_ok {
        return Err(mismatch("malformed-signature".into(), String::new()));
    }
    Ok(())
}

/// Returns the X-Amz-Date value once it is present, well-formed and matches the scope date.
fn check_date<'r>(req: &'r Request, auth: &Authorization) -> Result<&'r str, Failure> {
    let Some(amz_date) = req.header("x-amz-date") else {
        return Err(incomplete(
            "missing-x-amz-date",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        ));
    };
    if clock::parse_amz_date(amz_date).is_none() {
        return Err(incomplete(
            "bad-x-amz-date",
            format!("X-Amz-Date must be in the ISO8601 Long Format: {amz_date:?}"),
        ));
    }
    if !amz_date.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(invalid(
            "scope-date-mismatch".into(),
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.date,
                &amz_date[..8]
            ),
        ));
    }
    Ok(amz_date)
}

fn check_identity(req: &Request, auth: &Authorization, expected: &Expected) -> Result<(), Failure> {
    if auth.access_key != expected.access_key {
        return Err(unrecognized("unknown-access-key"));
    }
    match req.header("x-amz-security-token") {
        Some(token) if token != expected.session_token => Err(unrecognized("bad-security-token")),
        _ => Ok(()),
    }
}

/// AWS's clock check, with its messages word for word.
fn check_skew(amz_date: &str, now: i64) -> Result<(), Failure> {
    let signed_at = clock::parse_amz_date(amz_date).unwrap_or(0);
    let minutes = MAX_SKEW_SECS / 60;
    let (now_s, lo, hi) = (
        clock::amz_date(now),
        clock::amz_date(now - MAX_SKEW_SECS),
        clock::amz_date(now + MAX_SKEW_SECS),
    );
    if signed_at < now - MAX_SKEW_SECS {
        let msg = format!(
            "Signature expired: {amz_date} is now earlier than {lo} ({now_s} - {minutes} min.)"
        );
        return Err(invalid("signature-expired".into(), msg));
    }
    if signed_at > now + MAX_SKEW_SECS {
        let msg = format!(
            "Signature not yet current: {amz_date} is still later than {hi} ({now_s} + {minutes} min.)"
        );
        return Err(invalid("signature-not-yet-current".into(), msg));
    }
    Ok(())
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=hex`. Errors carry a short name and AWS's message.
pub fn parse_authorization(header: &str) -> Result<Authorization, (&'static str, String)> {
    let Some(params) = header
        .strip_prefix(ALGORITHM)
        .filter(|p| p.starts_with(' '))
    else {
        return Err((
            "bad-algorithm",
            format!("Unsupported authorization type; expected {ALGORITHM}: {header:?}"),
        ));
    };
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v.trim()),
            Some(("SignedHeaders", v)) => signed = Some(v.trim()),
            Some(("Signature", v)) => signature = Some(v.trim()),
            _ => {}
        }
    }
    let credential = require(credential, "Credential", header)?;
    let signed = require(signed, "SignedHeaders", header)?;
    let signature = require(signature, "Signature", header)?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = parts[..] else {
        let msg = format!(
            "Credential should have the form ACCESS_KEY/DATE/REGION/SERVICE/aws4_request: {credential:?}"
        );
        return Err(("malformed-credential", msg));
    };
    Ok(Authorization {
        access_key: access_key.into(),
        date: date.into(),
        region: region.into(),
        service: service.into(),
        terminator: terminator.into(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.into(),
    })
}

fn require<'a>(
    value: Option<&'a str>,
    name: &str,
    header: &str,
) -> Result<&'a str, (&'static str, String)> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        let msg =
            format!("Authorization header requires '{name}' parameter. Authorization={header}");
        ("incomplete-authorization", msg)
    })
}

fn scope(auth: &Authorization) -> String {
    format!(
        "{}/{}/{}/{}",
        auth.date, auth.region, auth.service, auth.terminator
    )
}

/// The SigV4 canonical request. Errors with the name of a signed header the request lacks.
pub fn canonical_request(req: &Request, signed_headers: &[String]) -> Result<String, String> {
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = req.header_values(name).map(collapse_spaces).collect();
        if values.is_empty() {
            return Err(name.clone());
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path()),
        canonical_query(req.query()),
        headers,
        signed_headers.join(";"),
        hex(&Sha256::digest(&req.body))
    ))
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Non-S3 services normalise the path and encode each (already encoded) segment again.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let encoded: Vec<String> = segments.iter().map(|s| uri_encode(s)).collect();
    format!("/{}", encoded.join("/"))
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k, false)),
                uri_encode(&percent_decode(v, false)),
            )
        })
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined.join("&")
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    )
}

pub fn signature(
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    canonical: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let scope = format!("{date}/{region}/{service}/aws4_request");
    hex(&hmac(
        &k_signing,
        string_to_sign(amz_date, &scope, canonical).as_bytes(),
    ))
}

pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn redact_token(canonical: &str, token: Option<&str>) -> String {
    match token {
        Some(t) if !t.is_empty() => canonical.replace(t, "<session token redacted>"),
        _ => canonical.to_string(),
    }
}

/// Signs `req` in place (adds X-Amz-Date and Authorization), as a client would. Used by the
/// tests; the signed headers are all headers present plus x-amz-date.
pub fn sign(req: &mut Request, access_key: &str, secret: &str, region: &str, now: i64) {
    let amz_date = clock::amz_date(now);
    req.headers.push(("X-Amz-Date".into(), amz_date.clone()));
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let canonical = canonical_request(req, &names).expect("every signed header is present");
    let sig = signature(secret, &amz_date, region, SERVICE, &canonical);
    let auth = format!(
        "{ALGORITHM} Credential={access_key}/{}/{region}/{SERVICE}/aws4_request, SignedHeaders={}, Signature={sig}",
        &amz_date[..8],
        names.join(";")
    );
    req.headers.push(("Authorization".into(), auth));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20150830T123600Z";

    fn request(method: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            target: "/".into(),
            version: "HTTP/1.1".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn names(list: &str) -> Vec<String> {
        list.split(';').map(String::from).collect()
    }

    // Vectors from AWS's published SigV4 test suite (get-vanilla, post-x-www-form-urlencoded).
    #[test]
    fn get_vanilla_vector() {
        let req = request(
            "GET",
            &[("Host", "example.amazonaws.com"), ("X-Amz-Date", DATE)],
            "",
        );
        let canonical = canonical_request(&req, &names("host;x-amz-date")).unwrap();
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(DATE, "20150830/us-east-1/service/aws4_request", &canonical);
        assert!(sts.ends_with("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"));
        assert_eq!(
            signature(SECRET, DATE, "us-east-1", "service", &canonical),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn post_form_vector() {
        let req = request(
            "POST",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", DATE),
            ],
            "Param1=value1",
        );
        let canonical = canonical_request(&req, &names("content-type;host;x-amz-date")).unwrap();
        assert!(
            canonical.ends_with("9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")
        );
        assert_eq!(
            signature(SECRET, DATE, "us-east-1", "service", &canonical),
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
        assert_eq!(collapse_spaces("  a   b  "), "a b");
    }

    #[test]
    fn parses_an_sdk_authorization_header() {
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20261130/eu-west-1/aws-marketplace/aws4_request, \
             SignedHeaders=content-length;content-type;host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(auth.access_key, "AKID");
        assert_eq!(auth.region, "eu-west-1");
        assert_eq!(auth.service, "aws-marketplace");
        assert_eq!(auth.signed_headers.len(), 4);
        assert!(parse_authorization("Bearer x").is_err());
        assert!(parse_authorization(
            "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=1"
        )
        .is_err());
        assert!(parse_authorization("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=1").is_err());
    }

    fn signed(token: Option<&str>, now: i64) -> Request {
        let mut req = request(
            "POST",
            &[
                ("Host", "127.0.0.1:1"),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            "{}",
        );
        if let Some(t) = token {
            req.headers.push(("X-Amz-Security-Token".into(), t.into()));
        }
        sign(&mut req, "AKID", "SECRET", "us-east-1", now);
        req
    }

    fn expected() -> Expected<'static> {
        Expected {
            access_key: "AKID",
            secret: "SECRET",
            session_token: "TOKEN",
        }
    }

    #[test]
    fn verifies_and_rejects() {
        let now = 1_800_000_000;
        let verdict = |req: &Request, now| check(req, Some(&expected()), now).verdict;
        assert_eq!(verdict(&signed(None, now), now), "ok");
        assert_eq!(verdict(&signed(Some("TOKEN"), now), now), "ok");
        assert_eq!(
            verdict(&signed(Some("OTHER"), now), now),
            "bad-security-token"
        );
        assert_eq!(verdict(&signed(None, now), now + 3600), "signature-expired");
        assert_eq!(
            check(&signed(None, now), None, now).verdict,
            "structure-only"
        );
        let mut tampered = signed(None, now);
        tampered.body = b"{ }".to_vec();
        let outcome = check(&tampered, Some(&expected()), now);
        assert_eq!(outcome.verdict, "signature-mismatch");
        assert_eq!(outcome.error.unwrap().status, 403);
        let bare = request("POST", &[("Host", "x")], "");
        assert_eq!(
            check(&bare, None, now).error.unwrap().name,
            "MissingAuthenticationTokenException"
        );
    }

    #[test]
    fn clock_is_checked_with_or_without_credentials() {
        // Signed at 2026-12-03T10:45:00Z.
        let signed_at = 1_796_294_700;
        let req = signed(None, signed_at);
        for expected in [None, Some(expected())] {
            let at = |now| check(&req, expected.as_ref(), now);
            assert!(at(signed_at + 900).error.is_none());
            assert!(at(signed_at - 900).error.is_none());
            let late = at(signed_at + 901);
            assert_eq!(late.verdict, "signature-expired");
            let error = late.error.unwrap();
            assert_eq!(
                (error.status, error.name),
                (403, "InvalidSignatureException")
            );
            let early = at(signed_at - 901).error.unwrap();
            assert_eq!(early.name, "InvalidSignatureException");
        }
        let expired = check(&req, None, signed_at + 1800).error.unwrap();
        assert_eq!(
            expired.message,
            "Signature expired: 20261203T104500Z is now earlier than 20261203T110000Z \
             (20261203T111500Z - 15 min.)"
        );
        let early = check(&req, None, signed_at - 1800).error.unwrap();
        assert_eq!(
            early.message,
            "Signature not yet current: 20261203T104500Z is still later than 20261203T103000Z \
             (20261203T101500Z + 15 min.)"
        );
    }

    #[test]
    fn token_never_shown_in_mismatch_message() {
        let now = 1_800_000_000;
        let mut req = signed(Some("TOKEN"), now);
        req.body = b"changed".to_vec();
        let e = check(&req, Some(&expected()), now).error.unwrap();
        assert!(e
            .message
            .contains("x-amz-security-token:<session token redacted>"));
        assert!(!e.message.contains("TOKEN\n"));
    }
}
