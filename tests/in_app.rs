//! In-app verification: `examples/guarded_service.rs` serves only with a token that verifies, so
//! a buyer who overrides the image's ENTRYPOINT (skipping `entitle`) gets nothing.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn guarded_service() -> PathBuf {
    let path = entitle_bin()
        .parent()
        .unwrap()
        .join("examples/guarded_service");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "guarded_service"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    path
}

fn service_args(mock: &Mock, product_code: &str) -> Vec<String> {
    vec![
        guarded_service().to_string_lossy().into_owned(),
        "--product-code".into(),
        product_code.into(),
        "--public-key-file".into(),
        mock.public_key.to_string_lossy().into_owned(),
        "--port".into(),
        "0".into(),
    ]
}

#[test]
fn the_service_serves_when_started_by_entitle_run() {
    let mock = Mock::start(&[]);
    let mut args = vec!["run".to_owned(), "--".to_owned()];
    args.extend(service_args(&mock, PRODUCT_CODE));
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = entitle(&mock, &arg_refs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(line.starts_with("serving"), "{line}");
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert_eq!(answer.trim(), format!("entitled to {PRODUCT_CODE}"));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(143),
        "SIGTERM forwarded; the service died of it"
    );
}

#[test]
fn the_service_refuses_without_entitle_or_with_a_token_for_another_product() {
    let mock = Mock::start(&[]);
    let args = service_args(&mock, PRODUCT_CODE);
    let mut bypass = Command::new(&args[0]);
    bypass.args(&args[1..]).env_clear();
    let result = run(&mut bypass);
    result.assert_code(76);
    assert!(
        result.stderr.contains("refusing to serve"),
        "{}",
        result.stderr
    );

    // A genuine token, but issued for the vendor's free product: refused by productCode.
    let record_path = mock.path("free.json");
    let mut free = entitle(&mock, &["check", "--output", record_path.to_str().unwrap()]);
    free.env("ENTITLE_PRODUCT_CODE", "prod-free-tier");
    run(&mut free).assert_code(0);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    let mut forged = Command::new(&args[0]);
    forged
        .args(&args[1..])
        .env_clear()
        .env("ENTITLE_TOKEN", record["signature"].as_str().unwrap())
        .env("ENTITLE_NONCE", record["nonce"].as_str().unwrap());
    let result = run(&mut forged);
    result.assert_code(76);
    assert!(result.stderr.contains("productCode"), "{}", result.stderr);
}
