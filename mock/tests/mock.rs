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
const METER_TARGET: &str = "AWSMPMeteringService.MeterUsage";
/// Any credentials pass without --credentials; the signature's form and time are checked.
const ANY_CREDS: (&str, &str) = ("AKIDANY", "any-secret");

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
    aws_request(mock, TARGET, body, creds, clock::now_secs())
}

/// A MeterUsage request signed (with any credentials) at `signed_at`.
fn meter_request_at(mock: &Mock, body: &Value, signed_at: i64) -> Vec<u8> {
    let body = body.to_string();
    aws_request(mock, METER_TARGET, &body, Some(ANY_CREDS), signed_at)
}

fn meter_request(mock: &Mock, body: &Value) -> Vec<u8> {
    meter_request_at(mock, body, clock::now_secs())
}

fn aws_request(
    mock: &Mock,
    target: &str,
    body: &str,
    creds: Option<(&str, &str)>,
    signed_at: i64,
) -> Vec<u8> {
    let mut req = Request {
        method: "POST".into(),
        target: "/".into(),
        version: "HTTP/1.1".into(),
        headers: vec![
            ("Host".into(), mock.addr.clone()),
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            ("Content-Length".into(), body.len().to_string()),
            ("X-Amz-Target".into(), target.into()),
        ],
        body: body.as_bytes().to_vec(),
    };
    if let Some((akid, secret)) = creds {
        sigv4::sign(&mut req, akid, secret, "us-east-1", signed_at);
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

fn get(mock: &Mock, path: &str) -> Reply {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", mock.addr);
    send(&mut connect(mock), raw.as_bytes())
}

fn post(mock: &Mock, path: &str, body: &str) -> Reply {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n{body}",
        mock.addr,
        body.len()
    );
    send(&mut connect(mock), raw.as_bytes())
}

fn usage(dimension: &str, timestamp: f64, quantity: i64) -> Value {
    json!({"ProductCode": "prod-abc", "Timestamp": timestamp, "UsageDimension": dimension,
        "UsageQuantity": quantity})
}

fn error_type(reply: &Reply) -> String {
    reply.json()["__type"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The reply's Date header is IMF-fixdate for one of these instants.
fn assert_dated(reply: &Reply, around: i64) {
    let date = reply.header("date").expect("Date header");
    let near: Vec<String> = (around - 3..=around + 3).map(clock::imf_fixdate).collect();
    assert!(
        near.iter().any(|d| d == date),
        "Date {date:?}, want one of {near:?}"
    );
}

/// A fresh folder per test: tests run in parallel and each removes its own.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("entitle-mock-it-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn serves_register_usage_over_keep_alive() {
    let dir = temp_dir("register");
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
        &["--meter-answer", "wrong-key"],
        &["--period", "0s"],
        &["--clock-skew", "yesterday"],
        &["--dimensions", ","],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn meter_usage_keeps_one_record_per_dimension_and_hour() {
    let dir = temp_dir("meter");
    let log = dir.join("requests.jsonl");
    let mock = start(&[
        "--key-bits=1024",
        "--dimensions=cpu,mem",
        &format!("--request-log={}", log.display()),
    ]);
    let now = clock::now_secs();
    let at = now as f64 - 0.5;
    let mut conn = connect(&mock);

    let first = send(&mut conn, &meter_request(&mock, &usage("cpu", at, 3)));
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_dated(&first, now);
    let id = first.json()["MeteringRecordId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 36);
    let again = send(&mut conn, &meter_request(&mock, &usage("cpu", at, 3)));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["MeteringRecordId"], id.as_str());

    let changed = send(&mut conn, &meter_request(&mock, &usage("cpu", at, 4)));
    assert_eq!(changed.status, 400);
    assert_eq!(error_type(&changed), "DuplicateRequestException");
    assert!(changed.json()["message"]
        .as_str()
        .unwrap()
        .ends_with("for this hour."));

    let mut dry = usage("mem", at, 2);
    dry["DryRun"] = json!(true);
    let dry_reply = send(&mut conn, &meter_request(&mock, &dry));
    assert_eq!(dry_reply.status, 400);
    assert_eq!(error_type(&dry_reply), "DryRunOperation");
    assert_eq!(
        dry_reply.json()["message"],
        "Request would have succeeded, but DryRun flag is set."
    );

    let unknown = send(&mut conn, &meter_request(&mock, &usage("gpu", at, 1)));
    assert_eq!(error_type(&unknown), "InvalidUsageDimensionException");
    let late = usage("mem", (now - 8 * 3600) as f64, 1);
    let late_reply = send(&mut conn, &meter_request(&mock, &late));
    assert_eq!(error_type(&late_reply), "TimestampOutOfBoundsException");
    let future = usage("mem", (now + 600) as f64, 1);
    let future_reply = send(&mut conn, &meter_request(&mock, &future));
    assert_eq!(error_type(&future_reply), "TimestampOutOfBoundsException");
    let negative = send(&mut conn, &meter_request(&mock, &usage("mem", at, -1)));
    assert_eq!(error_type(&negative), "ValidationException");
    let garbage = aws_request(&mock, METER_TARGET, "{\"Timestamp\":", Some(ANY_CREDS), now);
    assert_eq!(
        error_type(&send(&mut conn, &garbage)),
        "SerializationException"
    );

    let mem = send(&mut conn, &meter_request(&mock, &usage("mem", at, 2)));
    assert_eq!(mem.status, 200);

    let listing = get(&mock, "/_mock/meter");
    assert_eq!(listing.status, 200);
    assert_dated(&listing, clock::now_secs());
    let v = listing.json();
    assert_eq!(v["period"], 3600);
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{v}");
    let cpu = records.iter().find(|r| r["dimension"] == "cpu").unwrap();
    assert_eq!(cpu["recordId"], id.as_str());
    assert_eq!(cpu["quantity"], 3);
    assert_eq!(cpu["timestamp"], json!(at));
    let start = (at as i64).div_euclid(3600) * 3600;
    assert_eq!(cpu["periodStart"], start);
    assert_eq!(cpu["period"], start / 3600);
    assert_eq!(
        v["totals"],
        json!({ clock::rfc3339(start): {"cpu": 3, "mem": 2} })
    );

    let lines = std::fs::read_to_string(&log).unwrap();
    let meters: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "meter")
        .collect();
    assert_eq!(meters.len(), 10);
    assert_eq!(meters[0]["answer"], "ok");
    assert_eq!(meters[0]["recordId"], id.as_str());
    assert_eq!(meters[0]["dimension"], "cpu");
    assert_eq!(meters[0]["quantity"], 3);
    assert_eq!(meters[0]["timestamp"], json!(at));
    assert_eq!(meters[0]["sigv4"], "structure-only");
    assert_eq!(meters[1]["recordId"], id.as_str());
    assert_eq!(meters[2]["answer"], "DuplicateRequestException");
    assert_eq!(meters[3]["answer"], "DryRunOperation");
    assert_eq!(meters[3]["dryRun"], true);
    assert_eq!(meters[3]["recordId"], Value::Null);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn meter_answer_script_can_be_switched_at_runtime() {
    let mock = start(&["--key-bits=1024", "--meter-answer=invalid-tag,ok"]);
    let at = clock::now_secs() as f64;
    let body = usage("cpu", at, 1);
    let mut conn = connect(&mock);
    let scripted = send(&mut conn, &meter_request(&mock, &body));
    assert_eq!(error_type(&scripted), "InvalidTagException");

    let switched = post(&mock, "/_mock/meter-answer", "throttle");
    assert_eq!(switched.status, 200);
    assert_dated(&switched, clock::now_secs());
    for _ in 0..2 {
        let throttled = send(&mut conn, &meter_request(&mock, &body));
        assert_eq!(throttled.status, 400);
        assert_eq!(error_type(&throttled), "ThrottlingException");
    }
    assert_eq!(get(&mock, "/_mock/meter").json()["records"], json!([]));

    let bad = post(&mock, "/_mock/meter-answer", "bogus");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"]
        .as_str()
        .unwrap()
        .contains("unknown answer mode"));
    assert_eq!(post(&mock, "/_mock/meter-answer", "ok").status, 200);
    let ok = send(&mut conn, &meter_request(&mock, &body));
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(
        get(&mock, "/_mock/meter").json()["records"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(get(&mock, "/_mock/nothing").status, 404);
}

#[test]
fn signatures_are_checked_against_the_clock() {
    let mock = start(&["--key-bits=1024"]);
    let now = clock::now_secs();
    let stale = now - 20 * 60;
    let body = usage("cpu", now as f64, 1);
    let mut conn = connect(&mock);
    let expired = send(&mut conn, &meter_request_at(&mock, &body, stale));
    assert_eq!(expired.status, 403);
    assert_eq!(error_type(&expired), "InvalidSignatureException");
    let message = expired.json()["message"].as_str().unwrap().to_string();
    let prefix = format!(
        "Signature expired: {} is now earlier than ",
        clock::amz_date(stale)
    );
    assert!(message.starts_with(&prefix), "{message}");
    assert!(message.ends_with(" - 15 min.)"), "{message}");
    assert_dated(&expired, now);

    let register = r#"{"ProductCode":"prod-abc","PublicKeyVersion":1}"#;
    let old_register = aws_request(&mock, TARGET, register, Some(ANY_CREDS), stale);
    let reply = send(&mut conn, &old_register);
    assert_eq!(
        (reply.status, error_type(&reply)),
        (403, "InvalidSignatureException".to_string())
    );
    let fresh = send(
        &mut conn,
        &register_request(&mock, register, Some(ANY_CREDS)),
    );
    assert_eq!(fresh.status, 200);
    assert_dated(&fresh, now);
}

#[test]
fn clock_skew_shifts_the_mocks_clock() {
    let mock = start(&["--key-bits=1024", "--clock-skew=-20m"]);
    let now = clock::now_secs();
    let body = usage("cpu", (now - 1200) as f64, 1);
    let mut conn = connect(&mock);
    let early = send(&mut conn, &meter_request(&mock, &body));
    assert_eq!(early.status, 403);
    let message = early.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("Signature not yet current: ") && message.ends_with(" + 15 min.)"),
        "{message}"
    );
    assert_dated(&early, now - 1200);
    let in_step = send(&mut conn, &meter_request_at(&mock, &body, now - 1200));
    assert_eq!(
        in_step.status,
        200,
        "{}",
        String::from_utf8_lossy(&in_step.body)
    );
}

#[test]
fn prints_the_recipe_and_the_totals_on_sigterm() {
    let dir = temp_dir("recipe");
    let pem = dir.join("pub.pem");
    let mut child = Command::new(BIN)
        .args([
            "--key-bits=1024",
            "--credentials=AKIDTEST:TOPSECRET",
            &format!("--write-public-key={}", pem.display()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut mock = Mock {
        addr: url.strip_prefix("http://").unwrap().to_string(),
        child,
    };
    let recipe = loop {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "no recipe line");
        if line.contains("point entitle here") {
            break line;
        }
    };
    for part in [
        format!("AWS_ENDPOINT_URL_MARKETPLACE_METERING={url} "),
        "AWS_ACCESS_KEY_ID=AKIDTEST AWS_SECRET_ACCESS_KEY=TOPSECRET".into(),
        format!("ENTITLE_PUBLIC_KEY_FILE={}", pem.display()),
    ] {
        assert!(recipe.contains(&part), "{part} not in {recipe}");
    }

    let now = clock::now_secs();
    let body = usage("cpu", now as f64, 3).to_string();
    let signed = aws_request(
        &mock,
        METER_TARGET,
        &body,
        Some(("AKIDTEST", "TOPSECRET")),
        now,
    );
    assert_eq!(send(&mut connect(&mock), &signed).status, 200);

    // SAFETY: signals our own child, which has not been reaped yet.
    unsafe { libc::kill(mock.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_with_deadline(&mut mock.child);
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let start = clock::rfc3339(now.div_euclid(3600) * 3600);
    assert!(
        rest.contains(&format!("entitle-mock: MeterUsage {start} cpu 3 record ")),
        "{rest}"
    );
    assert!(
        rest.contains(&format!("entitle-mock: MeterUsage total {start} cpu 3\n")),
        "{rest}"
    );
    let mut more = String::new();
    stdout.read_to_string(&mut more).unwrap();
    assert_eq!(more, "", "stdout has only the URL line");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn wait_with_deadline(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "mock did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
