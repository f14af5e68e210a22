//! The entitlement record: what `entitle check --output` writes for the workload to read, and what
//! `entitle verify --record` checks again. Written atomically (temp file in the same folder, then
//! rename), and only after the token verified.

use crate::verify::Entitlement;
use aws_smithy_types::date_time::{DateTime, Format};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

/// JSON layout of the record file (stable; documented in the README).
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
    /// When `entitle` verified the token, RFC 3339.
    pub verified_at: String,
    /// Set when AWS reported that the public key version has expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_rotation_timestamp: Option<String>,
}

impl Record {
    pub fn new(entitlement: &Entitlement, key_rotation: Option<String>, now: SystemTime) -> Record {
        Record {
            product_code: entitlement.product_code.clone(),
            public_key_version: entitlement.public_key_version,
            nonce: entitlement.nonce.clone(),
            signature: entitlement.token.clone(),
            issued_at: entitlement
                .issued_at
                .map(|secs| rfc3339(DateTime::from_secs(secs))),
            verified_at: rfc3339(DateTime::from(now)),
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

fn rfc3339(time: DateTime) -> String {
    time.fmt(Format::DateTime)
        .unwrap_or_else(|_| time.secs().to_string())
}

/// Writes `contents` to `path` so readers see the old file or the whole new one, never a part.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = std::env::temp_dir().join(format!("entitle-record-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("record.json");
        write_atomically(&path, b"one", 0o644).unwrap();
        write_atomically(&path, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
