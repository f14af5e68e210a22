//! `entitle check`, the whole flow: a fresh nonce → register → verify → the record; for a
//! metered product, a `MeterUsage` dry run of each dimension.

use crate::config::CheckSettings;
use crate::exit::Failure;
use crate::record::{self, Record};
use crate::{nonce, register, sender};
use entitle_verify::record::rfc3339;
use entitle_verify::Entitlement;
use std::time::SystemTime;
use tracing::{info, warn};

/// The start check: RegisterUsage when the product has a key, then the metering dry run when
/// it is metered. The entitlement is the verified RegisterUsage token, if there is one (a
/// MeterUsage check carries no signed token: its trust rests on TLS to AWS).
pub fn check(settings: &CheckSettings) -> Result<Option<Entitlement>, Failure> {
    let entitlement = match settings.product.public_key {
        Some(_) => Some(register_and_verify(settings)?),
        None => None,
    };
    if let Some(metering) = &settings.metering {
        sender::dry_run(
            &settings.product.code,
            &metering.dimensions,
            &settings.aws,
            settings.timeout,
        )?;
    }
    Ok(entitlement)
}

/// Registers a fresh nonce, verifies the answer, writes the record.
fn register_and_verify(settings: &CheckSettings) -> Result<Entitlement, Failure> {
    let product = &settings.product;
    let nonce = nonce::fresh().map_err(Failure::Internal)?;
    let answer = register::register(settings, &nonce)?;
    let rotation = answer.key_rotation.map(|secs| {
        warn_about_rotation(product.public_key_version, secs);
        rfc3339(secs).unwrap_or_else(|| secs.to_string())
    });
    let entitlement = product.verify(&answer.signature, &nonce)?;
    if let Some(path) = &settings.output {
        let record = Record::new(&entitlement, rotation, SystemTime::now());
        record::write_atomically(path, record.to_json().as_bytes(), 0o644).map_err(|e| {
            Failure::Config(format!(
                "cannot write the record to {}: {e}",
                path.display()
            ))
        })?;
    }
    info!(
        product_code = %product.code,
        public_key_version = product.public_key_version,
        attempts = answer.attempts,
        elapsed_ms = answer.elapsed.as_millis() as u64,
        "entitled: signature and claims verified"
    );
    Ok(entitlement)
}

/// AWS includes `PublicKeyRotationTimestamp` only when the key version is being retired.
fn warn_about_rotation(version: u64, rotation_secs: i64) {
    let when = rfc3339(rotation_secs).unwrap_or_else(|| rotation_secs.to_string());
    if rotation_secs > crate::unix_now() {
        warn!(
            public_key_version = version,
            rotation = %when,
            "AWS will rotate this product's public key at {when}; get the new key and version from the AWS Marketplace Management Portal and deploy them before then"
        );
    } else {
        warn!(
            public_key_version = version,
            rotation = %when,
            "AWS rotated this product's public key at {when} (this answer still verified); get the new key and version from the AWS Marketplace Management Portal"
        );
    }
}
