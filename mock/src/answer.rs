//! Builds the reply for each answer mode: real tokens, AWS errors, HTTP faults, forgeries.

use std::sync::OnceLock;

use rsa::PrivateKey;
use serde_json::{json, Map, Value};

use crate::aws::{json_response, AwsError};
use crate::http::Response;
use crate::jwt;
use crate::keys;
use crate::register::Usage;
use crate::script::Mode;

const ROTATION_NOTICE_SECS: i64 = 30 * 86_400;
const HUGE_BODY_BYTES: usize = 20 * 1024 * 1024;
const HUGE_PADDING_CHARS: usize = 70_000;

/// What to send, and what to do with the connection afterwards.
pub enum Reply {
    /// A well-formed response; the connection stays open unless the client asked to close.
    Normal(Response),
    /// Exact bytes (possibly none), then the given ending.
    Raw(Vec<u8>, After),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Close normally (FIN).
    Close,
    /// Keep the socket open, reading and discarding, until the client goes away.
    Hold,
    /// Close with RST.
    Reset,
}

pub struct Signer {
    key: PrivateKey,
    public_pem: String,
    wrong_key: OnceLock<Result<PrivateKey, String>>,
    first_ok: OnceLock<String>,
}

impl Signer {
    pub fn new(key: PrivateKey) -> Result<Signer, String> {
        Ok(Signer {
            public_pem: keys::public_pem(&key)?,
            key,
            wrong_key: OnceLock::new(),
            first_ok: OnceLock::new(),
        })
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// A second key of the same size, made on first use (key generation takes a while).
    fn wrong_key(&self) -> Result<&PrivateKey, String> {
        let bits = rsa::traits::PublicKeyParts::size(&self.key) * 8;
        self.wrong_key
            .get_or_init(|| keys::generate(bits))
            .as_ref()
            .map_err(Clone::clone)
    }
}

pub fn answer(mode: Mode, usage: &Usage, signer: &Signer, now: i64) -> Reply {
    if let Some(error) = aws_error(mode) {
        return Reply::Normal(error.response());
    }
    if let Some(reply) = fault(mode, usage, signer, now) {
        return reply;
    }
    match token(mode, usage, signer, now) {
        Ok(body) => Reply::Normal(json_response(200, &body)),
        Err(e) => Reply::Normal(
            AwsError::new(
                500,
                "InternalServiceErrorException",
                format!("entitle-mock: {e}"),
            )
            .response(),
        ),
    }
}

/// The AWS error a mode answers with, if it is one.
pub fn aws_error(mode: Mode) -> Option<AwsError> {
    let (status, name, message) = match mode {
        Mode::NotEntitled => (400, "CustomerNotEntitledException", "Customer does not have a valid subscription for this product."),
        Mode::PlatformNotSupported => (400, "PlatformNotSupportedException", "AWS Marketplace does not support metering usage from the underlying platform. Currently, Amazon ECS, Amazon EKS, and AWS Fargate are supported."),
        Mode::InvalidProductCode => (400, "InvalidProductCodeException", "The product code passed does not match the product code used for publishing the product."),
        Mode::InvalidPublicKeyVersion => (400, "InvalidPublicKeyVersionException", "Public Key version is invalid."),
        Mode::InvalidRegion => (400, "InvalidRegionException", "RegisterUsage must be called in the same AWS Region the ECS task was launched in."),
        Mode::DisabledApi => (400, "DisabledApiException", "The API is disabled in the Region."),
        Mode::AccessDenied => (400, "AccessDeniedException", "User is not authorized to perform: aws-marketplace:RegisterUsage"),
        Mode::UnrecognizedClient => (400, "UnrecognizedClientException", "The security token included in the request is invalid."),
        Mode::Throttle => (400, "ThrottlingException", "Rate exceeded"),
        Mode::InternalError => (500, "InternalServiceErrorException", "An internal error has occurred. Retry your request."),
        _ => return None,
    };
    Some(AwsError::new(status, name, message))
}

const HTML: &str =
    "<html><head><title>Error</title></head><body><h1>Bad Gateway</h1></body></html>\n";

fn fault(mode: Mode, usage: &Usage, signer: &Signer, now: i64) -> Option<Reply> {
    if mode != Mode::LengthMismatch {
        return http_fault(mode);
    }
    let body = ok_body(usage, signer, now).ok()?;
    Some(Reply::Raw(
        concat(json_head(body.len() / 2), body.as_bytes()),
        After::Close,
    ))
}

fn json_head(content_length: usize) -> Vec<u8> {
    Response::new(200, crate::aws::JSON_1_1, "").head_bytes(content_length, false)
}

/// The faults that need nothing from the request: broken HTTP, wrong content, stalls, resets.
pub fn http_fault(mode: Mode) -> Option<Reply> {
    let reply = match mode {
        Mode::Http502Html => Reply::Normal(Response::new(502, "text/html", HTML)),
        Mode::Http503Empty => Reply::Normal(Response::new(503, "", "")),
        Mode::NotJson => Reply::Normal(Response::new(200, "text/html", HTML)),
        Mode::Stall | Mode::NoRead => Reply::Raw(Vec::new(), After::Hold),
        Mode::StallBody => Reply::Raw(concat(json_head(500), b"{\"Signa"), After::Hold),
        Mode::Reset => Reply::Raw(Vec::new(), After::Reset),
        Mode::CloseMidBody => Reply::Raw(concat(json_head(1000), b"{\"Signatur"), After::Close),
        Mode::ChunkedGarbage => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                crate::aws::JSON_1_1
            );
            let body = b"zz-not-a-chunk-size\r\n{\"Signature\":\"x\"}\r\n0\r\n\r\n";
            Reply::Raw(concat(head.into_bytes(), body), After::Close)
        }
        Mode::HugeBody => {
            let mut body = b"{\"Signature\":\"".to_vec();
            body.resize(HUGE_BODY_BYTES - 2, b'A');
            body.extend_from_slice(b"\"}");
            Reply::Raw(concat(json_head(body.len()), &body), After::Close)
        }
        _ => return None,
    };
    Some(reply)
}

