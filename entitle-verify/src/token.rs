//! Pure verification of the `RegisterUsage` signature: bytes in, verdict out, no I/O.
//!
//! The token is a compact JWS (RFC 7515 §7.1) signed with PS256: RSASSA-PSS with SHA-256, MGF1
//! SHA-256 and a 32-byte salt (RFC 7518 §3.5). AWS documents the algorithm; the claim names and
//! types (`productCode`, `publicKeyVersion` as a JSON number, `nonce`, `iat`) are the ones AWS's own
//! Java verifier and the shipped Go integrations read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, RSA_PSS_2048_8192_SHA256};
use serde_json::{Map, Value};
use std::fmt;

pub use crate::key::PublicKey;

/// Tokens larger than this are rejected before any decoding. Real ones are well under 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// A verified entitlement: the token AWS returned and what it was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub product_code: String,
    pub public_key_version: u64,
    pub nonce: String,
    /// The JWT exactly as received.
    pub token: String,
    /// The token's `iat` claim (seconds since the epoch), if present. Recorded, never judged:
    /// node clocks drift and AWS sets no `exp`.
    pub issued_at: Option<i64>,
}

/// What the token must say: exactly what was sent in the request.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub product_code: &'a str,
    pub public_key_version: u64,
    pub nonce: &'a str,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    TooLarge(usize),
    Malformed(String),
    Algorithm(String),
    CriticalHeader,
    BadSignature,
    ClaimMismatch {
        claim: &'static str,
        expected: String,
        found: String,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::TooLarge(n) => write!(
                f,
                "token is {n} bytes, over the {MAX_TOKEN_BYTES}-byte limit; the endpoint is not AWS Marketplace"
            ),
            Rejection::Malformed(why) => write!(f, "token is not a valid compact JWS: {why}"),
            Rejection::Algorithm(alg) => write!(
                f,
                "token header alg is {alg}, only PS256 is accepted; the token was not issued by AWS Marketplace"
            ),
            Rejection::CriticalHeader => {
                write!(f, "token header has a \"crit\" member; no extensions are understood (RFC 7515 §4.1.11)")
            }
            Rejection::BadSignature => write!(
                f,
                "PS256 signature does not verify with the configured public key; check the key and public key version match the product, or the answer was forged"
            ),
            Rejection::ClaimMismatch { claim, expected, found } => write!(
                f,
                "token claim {claim} is {found}, expected {expected}; {}",
                mismatch_meaning(claim)
            ),
        }
    }
}

impl std::error::Error for Rejection {}

/// What a mismatch of each claim says about the token.
fn mismatch_meaning(claim: &str) -> &'static str {
    match claim {
        "productCode" => "the token was issued for another product (a free listing's code, or a misconfigured product code)",
        "publicKeyVersion" => "the token was issued for another key version; check --public-key-version matches the product's key",
        _ => "the token was issued for another request (an earlier token replayed, or an answer meant for another caller)",
    }
}

/// A decoded JOSE header or claims set: always a JSON object (RFC 7515 §4, RFC 7519 §7.2).
/// Parsing the whole object as `Value`s also checks every string is UTF-8, including members
/// that are ignored (RFC 8259 §8.1).
type JsonObject = Map<String, Value>;

/// Verifies `token` with `key` and checks its claims against `expected`.
///
/// Order matters: size, structure and `alg` first, then the signature, and only then is the
/// (now authenticated) payload parsed.
pub fn verify(token: &str, key: &PublicKey, expected: &Expected) -> Result<Entitlement, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::TooLarge(token.len()));
    }
    let (header_b64, payload_b64, signature_b64) = split_compact(token)?;
    check_header(&decode_part("header", header_b64)?)?;
    let signature = decode_part("signature", signature_b64)?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, key.pkcs1_der())
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| Rejection::BadSignature)?;
    let claims = parse_object("payload", &decode_part("payload", payload_b64)?)?;
    check_claims(&claims, expected)?;
    Ok(Entitlement {
        product_code: expected.product_code.to_owned(),
        public_key_version: expected.public_key_version,
        nonce: expected.nonce.to_owned(),
        token: token.to_owned(),
        issued_at: claims
            .get("iat")
            .and_then(Value::as_f64)
            .map(|t| t.floor() as i64),
    })
}

fn split_compact(token: &str) -> Result<(&str, &str, &str), Rejection> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(Rejection::Malformed(format!(
            "expected 3 dot-separated parts, found {}",
            token.split('.').count()
        ))),
    }
}

