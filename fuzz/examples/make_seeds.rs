//! Writes the committed seed corpus under fuzz/seeds/ (the hand-picked foreign keys in
//! seeds/key_pem/ are committed as they are). Re-run after changing the test vector:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use entitle::seal::{encode, own_slot, Entry, Seal};
use entitle_fuzz::{key, sign, vector_token, PRIVATE_PEM, PUBLIC_PEM};
use std::path::{Path, PathBuf};

const HEADER: &str = r#"{"alg":"PS256","typ":"JWT"}"#;
const CLAIMS: &str = r#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001","iat":1764472500}"#;

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(dir).expect("create seed folder");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn aws_answer(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nx-amzn-RequestId: 5f2c7a4e-0d1b-4c3e-9a8f-2b6d1e0c9a71\r\nDate: Sun, 30 Nov 2025 03:15:00 GMT\r\n"
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

fn aws_error(status: &str, code: &str, message: &str) -> String {
    aws_answer(
        status,
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            (
                "x-amzn-ErrorType",
                &format!("{code}:http://internal.amazon.com/coral/com.amazonaws.mpms.coral/"),
            ),
        ],
        &format!(r#"{{"__type":"com.amazonaws.mpms.coral#{code}","message":"{message}"}}"#),
    )
}

fn main() {
    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let token = vector_token();

    // verify_token: the vector, a re-signed token with extra fields, and near misses.
    let dir = seeds.join("verify_token");
    write(&dir, "vector.jwt", token);
    write(
        &dir,
        "extra-fields.jwt",
        sign(
            br#"{"alg":"PS256","typ":"JWT","kid":"1"}"#,
            br#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001","iat":1764472500.5,"customerIdentifier":"c-1"}"#,
        ),
    );
    write(
        &dir,
        "wrong-nonce.jwt",
        sign(
            HEADER.as_bytes(),
            br#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"older-nonce"}"#,
        ),
    );
    let (signing_input, _) = token.rsplit_once('.').expect("vector has 3 parts");
    write(&dir, "no-signature.jwt", format!("{signing_input}."));
    write(
        &dir,
        "alg-none.jwt",
        "eyJhbGciOiJub25lIn0.eyJwcm9kdWN0Q29kZSI6InByb2QtZXhhbXBsZSJ9.",
    );

    // verify_signed: HEADER 0xFF PAYLOAD, signed by the target.
    let dir = seeds.join("verify_signed");
    let pair = |h: &str, p: &str| [h.as_bytes(), &[0xFF], p.as_bytes()].concat();
    write(&dir, "vector", pair(HEADER, CLAIMS));
    write(&dir, "payload-only", CLAIMS);
    write(
        &dir,
        "extra-fields",
        pair(
            r#"{"alg":"PS256","typ":"JWT","kid":"k","x5t":null}"#,
            r#"{"productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001","iat":1.5e9,"extra":{"a":[1,2,{"b":null}]}}"#,
        ),
    );
    write(
        &dir,
        "crit",
        pair(r#"{"alg":"PS256","crit":["exp"]}"#, CLAIMS),
    );
    write(&dir, "alg-rs256", pair(r#"{"alg":"RS256"}"#, CLAIMS));
    write(
        &dir,
        "version-types",
        pair(
            HEADER,
            r#"{"productCode":"prod-example","publicKeyVersion":"1","nonce":"vector-nonce-0001"}"#,
        ),
    );
    write(
        &dir,
        "version-float",
        pair(
            HEADER,
            r#"{"productCode":"prod-example","publicKeyVersion":1.0,"nonce":"vector-nonce-0001"}"#,
        ),
    );
    write(
        &dir,
        "escapes",
        pair(
            r#"{"alg":"PS\u0032\u0035\u0036"}"#,
            r#"{"productCode":"prod\u002dexample","publicKeyVersion":1,"nonce":"vector-nonce-0001"}"#,
        ),
    );
    write(
        &dir,
        "duplicate-claim",
        pair(
            HEADER,
            r#"{"productCode":"prod-free","productCode":"prod-example","publicKeyVersion":1,"nonce":"vector-nonce-0001"}"#,
        ),
    );

    // key_pem: the vector key in every accepted form (foreign keys are committed by hand).
    let dir = seeds.join("key_pem");
    write(&dir, "vector-spki.pem", PUBLIC_PEM);
    write(
        &dir,
        "vector-pkcs1.pem",
        pem("RSA PUBLIC KEY", key().pkcs1_der()),
    );
    write(
        &dir,
        "vector-spki-escaped.txt",
        PUBLIC_PEM.trim().replace('\n', "\\n"),
    );
    write(&dir, "vector-private.pem", PRIVATE_PEM);

    // register_response: real-shaped AWS Marketplace Metering answers (awsJson1_1).
    let dir = seeds.join("register_response");
    let json = ("Content-Type", "application/x-amz-json-1.1");
    write(
        &dir,
        "ok.http",
        aws_answer("200 OK", &[json], &format!(r#"{{"Signature":"{token}"}}"#)),
    );
    write(
        &dir,
        "ok-rotation.http",
        aws_answer(
            "200 OK",
            &[json],
            &format!(r#"{{"PublicKeyRotationTimestamp":1.7672256E9,"Signature":"{token}"}}"#),
        ),
    );
    write(
        &dir,
        "not-entitled.http",
        aws_error(
            "400 Bad Request",
            "CustomerNotEntitledException",
            "Customer does not have a valid subscription for this product.",
        ),
    );
    write(
        &dir,
        "throttling.http",
        aws_error("400 Bad Request", "ThrottlingException", "Rate exceeded"),
    );
    write(
        &dir,
        "internal-error.http",
        aws_error(
            "500 Internal Server Error",
            "InternalServiceErrorException",
            "An internal error has occurred. Retry your request.",
        ),
    );
    write(
        &dir,
        "platform-not-supported.http",
        aws_error(
            "400 Bad Request",
            "PlatformNotSupportedException",
            "AWS Marketplace does not support metering usage from the underlying platform.",
        ),
    );
    write(
        &dir,
        "access-denied.http",
        aws_answer(
            "400 Bad Request",
            &[json, ("x-amzn-ErrorType", "AccessDeniedException")],
            r#"{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/task/abc is not authorized to perform: aws-marketplace:RegisterUsage"}"#,
        ),
    );
    write(
        &dir,
        "unrecognized-client.http",
        aws_answer(
            "400 Bad Request",
            &[json],
            r#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#,
        ),
    );
    write(
        &dir,
        "bad-gateway.http",
        aws_answer(
            "502 Bad Gateway",
            &[("Content-Type", "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
        ),
    );
    write(
        &dir,
        "service-unavailable-empty.http",
        aws_answer("503 Service Unavailable", &[], ""),
    );
    write(
        &dir,
        "ok-not-json.http",
        aws_answer(
            "200 OK",
            &[("Content-Type", "text/html")],
            "<html>captive portal</html>",
        ),
    );
    write(
        &dir,
        "ok-no-signature.http",
        aws_answer("200 OK", &[json], "{}"),
    );
    write(
        &dir,
        "ok-chunked.http",
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\n{{\"Signature\":\"{token}\"}}"
        ),
    );

    // seal_decode: mode byte, then a slot start (even) or a payload to checksum (odd).
    let dir = seeds.join("seal_decode");
    let entry = |code: &str| Entry {
        product_code: code.into(),
        public_key_version: 1,
        public_key: PUBLIC_PEM.into(),
    };
    let one = Seal {
        entries: vec![entry("prod-example")],
        default_timeout: None,
    };
    let two = Seal {
        entries: vec![entry("prod-example"), entry("prod-free")],
        default_timeout: Some("10m".into()),
    };
    for (name, seal) in [("one", &one), ("two", &two)] {
        let slot = encode(&own_slot(), seal).expect("seed seal encodes");
        let used = slot.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write(
            &dir,
            &format!("slot-{name}"),
            [&[0u8][..], &slot[..used]].concat(),
        );
        let payload = serde_json::to_vec(seal).expect("seal serialises");
        write(
            &dir,
            &format!("payload-{name}"),
            [&[1u8][..], &payload].concat(),
        );
    }
    let unsealed = own_slot();
    write(
        &dir,
        "slot-unsealed",
        [&[0u8][..], &unsealed[..24]].concat(),
    );
}
