//! Sealed trust: the vendor's product codes and public keys embedded in the binary itself, so the
//! buyer (who controls env vars, Helm values and task definitions) cannot swap them.
//!
//! Mechanism: a reserved slot patched in place. The binary carries a fixed-size static array that
//! starts with a marker. `entitle seal` finds the marker in a copy of its own executable, writes
//! the sealed configuration and its SHA-256 into the slot, and saves the copy. At run time the
//! slot is read from memory (no file needed, not even /proc/self/exe). Because the slot sits in
//! the middle of the ELF image, cutting bytes off the end cannot remove it; any change inside it
//! breaks the checksum and is refused (exit 78).
//!
//! Slot layout: marker (24 bytes) | state (1: 0 unsealed, 1 sealed) | payload length (u32 LE) |
//! SHA-256 of the payload (32) | payload (JSON) | zero padding.

use crate::cli::SealRequest;
use crate::exit::Failure;
use crate::install::own_executable;
use crate::record;
use entitle_verify::PublicKey;
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use tracing::info;

pub const SLOT_SIZE: usize = 16 * 1024;
const MARKER_LEN: usize = 24;
const STATE_AT: usize = MARKER_LEN;
const LENGTH_AT: usize = STATE_AT + 1;
const DIGEST_AT: usize = LENGTH_AT + 4;
const PAYLOAD_AT: usize = DIGEST_AT + 32;
pub const MAX_PAYLOAD: usize = SLOT_SIZE - PAYLOAD_AT;

const UNSEALED: u8 = 0;
const SEALED: u8 = 1;

/// The slot, as compiled: marker then zeros. Never read directly (the compiler would fold it);
/// see [`own_slot`].
#[used]
static SLOT: [u8; SLOT_SIZE] = {
    let mut slot = [0u8; SLOT_SIZE];
    let marker = *b"entitle:seal-slot:v1\0\0\0\0";
    let mut i = 0;
    while i < MARKER_LEN {
        slot[i] = marker[i];
        i += 1;
    }
    slot
};

/// One trusted product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub product_code: String,
    pub public_key_version: u64,
    /// The key as PEM, exactly as the vendor gave it (RegisterUsage); none for a product that
    /// is only metered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The product's pricing dimensions (MeterUsage): metering is on whenever this is sealed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meter_dimensions: Vec<String>,
}

/// The sealed configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seal {
    pub entries: Vec<Entry>,
    /// Used when neither --timeout nor ENTITLE_TIMEOUT is given (e.g. "10m").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_timeout: Option<String>,
}

impl Seal {
    /// The entry for `product_code`, or the only entry when none is asked for.
    pub fn entry(&self, product_code: Option<&str>) -> Result<&Entry, String> {
        let codes = || self.codes().join(", ");
        match product_code {
            Some(code) => self.entries.iter().find(|e| e.product_code == code).ok_or_else(|| {
                format!("product code {code} is not sealed into this binary (sealed: {}); the binary is sealed and trusts only its own products", codes())
            }),
            None if self.entries.len() == 1 => Ok(&self.entries[0]),
            None => Err(format!(
                "this binary is sealed for several products ({}); set ENTITLE_PRODUCT_CODE to one of them",
                codes()
            )),
        }
    }

    pub fn has(&self, product_code: &str) -> bool {
        self.entries.iter().any(|e| e.product_code == product_code)
    }

    pub fn codes(&self) -> Vec<&str> {
        self.entries
            .iter()
            .map(|e| e.product_code.as_str())
            .collect()
    }
}

/// The running binary's slot, copied out of memory with volatile reads so the compiler cannot
/// assume it still holds the compiled-in zeros.
pub fn own_slot() -> Vec<u8> {
    let base = SLOT.as_ptr();
    (0..SLOT_SIZE)
        // SAFETY: `i < SLOT_SIZE`, so every read is inside the static array.
        .map(|i| unsafe { std::ptr::read_volatile(base.add(i)) })
        .collect()
}

