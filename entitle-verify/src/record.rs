//! The entitlement record: what `entitle check --output` writes for the workload to read, and
//! what `entitle verify --record` checks again. JSON, stable field names. Pure: reading and
//! writing the file is the caller's business.

use crate::token::Entitlement;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// JSON layout of the record file (stable; documented in entitle's README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub product_code: String,
    pub public_key_version: u64,
    pub nonce: String,
    /// The JWT exactly as AWS returned it.
    pub signature: String,
    /// The token's `iat`, RFC 3339, or null when the token had none.
    pub issued_at: Option<String>,
    /// When the token was verified, RFC 3339.
    pub verified_at: String,
    /// Set when AWS reported that the public key version has expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_rotation_timestamp: Option<String>,
}

impl Record {
    pub fn new(entitlement: &Entitlement, key_rotation: Option<String>, now: SystemTime) -> Record {
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Record {
            product_code: entitlement.product_code.clone(),
            public_key_version: entitlement.public_key_version,
            nonce: entitlement.nonce.clone(),
            signature: entitlement.token.clone(),
            issued_at: entitlement.issued_at.and_then(rfc3339),
            verified_at: rfc3339(i64::try_from(now_secs).unwrap_or(i64::MAX)).unwrap_or_default(),
            public_key_rotation_timestamp: key_rotation,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn from_json(text: &str) -> Result<Record, String> {
        serde_json::from_str(text).map_err(|e| format!("not an entitle record: {e}"))
    }
}

/// Seconds since the epoch as `2026-11-30T03:15:00Z`; `None` outside years 1970..=9999.
pub fn rfc3339(secs: i64) -> Option<String> {
    const LAST_SECOND_OF_9999: u64 = 253_402_300_799;
    let secs = u64::try_from(secs)
        .ok()
        .filter(|s| *s <= LAST_SECOND_OF_9999)?;
    Some(humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entitlement() -> Entitlement {
        Entitlement {
            product_code: "prod".into(),
            public_key_version: 2,
            nonce: "n".into(),
            token: "h.p.s".into(),
            issued_at: Some(1_764_460_800),
        }
    }

    #[test]
    fn record_round_trips_with_the_documented_field_names() {
        let record = Record::new(
            &entitlement(),
            None,
            UNIX_EPOCH + Duration::from_secs(1_764_460_801),
        );
        let json = record.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["productCode"], "prod");
        assert_eq!(value["publicKeyVersion"], 2);
        assert_eq!(value["signature"], "h.p.s");
        assert_eq!(value["issuedAt"], "2025-11-30T00:00:00Z");
        assert_eq!(value["verifiedAt"], "2025-11-30T00:00:01Z");
        assert!(value.get("publicKeyRotationTimestamp").is_none());
        assert_eq!(Record::from_json(&json).unwrap(), record);
    }

    #[test]
    fn times_outside_the_calendar_are_null_not_a_crash() {
        assert_eq!(rfc3339(-1), None);
        assert_eq!(rfc3339(253_402_300_800), None);
        assert_eq!(rfc3339(i64::MAX), None);
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        let mut far = entitlement();
        far.issued_at = Some(i64::MIN);
        assert_eq!(Record::new(&far, None, UNIX_EPOCH).issued_at, None);
    }
}