fn decode_part(name: &str, b64: &str) -> Result<Vec<u8>, Rejection> {
    if b64.is_empty() {
        return Err(Rejection::Malformed(format!("{name} is empty")));
    }
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|e| Rejection::Malformed(format!("{name} is not base64url: {e}")))
}

fn parse_object(name: &str, bytes: &[u8]) -> Result<JsonObject, Rejection> {
    serde_json::from_slice(bytes)
        .map_err(|e| Rejection::Malformed(format!("{name} is not a JSON object: {e}")))
}

fn check_header(bytes: &[u8]) -> Result<(), Rejection> {
    let header = parse_object("header", bytes)?;
    match header.get("alg") {
        Some(alg) if alg == "PS256" => {}
        Some(alg) => return Err(Rejection::Algorithm(alg.to_string())),
        None => return Err(Rejection::Algorithm("missing".into())),
    }
    // Any `crit`, even null: no extension is understood (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(Rejection::CriticalHeader);
    }
    Ok(())
}

fn check_claims(claims: &JsonObject, expected: &Expected) -> Result<(), Rejection> {
    check_claim(
        "productCode",
        claims.get("productCode"),
        &Value::from(expected.product_code),
    )?;
    check_claim(
        "publicKeyVersion",
        claims.get("publicKeyVersion"),
        &Value::from(expected.public_key_version),
    )?;
    check_claim("nonce", claims.get("nonce"), &Value::from(expected.nonce))
}

