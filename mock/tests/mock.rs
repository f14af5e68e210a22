//! Starts the real binary and talks raw HTTP to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use entitle_mock::http::Request;
use entitle_mock::{clock, sigv4};
use rsa::pkcs8::DecodePublicKey;
use rsa::pss::{Signature, VerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entitle-mock");
const TARGET: &str = "AWSMPMeteringService.RegisterUsage";

struct Mock {
    child: Child,
    addr: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Mock {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start entitle-mock");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("http://")
        .expect("first line is the URL")
        .to_string();
    Mock { child, addr }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn send(conn: &mut BufReader<TcpStream>, raw: &[u8]) -> Reply {
    conn.get_mut().write_all(raw).unwrap();
    let mut status_line = String::new();
    conn.read_line(&mut status_line).unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = reply.header("content-length").unwrap().parse().unwrap();
    reply.body = vec![0; len];
    conn.read_exact(&mut reply.body).unwrap();
    reply
}

fn connect(mock: &Mock) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(&mock.addr).unwrap())
}

/// A RegisterUsage request as the SDK sends it, signed when credentials are given.
fn register_request(mock: &Mock, body: &str, creds: Option<(&str, &str)>) -> Vec<u8> {
    let mut req = Request {
        method: "POST".into(),
        target: "/".into(),
        version: "HTTP/1.1".into(),
        headers: vec![
            ("Host".into(), mock.addr.clone()),
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            ("Content-Length".into(), body.len().to_string()),
            ("X-Amz-Target".into(), TARGET.into()),
        ],
        body: body.as_bytes().to_vec(),
    };
    if let Some((akid, secret)) = creds {
        sigv4::sign(&mut req, akid, secret, "us-east-1", clock::now_secs());
    }
    let mut raw = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in &req.headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw.into_bytes()
}

fn verify_token(token: &str, public_pem: &Path) -> Value {
    let key =
        rsa::PublicKey::from_public_key_pem(&std::fs::read_to_string(public_pem).unwrap()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
    VerifyingKey::<Sha256>::new_with_salt_len(key, 32)
        .verify(input.as_bytes(), &sig)
        .expect("PS256 signature verifies");
    let (header, payload) = input.split_once('.').unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap(),
        json!({"alg": "PS256", "typ": "JWT"})
    );
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("entitle-mock-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn serves_register_usage_over_keep_alive() {
    let dir = temp_dir();
    let (pem, log) = (dir.join("pub.pem"), dir.join("requests.jsonl"));
    let mock = start(&[
        "--key-bits=1024",
        "--credentials=AKIDTEST:TOPSECRET",
        "--answer=ok*2,not-entitled",
        &format!("--write-public-key={}", pem.display()),
        &format!("--request-log={}", log.display()),
    ]);
    let body = r#"{"ProductCode":"prod-abc","PublicKeyVersion":1,"Nonce":"n-1"}"#;
    let creds = Some(("AKIDTEST", "TOPSECRET"));

    let unsigned = send(&mut connect(&mock), &register_request(&mock, body, None));
    assert_eq!(unsigned.status, 400);
    assert_eq!(
        unsigned.header("x-amzn-ErrorType"),
        Some("MissingAuthenticationTokenException")
    );
    assert_eq!(
        unsigned.json()["__type"],
        "MissingAuthenticationTokenException"
    );

    let wrong_secret = send(
        &mut connect(&mock),
        &register_request(&mock, body, Some(("AKIDTEST", "x"))),
    );
    assert_eq!(wrong_secret.status, 403);
    assert_eq!(wrong_secret.json()["__type"], "InvalidSignatureException");

    // Errors above consumed no script entry; two `ok` then `not-entitled` on one connection.
    let mut conn = connect(&mock);
    for _ in 0..2 {
        let ok = send(&mut conn, &register_request(&mock, body, creds));
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        assert_eq!(
            ok.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        let claims = verify_token(ok.json()["Signature"].as_str().unwrap(), &pem);
        assert_eq!(claims["productCode"], "prod-abc");
        assert_eq!(claims["publicKeyVersion"], 1);
        assert_eq!(claims["nonce"], "n-1");
        assert!(claims["iat"].is_i64());
    }
    let denied = send(&mut conn, &register_request(&mock, body, creds));
    assert_eq!(denied.status, 400);
    assert_eq!(denied.json()["__type"], "CustomerNotEntitledException");

    let ecs = send(
        &mut conn,
        format!("GET /ecs/creds HTTP/1.1\r\nHost: {}\r\n\r\n", mock.addr).as_bytes(),
    );
    assert_eq!(ecs.json()["AccessKeyId"], "AKIDTEST");
    let token = ecs.json()["Token"].as_str().unwrap().to_string();

    let lines = std::fs::read_to_string(&log).unwrap();
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let answers: Vec<&str> = records
        .iter()
        .map(|r| r["answer"].as_str().unwrap())
        .collect();
    assert_eq!(
        answers,
        [
            "MissingAuthenticationTokenException",
            "InvalidSignatureException",
            "ok",
            "ok",
            "not-entitled",
            "credentials"
        ]
    );
    assert_eq!(records[2]["sigv4"], "ok");
    assert_eq!(records[2]["accessKeyId"], "AKIDTEST");
    assert_eq!(records[2]["nonce"], "n-1");
    assert!(!lines.contains("TOPSECRET") && !lines.contains(&token));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_exit_64_with_one_line() {
    for args in [
        &["--answer", "bogus"][..],
        &["--key-bits", "100"],
        &["--nope"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
