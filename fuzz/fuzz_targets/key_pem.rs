//! `PublicKey::from_pem` on arbitrary text. Never panics; a key it accepts has a size in the
//! documented range, a fingerprint, and can be used to verify without panicking.
#![no_main]

use entitle_fuzz::{expected, key, vector_token};
use entitle_verify::key::{MAX_BITS, MIN_BITS};
use entitle_verify::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pem = String::from_utf8_lossy(data);
    let Ok(parsed) = PublicKey::from_pem(&pem) else {
        return;
    };
    assert!((MIN_BITS..=MAX_BITS).contains(&parsed.bits()), "{parsed:?}");
    let fingerprint = parsed.fingerprint();
    assert_eq!(fingerprint.len(), 64);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    let verdict = entitle_verify::verify(vector_token(), &parsed, &expected());
    if parsed.pkcs1_der() == key().pkcs1_der() {
        assert!(
            verdict.is_ok(),
            "the vector key in another PEM: {verdict:?}"
        );
        assert_eq!(parsed.fingerprint(), key().fingerprint());
    }
});
