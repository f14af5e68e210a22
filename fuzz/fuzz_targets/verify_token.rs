//! `entitle_verify::verify` on arbitrary token bytes, against the test vector's key and claims.
//! Never panics; anything it accepts is canonical (no second encoding of the same signature) and
//! within the documented contract.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use entitle_fuzz::{check_against_contract, expected, key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let verdict = entitle_verify::verify(&token, key(), &expected());
    if let Ok(entitlement) = &verdict {
        assert_eq!(entitlement.token, token);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "accepted a token without 3 parts");
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).expect("accepted part decodes");
        for part in &parts {
            assert_eq!(
                URL_SAFE_NO_PAD.encode(decode(part)),
                *part,
                "accepted a non-canonical base64url part"
            );
        }
        check_against_contract(&decode(parts[0]), &decode(parts[1]), &verdict);
    }
});
