//! Shared by the fuzz targets: the committed test vector (key, claims, token), a PS256 signer
//! with the vector's private half (test-only, entitle-verify/tests/data/vector-private.pem), an independent
//! statement of what `entitle_verify::verify` must accept, and a lenient reader of raw HTTP answers.

use entitle_verify::key::test_keys::Signer;
use entitle_verify::{Expected, PublicKey};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::sync::OnceLock;

pub const PUBLIC_PEM: &str = include_str!("../../entitle-verify/tests/data/vector-public.pem");
pub const PRIVATE_PEM: &str = include_str!("../../entitle-verify/tests/data/vector-private.pem");
const TOKEN_FILE: &str = include_str!("../../entitle-verify/tests/data/vector.jwt");

/// The claims tests/data/vector.jwt was issued for.
pub const PRODUCT_CODE: &str = "prod-example";
pub const PUBLIC_KEY_VERSION: u64 = 1;
pub const NONCE: &str = "vector-nonce-0001";

pub fn vector_token() -> &'static str {
    TOKEN_FILE.trim()
}

pub fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| PublicKey::from_pem(PUBLIC_PEM).expect("the vector public key parses"))
}

pub fn expected() -> Expected<'static> {
    Expected {
        product_code: PRODUCT_CODE,
        public_key_version: PUBLIC_KEY_VERSION,
        nonce: NONCE,
    }
}

/// A compact JWS over arbitrary header and payload bytes, with a valid PS256 signature.
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER
        .get_or_init(|| Signer::from_pem(PRIVATE_PEM))
        .sign(header, payload)
}

/// What the documentation says about a validly signed token with this header and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// UTF-8 JSON object header with `alg` exactly "PS256" and no `crit`; a UTF-8 JSON object
    /// payload whose `productCode`, `publicKeyVersion` (the JSON integer 1) and `nonce` equal the
    /// expected ones. Other members may be anything (at any depth).
    Accept,
    Reject,
    /// Duplicate member names: RFC 7515 §5.2 lets a parser reject them or keep the last one.
    Either,
}

/// The members whose values the contract looks at; all others are only checked to be JSON.
const CHECKED: [&str; 5] = ["alg", "crit", "productCode", "publicKeyVersion", "nonce"];

/// The top-level members of a JSON object, duplicates kept, values of [`CHECKED`] members only.
struct Members(Vec<(String, Option<Value>)>);

/// Reads [`Members`] from a JSON object (nothing else).
struct MembersSeed;

impl<'de> DeserializeSeed<'de> for MembersSeed {
    type Value = Members;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Members, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MembersSeed {
    type Value = Members;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut members = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = if CHECKED.contains(&name.as_str()) {
                Some(map.next_value::<Value>()?)
            } else {
                map.next_value::<IgnoredAny>()?;
                None
            };
            members.push((name, value));
        }
        Ok(Members(members))
    }
}

impl Members {
    fn parse(bytes: &[u8]) -> Option<Members> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let members = MembersSeed.deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(members)
    }
    fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
    }
    fn has_duplicates(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(i, (k, _))| self.0[..i].iter().any(|(j, _)| j == k))
    }
}

/// The contract, decided without entitle's code (serde_json is the only thing shared).
pub fn contract(header: &[u8], payload: &[u8]) -> Contract {
    if std::str::from_utf8(header).is_err() || std::str::from_utf8(payload).is_err() {
        return Contract::Reject; // RFC 8259 §8.1: JSON text is UTF-8
    }
    // Both parts must be whole JSON values; nesting deeper than serde_json's limit of 128
    // levels is malformed even inside an ignored member (documented in the README).
    let parses = |part: &[u8]| serde_json::from_slice::<Value>(part).is_ok();
    if !parses(header) || !parses(payload) {
        return Contract::Reject;
    }
    judge(header, payload)
}

fn judge(header: &[u8], payload: &[u8]) -> Contract {
    let (Some(header), Some(payload)) = (Members::parse(header), Members::parse(payload)) else {
        return Contract::Reject;
    };
    let crit_ok = !header.0.iter().any(|(name, _)| name == "crit");
    let header_ok = header.get("alg").and_then(Value::as_str) == Some("PS256") && crit_ok;
    let version_ok = matches!(
        json_integer(payload.get("publicKeyVersion")),
        Some(PUBLIC_KEY_VERSION)
    );
    let claims_ok = payload.get("productCode").and_then(Value::as_str) == Some(PRODUCT_CODE)
        && version_ok
        && payload.get("nonce").and_then(Value::as_str) == Some(NONCE);
    let verdict = if header_ok && claims_ok {
        Contract::Accept
    } else {
        Contract::Reject
    };
    if header.has_duplicates() || payload.has_duplicates() {
        // Only a duplicate can make the last-wins reading above differ from a rejecting parser.
        return match verdict {
            Contract::Accept => Contract::Either,
            other => other,
        };
    }
    verdict
}

/// A JSON integer (not 1.0, not "1").
fn json_integer(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) if n.is_u64() => n.as_u64(),
        _ => None,
    }
}

