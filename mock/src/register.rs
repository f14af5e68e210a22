//! The RegisterUsage request body: `{"ProductCode":..,"PublicKeyVersion":..,"Nonce":..}`.

use serde_json::Value;

use crate::aws::{constraint, not_null, serialization, AwsError};

pub const TARGET: &str = "AWSMPMeteringService.RegisterUsage";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub product_code: String,
    pub version: i64,
    pub nonce: Option<String>,
}

/// Parses and validates the body the way the service model constrains it.
pub fn parse_body(body: &[u8]) -> Result<Usage, AwsError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| serialization(format!("Request body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(serialization("Request body must be a JSON object"));
    };
    let product_code = match map.get("ProductCode") {
        None | Some(Value::Null) => return Err(not_null("productCode")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(serialization("ProductCode must be a string")),
    };
    let version = match map.get("PublicKeyVersion") {
        None | Some(Value::Null) => return Err(not_null("publicKeyVersion")),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| serialization("PublicKeyVersion must be an integer"))?,
    };
    let nonce = match map.get("Nonce") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(serialization("Nonce must be a string")),
    };
    check_constraints(&product_code, version, nonce.as_deref())?;
    Ok(Usage {
        product_code,
        version,
        nonce,
    })
}

fn check_constraints(
    product_code: &str,
    version: i64,
    nonce: Option<&str>,
) -> Result<(), AwsError> {
    check_product_code(product_code)?;
    if version < 1 {
        return Err(constraint(
            &version.to_string(),
            "publicKeyVersion",
            "Member must have value greater than or equal to 1",
        ));
    }
    if nonce.is_some_and(|n| n.chars().count() > 255) {
        return Err(constraint(
            "(nonce)",
            "nonce",
            "Member must have length less than or equal to 255",
        ));
    }
    Ok(())
}

/// ProductCode's model constraints, shared by RegisterUsage and MeterUsage.
pub fn check_product_code(product_code: &str) -> Result<(), AwsError> {
    let code_len = product_code.chars().count();
    if !(1..=255).contains(&code_len) {
        return Err(constraint(
            product_code,
            "productCode",
            "Member must have length between 1 and 255",
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-/=:_.@".contains(c);
    if !product_code.chars().all(allowed) {
        return Err(constraint(
            product_code,
            "productCode",
            "Member must satisfy regular expression pattern: ^[-a-zA-Z0-9/=:_.@]*$",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> &'static str {
        parse_body(body.as_bytes()).unwrap_err().name
    }

    #[test]
    fn accepts_what_the_sdk_sends() {
        let u =
            parse_body(br#"{"ProductCode":"prod-123","PublicKeyVersion":1,"Nonce":"n"}"#).unwrap();
        assert_eq!(u.product_code, "prod-123");
        assert_eq!(u.version, 1);
        assert_eq!(u.nonce.as_deref(), Some("n"));
        let u = parse_body(br#"{"ProductCode":"p","PublicKeyVersion":2}"#).unwrap();
        assert_eq!(u.nonce, None);
    }

    #[test]
    fn rejects_bad_bodies() {
        assert_eq!(err("not json"), "SerializationException");
        assert_eq!(err("[]"), "SerializationException");
        assert_eq!(
            err(r#"{"ProductCode":1,"PublicKeyVersion":1}"#),
            "SerializationException"
        );
        assert_eq!(
            err(r#"{"ProductCode":"p","PublicKeyVersion":"1"}"#),
            "SerializationException"
        );
        assert_eq!(
            err(r#"{"ProductCode":"p","PublicKeyVersion":1.5}"#),
            "SerializationException"
        );
        assert_eq!(
            err(r#"{"ProductCode":"p","PublicKeyVersion":1,"Nonce":5}"#),
            "SerializationException"
        );
        assert_eq!(err(r#"{"PublicKeyVersion":1}"#), "ValidationException");
        assert_eq!(err(r#"{"ProductCode":"p"}"#), "ValidationException");
        assert_eq!(
            err(r#"{"ProductCode":"p","PublicKeyVersion":0}"#),
            "ValidationException"
        );
        assert_eq!(
            err(r#"{"ProductCode":"p q","PublicKeyVersion":1}"#),
            "ValidationException"
        );
        let long = format!(
            r#"{{"ProductCode":"p","PublicKeyVersion":1,"Nonce":"{}"}}"#,
            "n".repeat(256)
        );
        assert_eq!(err(&long), "ValidationException");
    }
}
