//! Compact JWS tokens: the real PS256 one and the forged variants.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::sha2::Sha256;
use rsa::PrivateKey;
use serde_json::{json, Map, Value};

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims AWS puts in a RegisterUsage token. The nonce claim is left out when the
/// request had none (what AWS does then is not documented).
pub fn claims(
    product_code: &str,
    version: i64,
    nonce: Option<&str>,
    iat: i64,
) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("productCode".into(), json!(product_code));
    claims.insert("publicKeyVersion".into(), json!(version));
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    claims.insert("iat".into(), json!(iat));
    claims
}

/// `b64url(header).b64url(payload)`, the part a JWS signature covers.
pub fn signing_input(alg: &str, payload: &str) -> String {
    let header = json!({ "alg": alg, "typ": "JWT" }).to_string();
    format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    )
}

/// RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 bytes (RFC 7518 PS256).
pub fn ps256(key: &PrivateKey, payload: &str) -> Result<String, rsa::Error> {
    let input = signing_input("PS256", payload);
    let sig = key.pss_sign::<Sha256>(input.as_bytes())?;
    Ok(format!("{input}.{}", b64url(&sig)))
}

/// RSASSA-PKCS1-v1_5 SHA-256 (RS256).
pub fn rs256(key: &PrivateKey, payload: &str) -> Result<String, rsa::Error> {
    let input = signing_input("RS256", payload);
    let sig = key.pkcs1v15_sign::<Sha256>(input.as_bytes())?;
    Ok(format!("{input}.{}", b64url(&sig)))
}

/// HMAC-SHA256 (HS256), the classic algorithm-confusion forgery when keyed with public key text.
pub fn hs256(secret: &[u8], payload: &str) -> String {
    let input = signing_input("HS256", payload);
    let sig = crate::sigv4::hmac(secret, input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

/// `alg: none` with an empty signature part.
pub fn unsigned(payload: &str) -> String {
    format!("{}.", signing_input("none", payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::pss::VerifyingKey;
    use rsa::signature::Verifier;

    fn key() -> PrivateKey {
        PrivateKey::new(&mut rand::rngs::SysRng, 1024).unwrap()
    }

    fn parts(token: &str) -> Vec<Vec<u8>> {
        token
            .split('.')
            .map(|p| URL_SAFE_NO_PAD.decode(p).unwrap())
            .collect()
    }

    #[test]
    fn ps256_verifies_with_salt_32() {
        let key = key();
        let payload = Value::Object(claims("prod-1", 1, Some("n"), 1_700_000_000)).to_string();
        let token = ps256(&key, &payload).unwrap();
        let p = parts(&token);
        assert_eq!(p[0], br#"{"alg":"PS256","typ":"JWT"}"#);
        assert_eq!(p[1], payload.as_bytes());
        assert!(!token.contains('='));
        let input = token.rsplit_once('.').unwrap().0;
        let verifier = VerifyingKey::<Sha256>::new_with_salt_len(key.to_public_key(), 32);
        let sig = rsa::pss::Signature::try_from(p[2].as_slice()).unwrap();
        verifier.verify(input.as_bytes(), &sig).unwrap();
        key.to_public_key()
            .pss_verify::<Sha256>(input.as_bytes(), &p[2])
            .unwrap();
        let other = self::key();
        assert!(other
            .to_public_key()
            .pss_verify::<Sha256>(input.as_bytes(), &p[2])
            .is_err());
    }

    #[test]
    fn claims_have_aws_names_and_types() {
        let c = Value::Object(claims("p", 3, None, 5));
        assert_eq!(
            c,
            json!({"productCode": "p", "publicKeyVersion": 3, "iat": 5})
        );
    }

    #[test]
    fn forged_variants_have_the_announced_header() {
        let token = unsigned("{}");
        assert!(token.ends_with('.'));
        assert_eq!(parts(&token)[0], br#"{"alg":"none","typ":"JWT"}"#);
        let token = hs256(b"k", "{}");
        assert_eq!(parts(&token)[0], br#"{"alg":"HS256","typ":"JWT"}"#);
        assert_eq!(parts(&token)[2].len(), 32);
    }
}