fn concat(mut head: Vec<u8>, body: &[u8]) -> Vec<u8> {
    head.extend_from_slice(body);
    head
}

fn ok_body(usage: &Usage, signer: &Signer, now: i64) -> Result<String, String> {
    token(Mode::Ok, usage, signer, now).map(|v| v.to_string())
}

fn payload(claims: Map<String, Value>) -> String {
    Value::Object(claims).to_string()
}

/// The 200 body for the token-carrying modes.
fn token(mode: Mode, usage: &Usage, signer: &Signer, now: i64) -> Result<Value, String> {
    let claims =
        |code: &str, version: i64, nonce: Option<&str>| jwt::claims(code, version, nonce, now);
    let right = claims(&usage.product_code, usage.version, usage.nonce.as_deref());
    let ps256 =
        |c: Map<String, Value>| jwt::ps256(&signer.key, &payload(c)).map_err(|e| e.to_string());
    let signature = match mode {
        Mode::Ok => {
            let token = ps256(right)?;
            let _ = signer.first_ok.set(token.clone());
            token
        }
        Mode::OkRotation => {
            let token = ps256(right)?;
            return Ok(
                json!({ "Signature": token, "PublicKeyRotationTimestamp": now + ROTATION_NOTICE_SECS }),
            );
        }
        Mode::WrongKey => {
            jwt::ps256(signer.wrong_key()?, &payload(right)).map_err(|e| e.to_string())?
        }
        Mode::AlgNone => jwt::unsigned(&payload(right)),
        Mode::Hs256 => jwt::hs256(signer.public_pem.as_bytes(), &payload(right)),
        Mode::Rs256 => jwt::rs256(&signer.key, &payload(right)).map_err(|e| e.to_string())?,
        Mode::WrongProductCode => ps256(claims(
            &format!("wrong-{}", usage.product_code),
            usage.version,
            usage.nonce.as_deref(),
        ))?,
        Mode::WrongNonce => {
            let nonce = format!("{}-wrong", usage.nonce.as_deref().unwrap_or("nonce"));
            ps256(claims(&usage.product_code, usage.version, Some(&nonce)))?
        }
        Mode::WrongVersion => ps256(claims(
            &usage.product_code,
            usage.version.saturating_add(1),
            usage.nonce.as_deref(),
        ))?,
        Mode::VersionAsString => {
            let mut c = right;
            c.insert("publicKeyVersion".into(), json!(usage.version.to_string()));
            ps256(c)?
        }
        Mode::MissingNonce => ps256(claims(&usage.product_code, usage.version, None))?,
        Mode::Replay => match signer.first_ok.get() {
            Some(token) => token.clone(),
            None => ps256(claims(
                &usage.product_code,
                usage.version,
                Some("replayed-nonce"),
            ))?,
        },
        Mode::Tampered => tamper(&ps256(right)?),
        Mode::Truncated => {
            let token = ps256(right)?;
            token[..token.len() - 10].to_string()
        }
        Mode::Garbage => "this.is-not.a-jwt!".into(),
        Mode::Empty => String::new(),
        Mode::NoSignature => return Ok(json!({})),
        Mode::Huge => {
            let mut c = right;
            c.insert("padding".into(), json!("x".repeat(HUGE_PADDING_CHARS)));
            ps256(c)?
        }
        other => return Err(format!("mode {other} carries no token")),
    };
    Ok(json!({ "Signature": signature }))
}

