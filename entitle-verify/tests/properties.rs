//! Properties of the token verifier (`entitle_verify::verify`), checked on generated tokens signed with
//! the test vector's private key (tests/data/vector-private.pem, test-only) using ring's PS256:
//!
//! - any single-byte change and any truncation of a valid token is rejected;
//! - any validly signed token whose claims differ from the expected ones in any way (value,
//!   JSON type, presence) is rejected, as is a valid token checked against other expectations;
//! - a token for the expected claims is accepted whatever extra claims and header fields it has.

use entitle_verify::key::test_keys::Signer;
use entitle_verify::{verify, Expected, PublicKey, Rejection};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

const PUBLIC_PEM: &str = include_str!("data/vector-public.pem");
const PRIVATE_PEM: &str = include_str!("data/vector-private.pem");
const VECTOR: &str = include_str!("data/vector.jwt");

const PRODUCT_CODE: &str = "prod-example";
const NONCE: &str = "vector-nonce-0001";
const EXPECTED: Expected<'static> = Expected {
    product_code: PRODUCT_CODE,
    public_key_version: 1,
    nonce: NONCE,
};
/// The claim names `verify` checks, in the order of a JSON claims set built by [`claims_json`].
const CLAIMS: [&str; 3] = ["productCode", "publicKeyVersion", "nonce"];

fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| PublicKey::from_pem(PUBLIC_PEM).expect("vector public key"))
}

/// A compact JWS over `header` and `payload` (JSON text) with a valid PS256 signature.
fn sign(header: &str, payload: &str) -> String {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER
        .get_or_init(|| Signer::from_pem(PRIVATE_PEM))
        .sign(header.as_bytes(), payload.as_bytes())
}

fn vector() -> &'static str {
    VECTOR.trim()
}

/// A JSON object written member by member, so order and content are exactly as generated.
fn object_json(members: &[(String, Value)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::from(name.as_str())))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn expected_values() -> [Value; 3] {
    [json!(PRODUCT_CODE), json!(1), json!(NONCE)]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values close to a claim's expected value but not equal to it: other strings (case, padding,
/// prefixes), other numbers (1.0 is a float, not the integer 1), other JSON types.
fn near_miss(expected: &Value) -> impl Strategy<Value = Value> {
    let text = expected
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| expected.to_string());
    let variants = vec![
        json!(text.to_uppercase()),
        json!(format!(" {text}")),
        json!(format!("{text}\u{0}")),
        json!(&text[..text.len() - 1]),
        json!(format!("{text}1")),
        json!([expected.clone()]),
        json!({ "value": expected.clone() }),
        json!(text),
        json!(1.0),
        json!(0),
        json!(2),
        json!(-1),
        json!(u64::MAX),
        json!(true),
        Value::Null,
    ];
    let expected = expected.clone();
    prop_oneof![prop::sample::select(variants), any_json()]
        .prop_filter("must differ from the expected value", move |v| {
            *v != expected
        })
}

/// How one checked claim is changed: kept, replaced by a different value, or removed.
#[derive(Debug, Clone)]
enum Change {
    Keep,
    Replace(Value),
    Remove,
}

fn change(expected: Value) -> impl Strategy<Value = Change> {
    prop_oneof![
        2 => Just(Change::Keep),
        3 => near_miss(&expected).prop_map(Change::Replace),
        1 => Just(Change::Remove),
    ]
}

/// Names for extra members: anything but the names `verify` reads.
fn extra_name(reserved: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "iat",
            "exp",
            "nbf",
            "sub",
            "typ",
            "kid",
            "x5c",
            "jku",
            "product_code",
            "ProductCode",
            "NONCE",
            "nonce ",
            "publickeyversion",
            "customerIdentifier",
            "",
        ])
        .prop_map(str::to_owned),
        ".{0,12}",
    ]
    .prop_filter("not a checked name", move |name| {
        !reserved.contains(&name.as_str())
    })
}

/// Extra members with distinct names (a repeated name is a different case: RFC 7515 §5.2 lets a
/// parser refuse it).
fn extras(reserved: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec((extra_name(reserved), any_json()), 0..6).prop_map(|members| {
        let mut seen = std::collections::HashSet::new();
        members
            .into_iter()
            .filter(|(name, _)| seen.insert(name.clone()))
            .collect()
    })
}

