//! `entitle_verify::verify` on tokens with arbitrary header and payload JSON and a *valid* PS256
//! signature (made with entitle-verify/tests/data/vector-private.pem), so the fuzzer reaches the header and claim
//! logic behind the signature check. Input: HEADER 0xFF PAYLOAD (0xFF never occurs in UTF-8);
//! without 0xFF the whole input is the payload under {"alg":"PS256","typ":"JWT"}.
//! The verdict must match the documented contract (entitle_fuzz::contract).
#![no_main]

use entitle_fuzz::{check_against_contract, expected, key, sign};
use libfuzzer_sys::fuzz_target;

const DEFAULT_HEADER: &[u8] = br#"{"alg":"PS256","typ":"JWT"}"#;

fuzz_target!(|data: &[u8]| {
    let (header, payload) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (DEFAULT_HEADER, data),
    };
    let token = sign(header, payload);
    let verdict = entitle_verify::verify(&token, key(), &expected());
    check_against_contract(header, payload, &verdict);
});