/// Changes one character of the payload (the last digit of `iat`) after signing, so the JSON
/// and the claims stay plausible and only the signature check can catch it.
fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let decoded =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
            .unwrap_or_default();
    let mut text = String::from_utf8(decoded).unwrap_or_default();
    let digit_at = text.find("\"iat\":").and_then(|i| {
        let start = i + 6;
        let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
        (digits > 0).then(|| start + digits - 1)
    });
    if let Some(at) = digit_at {
        let d = text.as_bytes()[at] - b'0';
        text.replace_range(at..=at, &((d + 1) % 10).to_string());
    }
    parts[1] = jwt::b64url(text.as_bytes());
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rsa::sha2::Sha256;

    fn usage() -> Usage {
        Usage {
            product_code: "prod-1".into(),
            version: 1,
            nonce: Some("abc".into()),
        }
    }

    fn signer() -> Signer {
        Signer::new(keys::generate(1024).unwrap()).unwrap()
    }

    fn signature_of(mode: Mode, s: &Signer) -> String {
        let v = token(mode, &usage(), s, 1_700_000_000).unwrap();
        v["Signature"].as_str().unwrap_or_default().to_string()
    }

    fn verifies(token: &str, s: &Signer) -> bool {
        let Some((input, sig)) = token.rsplit_once('.') else {
            return false;
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        s.key()
            .to_public_key()
            .pss_verify::<Sha256>(input.as_bytes(), &sig)
            .is_ok()
    }

    fn claims_of(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn ok_token_is_valid_and_replayed() {
        let s = signer();
        let first = signature_of(Mode::Ok, &s);
        assert!(verifies(&first, &s));
        assert_eq!(
            claims_of(&first),
            json!({"productCode":"prod-1","publicKeyVersion":1,"nonce":"abc","iat":1_700_000_000})
        );
        signature_of(Mode::Ok, &s);
        assert_eq!(signature_of(Mode::Replay, &s), first);
    }

    #[test]
    fn forgeries_fail_verification_or_claims() {
        let s = signer();
        assert!(!verifies(&signature_of(Mode::Tampered, &s), &s));
        assert_eq!(
            claims_of(&signature_of(Mode::Tampered, &s))["productCode"],
            "prod-1"
        );
        assert!(!verifies(&signature_of(Mode::Truncated, &s), &s));
        assert!(!verifies(&signature_of(Mode::AlgNone, &s), &s));
        assert!(!verifies(&signature_of(Mode::Rs256, &s), &s));
        assert!(!verifies(&signature_of(Mode::WrongKey, &s), &s));
        let replay = signature_of(Mode::Replay, &s);
        assert!(verifies(&replay, &s));
        assert_eq!(claims_of(&replay)["nonce"], "replayed-nonce");
        let wrong = signature_of(Mode::WrongVersion, &s);
        assert!(verifies(&wrong, &s));
        assert_eq!(claims_of(&wrong)["publicKeyVersion"], 2);
        assert_eq!(
            claims_of(&signature_of(Mode::VersionAsString, &s))["publicKeyVersion"],
            "1"
        );
        assert!(claims_of(&signature_of(Mode::MissingNonce, &s))
            .get("nonce")
            .is_none());
        let huge = signature_of(Mode::Huge, &s);
        assert!(huge.len() > 64 * 1024 && verifies(&huge, &s));
    }

    #[test]
    fn rotation_timestamp_is_a_number() {
        let s = signer();
        let v = token(Mode::OkRotation, &usage(), &s, 100).unwrap();
        assert_eq!(v["PublicKeyRotationTimestamp"], 100 + ROTATION_NOTICE_SECS);
    }

    #[test]
    fn every_mode_answers_without_panicking() {
        let s = signer();
        for name in Mode::all_names() {
            let mode = Mode::from_name(name).unwrap();
            if mode == Mode::HugeBody {
                continue;
            }
            let _ = answer(mode, &usage(), &s, 1);
        }
    }
}
