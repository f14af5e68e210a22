//! `entitle::seal::decode`, the reader of the sealed-configuration slot. The first input byte
//! picks how the rest becomes a slot:
//! - even: the rest is the slot's start, zero-padded (or cut) to SLOT_SIZE, as in a binary; the
//!   raw rest is also decoded as is (any other length must be refused);
//! - odd: the rest is the JSON payload of a slot with a correct header and SHA-256, so the
//!   fuzzer gets past the checksum to the JSON and entry validation.
//!
//! Never panics; Ok(None) only for an empty slot; anything accepted is valid and re-encodes to
//! the same configuration.
#![no_main]

use entitle::seal::{decode, encode, own_slot, validate, MAX_PAYLOAD, SLOT_SIZE};
use libfuzzer_sys::fuzz_target;
use ring::digest::{digest, SHA256};

/// Slot layout (src/seal.rs): marker 24 | state 1 | length u32 LE | SHA-256 32 | payload.
const STATE_AT: usize = 24;
const PAYLOAD_AT: usize = STATE_AT + 1 + 4 + 32;

fn slot_with_payload(payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
    let mut slot = own_slot();
    slot[STATE_AT] = 1;
    slot[STATE_AT + 1..STATE_AT + 5].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    slot[STATE_AT + 5..PAYLOAD_AT].copy_from_slice(digest(&SHA256, payload).as_ref());
    slot[PAYLOAD_AT..PAYLOAD_AT + payload.len()].copy_from_slice(payload);
    slot
}

fn check(slot: &[u8]) {
    match decode(slot) {
        Ok(None) => {
            assert_eq!(slot.len(), SLOT_SIZE);
            assert!(
                slot[STATE_AT..].iter().all(|&b| b == 0),
                "a non-empty slot read as unsealed"
            );
        }
        Ok(Some(seal)) => {
            assert_eq!(slot.len(), SLOT_SIZE);
            validate(&seal).expect("a decoded seal is valid");
            for entry in &seal.entries {
                if let Some(pem) = &entry.public_key {
                    entitle_verify::PublicKey::from_pem(pem).expect("a sealed key parses");
                }
                assert!(
                    entry.public_key.is_some() || !entry.meter_dimensions.is_empty(),
                    "a sealed product with neither a key nor dimensions"
                );
            }
            let again = encode(&own_slot(), &seal).expect("a decoded seal re-encodes");
            assert_eq!(
                decode(&again),
                Ok(Some(seal)),
                "re-encoding changed the seal"
            );
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        MAX_PAYLOAD,
        SLOT_SIZE - PAYLOAD_AT,
        "slot layout changed; update this target"
    );
    let Some((&mode, rest)) = data.split_first() else {
        assert!(decode(data).is_err());
        return;
    };
    if mode & 1 == 0 {
        if rest.len() != SLOT_SIZE {
            assert!(
                decode(rest).is_err(),
                "a slot of {} bytes was read",
                rest.len()
            );
        }
        let mut slot = rest.to_vec();
        slot.resize(SLOT_SIZE, 0);
        check(&slot);
    } else {
        check(&slot_with_payload(rest));
    }
});