/// Checks an `entitle_verify::verify` verdict on a validly signed token against [`contract`].
pub fn check_against_contract(
    header: &[u8],
    payload: &[u8],
    verdict: &Result<entitle_verify::Entitlement, entitle_verify::Rejection>,
) {
    let contract = contract(header, payload);
    let accepted = verdict.is_ok();
    let agrees = match contract {
        Contract::Accept => accepted,
        Contract::Reject => !accepted,
        Contract::Either => true,
    };
    assert!(
        agrees,
        "verify disagrees with the documented contract ({contract:?}): {verdict:?}\nheader:  {:?}\npayload: {:?}",
        String::from_utf8_lossy(header),
        String::from_utf8_lossy(payload),
    );
}

/// The parts of a raw HTTP/1.1 answer, read leniently so any bytes make some answer: the status
/// is the second word of the first line (200 when that is not 100..=999), headers that `http`
/// refuses are dropped, the body is everything after the first blank line, taken verbatim
/// (Content-Length and Transfer-Encoding are passed on as headers, not applied).
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn parse(data: &[u8]) -> RawAnswer {
        let (head, body) = match find(data, b"\r\n\r\n") {
            Some(i) => (&data[..i], &data[i + 4..]),
            None => match find(data, b"\n\n") {
                Some(i) => (&data[..i], &data[i + 2..]),
                None => (data, &[][..]),
            },
        };
        let mut lines = head.split(|&b| b == b'\n');
        let status = lines
            .next()
            .and_then(|line| line.split(|b| b.is_ascii_whitespace()).nth(1))
            .and_then(|word| std::str::from_utf8(word).ok())
            .and_then(|word| word.parse::<u16>().ok())
            .filter(|s| (100..=999).contains(s))
            .unwrap_or(200);
        let headers = lines
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let name = http::HeaderName::from_bytes(line[..colon].trim_ascii()).ok()?;
                let value = http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?;
                Some((name, value))
            })
            .collect();
        RawAnswer {
            status,
            headers,
            body: body.to_vec(),
        }
    }

    pub fn response(&self) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(self.body.clone());
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).expect("status checked in parse");
        for (name, value) in &self.headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        response
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vector_and_a_fresh_signature_verify() {
        assert!(entitle_verify::verify(vector_token(), key(), &expected()).is_ok());
        let header = br#"{"alg":"PS256"}"#;
        let payload =
            br#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001"}"#;
        let token = sign(header, payload);
        let verdict = entitle_verify::verify(&token, key(), &expected());
        assert!(verdict.is_ok());
        assert_eq!(contract(header, payload), Contract::Accept);
        check_against_contract(header, payload, &verdict);
    }

    #[test]
    fn the_contract_rejects_what_the_readme_says() {
        let good =
            br#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001"}"#;
        for header in [
            &br#"{"alg":"RS256"}"#[..],
            br#"{"alg":"PS256","crit":["x"]}"#,
            br#"["PS256"]"#,
            br#"{"alg":["PS256"]}"#,
        ] {
            assert_eq!(contract(header, good), Contract::Reject);
        }
        for payload in [
            &br#"{"productCode":"prod-example","publicKeyVersion":1.0,"nonce":"vector-nonce-0001"}"#[..],
            br#"{"productCode":"prod-example","publicKeyVersion":"1","nonce":"vector-nonce-0001"}"#,
            br#"{"productCode":"prod-example","publicKeyVersion":1}"#,
            br#"["prod-example",1,"vector-nonce-0001"]"#,
        ] {
            assert_eq!(contract(br#"{"alg":"PS256"}"#, payload), Contract::Reject);
        }
        let dup = br#"{"productCode":"x","productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001"}"#;
        assert_eq!(contract(br#"{"alg":"PS256"}"#, dup), Contract::Either);
    }

    #[test]
    fn the_deviations_fuzzing_found_are_rejected_now() {
        let good =
            br#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001"}"#;
        for (header, payload) in [
            (&br#"{"alg":"PS256","crit":null}"#[..], &good[..]),
            (br#"["PS256",null]"#, good),
            (
                br#"{"alg":"PS256"}"#,
                br#"["prod-example",1,"vector-nonce-0001",null]"#,
            ),
            (b"{\"alg\":\"PS256\",\"typ\":\"\xabWT\"}", good),
        ] {
            let token = sign(header, payload);
            let verdict = entitle_verify::verify(&token, key(), &expected());
            assert!(verdict.is_err(), "{verdict:?}");
            assert_eq!(contract(header, payload), Contract::Reject);
            check_against_contract(header, payload, &verdict);
        }
    }

    #[test]
    fn nesting_past_the_json_depth_limit_is_rejected_even_in_ignored_members() {
        let deep = format!(
            r#"{{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001","x":{}{}}}"#,
            "[".repeat(500),
            "]".repeat(500)
        );
        let token = sign(br#"{"alg":"PS256"}"#, deep.as_bytes());
        assert!(entitle_verify::verify(&token, key(), &expected()).is_err());
        assert_eq!(
            contract(br#"{"alg":"PS256"}"#, deep.as_bytes()),
            Contract::Reject
        );
    }

    #[test]
    fn raw_answers_parse_leniently() {
        let raw = RawAnswer::parse(
            b"HTTP/1.1 503 Slow Down\r\nx-amzn-ErrorType: X\r\nbad header\r\n\r\n{}",
        );
        assert_eq!(raw.status, 503);
        assert_eq!(raw.headers.len(), 1);
        assert_eq!(raw.body, b"{}");
        assert_eq!(RawAnswer::parse(b"garbage").status, 200);
    }
}