/// Exact JSON equality: a string "1" is not the number 1, and 1.0 is not 1.
fn check_claim(
    claim: &'static str,
    found: Option<&Value>,
    expected: &Value,
) -> Result<(), Rejection> {
    match found {
        Some(value) if value == expected => Ok(()),
        other => Err(Rejection::ClaimMismatch {
            claim,
            expected: expected.to_string(),
            found: other.map_or_else(|| "missing".to_owned(), |v| truncate(&v.to_string(), 80)),
        }),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::test_keys;

    const NONCE: &str = "n0nce-AbC_123";

    fn expected() -> Expected<'static> {
        Expected {
            product_code: "prod-abc123",
            public_key_version: 1,
            nonce: NONCE,
        }
    }

    fn sign(header: &str, payload: &str) -> String {
        test_keys::sign_ps256(test_keys::PRIVATE_2048, header, payload)
    }

    fn good_payload() -> String {
        format!(
            r#"{{"productCode":"prod-abc123","publicKeyVersion":1,"nonce":"{NONCE}","iat":1764460800}}"#
        )
    }

    fn key() -> PublicKey {
        PublicKey::from_pem(test_keys::PUBLIC_2048_SPKI).unwrap()
    }

    #[test]
    fn accepts_a_good_token_and_records_iat() {
        let token = sign(r#"{"alg":"PS256","typ":"JWT"}"#, &good_payload());
        let ent = verify(&token, &key(), &expected()).unwrap();
        assert_eq!(ent.issued_at, Some(1764460800));
        assert_eq!(ent.token, token);
        assert_eq!(ent.public_key_version, 1);
    }

    #[test]
    fn accepts_the_pkcs1_form_of_the_same_key() {
        let token = sign(r#"{"alg":"PS256"}"#, &good_payload());
        let pkcs1 = PublicKey::from_pem(test_keys::PUBLIC_2048_PKCS1).unwrap();
        assert!(verify(&token, &pkcs1, &expected()).is_ok());
    }

    #[test]
    fn ignores_unknown_claims_and_header_fields_and_missing_iat() {
        let payload = format!(
            r#"{{"productCode":"prod-abc123","publicKeyVersion":1,"nonce":"{NONCE}","extra":[1,2]}}"#
        );
        let token = sign(r#"{"alg":"PS256","typ":"JWT","kid":"x"}"#, &payload);
        assert_eq!(verify(&token, &key(), &expected()).unwrap().issued_at, None);
    }

    #[test]
    fn rejects_every_other_algorithm() {
        for alg in [
            "none", "HS256", "RS256", "ES256", "PS384", "ps256", "PS256 ",
        ] {
            let token = sign(&format!(r#"{{"alg":"{alg}"}}"#), &good_payload());
            assert_eq!(
                verify(&token, &key(), &expected()),
                Err(Rejection::Algorithm(format!("\"{alg}\""))),
                "{alg}"
            );
        }
        let token = sign(r#"{"alg":["PS256"]}"#, &good_payload());
        assert!(matches!(
            verify(&token, &key(), &expected()),
            Err(Rejection::Algorithm(_))
        ));
    }

    #[test]
    fn rejects_crit_headers_even_null() {
        for header in [
            r#"{"alg":"PS256","crit":["exp"]}"#,
            r#"{"alg":"PS256","crit":null}"#,
        ] {
            let token = sign(header, &good_payload());
            assert_eq!(
                verify(&token, &key(), &expected()),
                Err(Rejection::CriticalHeader)
            );
        }
    }

    /// Found by the `verify_signed` fuzz target: arrays in field order and invalid UTF-8 in
    /// ignored members used to pass (serde's derived Deserialize accepts sequences and skips
    /// unread strings unchecked).
    #[test]
    fn header_and_claims_must_be_utf8_json_objects() {
        let good = good_payload();
        let signed = |header: &[u8], payload: &[u8]| {
            test_keys::sign_ps256_bytes(test_keys::PRIVATE_2048, header, payload)
        };
        let cases: [(&[u8], &[u8]); 4] = [
            (br#"["PS256",null]"#, good.as_bytes()),
            (br#"{"alg":"PS256"}"#, br#"["prod-abc123",1,"n0nce-AbC_123",1]"#),
            (b"{\"alg\":\"PS256\",\"typ\":\"\xabWT\"}", good.as_bytes()),
            (br#"{"alg":"PS256"}"#, b"{\"productCode\":\"prod-abc123\",\"publicKeyVersion\":1,\"nonce\":\"n0nce-AbC_123\",\"x\":\"\xc3\"}"),
        ];
        for (header, payload) in cases {
            let token = signed(header, payload);
            assert!(
                matches!(
                    verify(&token, &key(), &expected()),
                    Err(Rejection::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn rejects_a_signature_from_another_key() {
        let token = test_keys::sign_ps256(
            test_keys::PRIVATE_OTHER_2048,
            r#"{"alg":"PS256"}"#,
            &good_payload(),
        );
        assert_eq!(
            verify(&token, &key(), &expected()),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn rejects_each_mismatched_claim() {
        let cases = [
            (
                "productCode",
                r#"{"productCode":"free-prod","publicKeyVersion":1,"nonce":"n0nce-AbC_123"}"#,
            ),
            (
                "publicKeyVersion",
                r#"{"productCode":"prod-abc123","publicKeyVersion":2,"nonce":"n0nce-AbC_123"}"#,
            ),
            (
                "publicKeyVersion",
                r#"{"productCode":"prod-abc123","publicKeyVersion":"1","nonce":"n0nce-AbC_123"}"#,
            ),
            (
                "publicKeyVersion",
                r#"{"productCode":"prod-abc123","publicKeyVersion":1.0,"nonce":"n0nce-AbC_123"}"#,
            ),
            (
                "nonce",
                r#"{"productCode":"prod-abc123","publicKeyVersion":1,"nonce":"older-nonce"}"#,
            ),
            (
                "nonce",
                r#"{"productCode":"prod-abc123","publicKeyVersion":1}"#,
            ),
            (
                "productCode",
                r#"{"ProductCode":"prod-abc123","PublicKeyVersion":1,"Nonce":"n0nce-AbC_123"}"#,
            ),
        ];
        for (claim, payload) in cases {
            let token = sign(r#"{"alg":"PS256"}"#, payload);
            match verify(&token, &key(), &expected()) {
                Err(Rejection::ClaimMismatch { claim: c, .. }) => assert_eq!(c, claim, "{payload}"),
                other => panic!("{payload}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_structural_garbage_without_panicking() {
        let good = sign(r#"{"alg":"PS256"}"#, &good_payload());
        let cases = [
            String::new(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "..".to_owned(),
            "!!!.???.***".to_owned(),
            good[..good.len() - 10].to_owned(),
            format!("{good}="),
            format!("{good}.x"),
        ];
        for token in cases {
            assert!(verify(&token, &key(), &expected()).is_err(), "{token}");
        }
    }

    #[test]
    fn rejects_any_single_byte_change() {
        let good = sign(r#"{"alg":"PS256"}"#, &good_payload());
        for i in 0..good.len() {
            let mut bytes = good.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(token) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(verify(&token, &key(), &expected()).is_err(), "byte {i}");
        }
    }

    #[test]
    fn rejects_oversized_tokens_before_decoding() {
        let token = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            verify(&token, &key(), &expected()),
            Err(Rejection::TooLarge(MAX_TOKEN_BYTES + 1))
        );
    }

    #[test]
    fn rejection_messages_are_one_line() {
        let long = Rejection::ClaimMismatch {
            claim: "nonce",
            expected: "\"a\"".into(),
            found: truncate(&Value::from("x\ny".repeat(100)).to_string(), 80),
        };
        assert!(!long.to_string().contains('\n'));
        assert!(long.to_string().contains('…'));
    }
}