/// This binary's sealed trust, if any. A damaged seal stops everything: never fall back to
/// runtime options.
pub fn own_seal() -> Result<Option<Seal>, Failure> {
    decode(&own_slot()).map_err(Failure::Config)
}

/// `unsealed`, `sealed: CODES` or `seal damaged: WHY`, for `--version`.
pub fn status() -> String {
    match decode(&own_slot()) {
        Ok(None) => "unsealed".to_owned(),
        Ok(Some(seal)) => format!("sealed: {}", seal.codes().join(", ")),
        Err(e) => format!("seal damaged: {e}"),
    }
}

/// `entitle seal`: a copy of this executable with the vendor's products in its seal slot.
pub fn seal_copy(request: &SealRequest, current: Option<&Seal>) -> Result<(), Failure> {
    if let Some(current) = current {
        return Err(Failure::Config(format!(
            "this binary is already sealed (products: {}); seal the released, unsealed entitle binary",
            current.codes().join(", ")
        )));
    }
    let entries = request
        .entries
        .iter()
        .map(|entry| {
            let public_key = entry
                .public_key_file
                .as_deref()
                .map(|file| {
                    std::fs::read_to_string(file)
                        .map_err(|e| Failure::Config(format!("cannot read {file}: {e}")))
                })
                .transpose()?;
            Ok(Entry {
                product_code: entry.product_code.clone(),
                public_key_version: crate::verify::public_key_version(entry.public_key_version)?,
                public_key,
                meter_dimensions: entry.meter_dimensions.clone().unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let new_seal = Seal {
        entries,
        default_timeout: request.default_timeout.clone(),
    };
    let output = request.output.as_deref().unwrap_or_default();
    let sealed =
        seal_binary(&own_executable()?, &own_slot(), &new_seal).map_err(Failure::Config)?;
    record::write_atomically(std::path::Path::new(output), &sealed, 0o755)
        .map_err(|e| Failure::Config(format!("cannot write --output {output}: {e}")))?;
    info!(products = %new_seal.codes().join(", "), output, "sealed");
    Ok(())
}

/// `entitle inspect`: the seal in a form a vendor can compare with the portal.
pub fn inspect(seal: Option<&Seal>) -> Result<(), Failure> {
    let version = env!("CARGO_PKG_VERSION");
    let Some(seal) = seal else {
        println!("entitle {version}: unsealed (product and key come from options)");
        return Ok(());
    };
    println!("entitle {version}: sealed");
    for entry in &seal.entries {
        let key = match &entry.public_key {
            Some(pem) => {
                let key = PublicKey::from_pem(pem).map_err(Failure::Config)?;
                format!(
                    " key-version {} RSA-{} sha256:{}",
                    entry.public_key_version,
                    key.bits(),
                    key.fingerprint()
                )
            }
            None => String::new(),
        };
        let meter = match entry.meter_dimensions.is_empty() {
            true => String::new(),
            false => format!(" meter {}", entry.meter_dimensions.join(",")),
        };
        println!("product {}{key}{meter}", entry.product_code);
    }
    if let Some(timeout) = &seal.default_timeout {
        println!("default timeout {timeout}");
    }
    Ok(())
}

/// Decodes a slot: `Ok(None)` when unsealed, an error when damaged in any way.
pub fn decode(slot: &[u8]) -> Result<Option<Seal>, String> {
    let damaged = |why: &str| {
        Err(format!(
            "the sealed configuration is damaged ({why}); re-seal the released binary"
        ))
    };
    if slot.len() != SLOT_SIZE {
        return damaged("wrong slot size");
    }
    let length = u32::from_le_bytes([
        slot[LENGTH_AT],
        slot[LENGTH_AT + 1],
        slot[LENGTH_AT + 2],
        slot[LENGTH_AT + 3],
    ]) as usize;
    match slot[STATE_AT] {
        UNSEALED if slot[STATE_AT..].iter().all(|&b| b == 0) => return Ok(None),
        UNSEALED => return damaged("unsealed slot is not empty"),
        SEALED => {}
        _ => return damaged("unknown state"),
    }
    if length == 0 || length > MAX_PAYLOAD {
        return damaged("bad length");
    }
    let payload = &slot[PAYLOAD_AT..PAYLOAD_AT + length];
    if digest(&SHA256, payload).as_ref() != &slot[DIGEST_AT..PAYLOAD_AT] {
        return damaged("checksum mismatch");
    }
    if slot[PAYLOAD_AT + length..].iter().any(|&b| b != 0) {
        return damaged("bytes after the payload");
    }
    let seal: Seal = serde_json::from_slice(payload)
        .map_err(|e| format!("the sealed configuration is damaged ({e})"))?;
    validate(&seal)?;
    Ok(Some(seal))
}

/// Every entry must be usable: a valid product code, key version and key, no duplicates.
pub fn validate(seal: &Seal) -> Result<(), String> {
    if seal.entries.is_empty() {
        return Err("a seal needs at least one --product-code with its --public-key-file".into());
    }
    for (i, entry) in seal.entries.iter().enumerate() {
        crate::verify::product_code(Some(&entry.product_code)).map_err(|f| f.to_string())?;
        if entry.public_key_version == 0 || entry.public_key_version > i32::MAX as u64 {
            return Err(format!(
                "public key version {} is out of range",
                entry.public_key_version
            ));
        }
        if let Some(pem) = &entry.public_key {
            PublicKey::from_pem(pem).map_err(|e| format!("key for {}: {e}", entry.product_code))?;
        }
        if entry.public_key.is_none() && entry.meter_dimensions.is_empty() {
            return Err(format!(
                "product {} has neither a public key nor metering dimensions",
                entry.product_code
            ));
        }
        crate::verify::meter_dimensions(&entry.meter_dimensions).map_err(|f| f.to_string())?;
        if seal.entries[..i]
            .iter()
            .any(|e| e.product_code == entry.product_code)
        {
            return Err(format!(
                "product code {} is given twice",
                entry.product_code
            ));
        }
    }
    if let Some(timeout) = &seal.default_timeout {
        humantime::parse_duration(timeout)
            .map_err(|e| format!("default timeout `{timeout}`: {e}"))?;
    }
    Ok(())
}

/// Encodes a sealed slot (marker from `unsealed_slot`, which must be an unsealed slot).
pub fn encode(unsealed_slot: &[u8], seal: &Seal) -> Result<Vec<u8>, String> {
    validate(seal)?;
    let payload = serde_json::to_vec(seal).map_err(|e| e.to_string())?;
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "the sealed configuration is {} bytes, the slot holds {MAX_PAYLOAD}; seal fewer products",
            payload.len()
        ));
    }
    let mut slot = vec![0u8; SLOT_SIZE];
    slot[..MARKER_LEN].copy_from_slice(&unsealed_slot[..MARKER_LEN]);
    slot[STATE_AT] = SEALED;
    slot[LENGTH_AT..DIGEST_AT].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    slot[DIGEST_AT..PAYLOAD_AT].copy_from_slice(digest(&SHA256, &payload).as_ref());
    slot[PAYLOAD_AT..PAYLOAD_AT + payload.len()].copy_from_slice(&payload);
    Ok(slot)
}

/// Patches `binary` (a copy of this program) with `seal`. The slot is found by its marker, taken
/// from this process's own slot so the marker bytes appear nowhere else in the file.
pub fn seal_binary(binary: &[u8], own_slot: &[u8], seal: &Seal) -> Result<Vec<u8>, String> {
    if decode(own_slot)?.is_some() {
        return Err(
            "this binary is already sealed; seal the released (unsealed) entitle binary".into(),
        );
    }
    let marker = &own_slot[..MARKER_LEN];
    let mut found = binary
        .windows(MARKER_LEN)
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i);
    let offset = match (found.next(), found.next()) {
        (Some(offset), None) => offset,
        (None, _) => return Err("the seal slot is missing from the executable".into()),
        (Some(_), Some(_)) => {
            return Err("the seal slot marker appears twice in the executable".into())
        }
    };
    let current = binary
        .get(offset..offset + SLOT_SIZE)
        .ok_or("the seal slot is cut short in the executable")?;
    if current != own_slot {
        return Err(
            "the executable on disk differs from the running one; seal the released binary".into(),
        );
    }
    let mut sealed = binary.to_vec();
    sealed[offset..offset + SLOT_SIZE].copy_from_slice(&encode(own_slot, seal)?);
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use entitle_verify::key::test_keys;

    fn seal_of(codes: &[&str]) -> Seal {
        Seal {
            entries: codes
                .iter()
                .map(|c| Entry {
                    product_code: c.to_string(),
                    public_key_version: 1,
                    public_key: Some(test_keys::PUBLIC_2048_SPKI.to_owned()),
                    meter_dimensions: Vec::new(),
                })
                .collect(),
            default_timeout: Some("10m".into()),
        }
    }

    #[test]
    fn the_compiled_slot_is_unsealed() {
        assert_eq!(decode(&own_slot()), Ok(None));
    }

    #[test]
    fn seal_round_trips_and_is_found_in_a_binary() {
        let slot = own_slot();
        let mut binary = b"ELF header and code".to_vec();
        binary.extend_from_slice(&slot);
        binary.extend_from_slice(b"more code after the slot");
        let sealed = seal_binary(&binary, &slot, &seal_of(&["prod-a", "prod-b"])).unwrap();
        assert_eq!(sealed.len(), binary.len());
        let start = b"ELF header and code".len();
        let decoded = decode(&sealed[start..start + SLOT_SIZE]).unwrap().unwrap();
        assert_eq!(decoded, seal_of(&["prod-a", "prod-b"]));
        assert!(sealed.ends_with(b"more code after the slot"));
    }

    #[test]
    fn any_damage_to_a_sealed_slot_is_an_error() {
        let sealed = encode(&own_slot(), &seal_of(&["prod-a"])).unwrap();
        let length = u32::from_le_bytes(sealed[LENGTH_AT..DIGEST_AT].try_into().unwrap()) as usize;
        for i in MARKER_LEN..PAYLOAD_AT + length + 8 {
            let mut damaged = sealed.clone();
            damaged[i] ^= 0x01;
            assert!(decode(&damaged).is_err(), "flip at {i}");
        }
        assert!(decode(&sealed[..SLOT_SIZE - 1]).is_err());
    }

    #[test]
    fn resealing_and_bad_entries_are_refused() {
        let sealed = encode(&own_slot(), &seal_of(&["prod-a"])).unwrap();
        assert!(seal_binary(&sealed, &sealed, &seal_of(&["prod-b"]))
            .unwrap_err()
            .contains("already sealed"));
        assert!(encode(&own_slot(), &seal_of(&[])).is_err());
        assert!(encode(&own_slot(), &seal_of(&["dup", "dup"]))
            .unwrap_err()
            .contains("twice"));
        assert!(encode(&own_slot(), &seal_of(&["bad code"])).is_err());
        let mut small_key = seal_of(&["prod-a"]);
        small_key.entries[0].public_key = Some(test_keys::PUBLIC_1024_SPKI.to_owned());
        assert!(encode(&own_slot(), &small_key).is_err());
    }

    #[test]
    fn entries_are_chosen_by_product_code() {
        let one = seal_of(&["prod-a"]);
        assert_eq!(one.entry(None).unwrap().product_code, "prod-a");
        assert!(one
            .entry(Some("free-prod"))
            .unwrap_err()
            .contains("not sealed"));
        let two = seal_of(&["prod-a", "prod-b"]);
        assert!(two
            .entry(None)
            .unwrap_err()
            .contains("ENTITLE_PRODUCT_CODE"));
        assert_eq!(two.entry(Some("prod-b")).unwrap().product_code, "prod-b");
    }
}