/// The checked claims (changed as given) mixed in among `extra` members at `positions`.
fn claims_json(changes: &[Change; 3], extra: &[(String, Value)], positions: &[usize; 3]) -> String {
    let mut members = extra.to_vec();
    for ((name, change), (&at, expected)) in CLAIMS
        .iter()
        .zip(changes)
        .zip(positions.iter().zip(expected_values()))
    {
        let value = match change {
            Change::Keep => expected,
            Change::Replace(v) => v.clone(),
            Change::Remove => continue,
        };
        members.insert(at.min(members.len()), ((*name).to_owned(), value));
    }
    object_json(&members)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_single_byte_change_is_rejected(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = vector().as_bytes().to_vec();
        let at = at.index(bytes.len());
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        // A byte that breaks UTF-8 cannot reach `verify(&str)` as is; the lossy text differs too.
        let token = String::from_utf8_lossy(&bytes);
        prop_assert!(verify(&token, key(), &EXPECTED).is_err(), "byte {at} = {byte:#04x}: accepted");
    }

    #[test]
    fn any_cut_out_range_is_rejected(start in any::<prop::sample::Index>(), len in 1usize..64) {
        let token = vector();
        let start = start.index(token.len());
        let end = (start + len).min(token.len());
        let cut = format!("{}{}", &token[..start], &token[end..]);
        prop_assert!(verify(&cut, key(), &EXPECTED).is_err(), "removing {start}..{end}: accepted");
    }

    #[test]
    fn any_change_to_the_checked_claims_is_rejected(
        product_code in change(json!(PRODUCT_CODE)),
        version in change(json!(1)),
        nonce in change(json!(NONCE)),
        extra in extras(&CLAIMS),
        positions in any::<[usize; 3]>().prop_map(|p| p.map(|i| i % 8)),
    ) {
        let changes = [product_code, version, nonce];
        prop_assume!(changes.iter().any(|c| !matches!(c, Change::Keep)));
        let payload = claims_json(&changes, &extra, &positions);
        let token = sign(r#"{"alg":"PS256","typ":"JWT"}"#, &payload);
        let verdict = verify(&token, key(), &EXPECTED);
        let first_changed = CLAIMS[changes.iter().position(|c| !matches!(c, Change::Keep)).unwrap()];
        match verdict {
            Err(Rejection::ClaimMismatch { claim, .. }) => {
                prop_assert_eq!(claim, first_changed, "{}", payload)
            }
            other => prop_assert!(false, "{payload}: {other:?}"),
        }
    }

    #[test]
    fn a_valid_token_is_rejected_for_any_other_expectation(
        product_code in "[-a-zA-Z0-9/=:_.@]{1,40}",
        version in 1u64..=u64::MAX,
        nonce in "[-A-Za-z0-9_]{1,64}",
        which in 0usize..3,
    ) {
        let mut expected = EXPECTED;
        match which {
            0 => { prop_assume!(product_code != PRODUCT_CODE); expected.product_code = &product_code }
            1 => { prop_assume!(version != 1); expected.public_key_version = version }
            _ => { prop_assume!(nonce != NONCE); expected.nonce = &nonce }
        }
        let verdict = verify(vector(), key(), &expected);
        prop_assert!(matches!(verdict, Err(Rejection::ClaimMismatch { claim, .. }) if claim == CLAIMS[which]), "{verdict:?}");
    }

    #[test]
    fn extra_claims_and_header_fields_are_accepted(
        header_extra in extras(&["alg", "crit"]),
        claims_extra in extras(&CLAIMS),
        alg_at in 0usize..8,
        positions in any::<[usize; 3]>().prop_map(|p| p.map(|i| i % 8)),
    ) {
        let mut header = header_extra;
        header.insert(alg_at.min(header.len()), ("alg".into(), json!("PS256")));
        let header = object_json(&header);
        let payload = claims_json(&[Change::Keep, Change::Keep, Change::Keep], &claims_extra, &positions);
        let token = sign(&header, &payload);
        let verdict = verify(&token, key(), &EXPECTED);
        prop_assert!(verdict.is_ok(), "{header} {payload}: {verdict:?}");
        let entitlement = verdict.unwrap();
        prop_assert_eq!(&entitlement.token, &token);
        let iat = claims_extra.iter().rev().find(|(n, _)| n == "iat").and_then(|(_, v)| v.as_f64());
        prop_assert_eq!(entitlement.issued_at, iat.map(|t| t.floor() as i64));
    }

    #[test]
    fn any_alg_but_exactly_ps256_is_rejected(alg in prop_oneof![
        prop::sample::select(vec![
            json!("none"), json!("HS256"), json!("RS256"), json!("ES256"), json!("PS384"),
            json!("PS512"), json!("ps256"), json!("PS256 "), json!(" PS256"), json!("PS256\u{0}"),
            json!(["PS256"]), json!({"alg": "PS256"}), Value::Null, json!(256),
        ]),
        any_json(),
    ]) {
        prop_assume!(alg != json!("PS256"));
        let header = object_json(&[("alg".into(), alg)]);
        let token = sign(&header, r#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001"}"#);
        let verdict = verify(&token, key(), &EXPECTED);
        prop_assert!(matches!(verdict, Err(Rejection::Algorithm(_))), "{header}: {verdict:?}");
    }
}

#[test]
fn the_vector_verifies() {
    assert!(verify(vector(), key(), &EXPECTED).is_ok());
}

#[test]
fn every_truncation_is_rejected() {
    let token = vector();
    for len in 0..token.len() {
        assert!(
            verify(&token[..len], key(), &EXPECTED).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
    // And from the front: what is left is never a token for these claims.
    for start in 1..token.len() {
        assert!(
            verify(&token[start..], key(), &EXPECTED).is_err(),
            "suffix from {start} accepted"
        );
    }
}
