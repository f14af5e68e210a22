//! HTTPS as in production: rustls with the embedded Amazon roots only, plus `SSL_CERT_FILE` for a
//! private CA. A local TLS front (tests/fixtures/tls_proxy.py, Python's ssl) relays to
//! `entitle-mock`, with a certificate from a throwaway CA made by openssl.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct TlsFront {
    child: Child,
    url: String,
    ca: PathBuf,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(status.success(), "openssl {args:?}");
}

fn tls_front(mock: &Mock) -> TlsFront {
    let dir = mock.dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=entitle test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tls.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let port = mock.url.rsplit(':').next().unwrap().to_owned();
    let mut child = Command::new(python())
        .arg(fixture("tls_proxy.py"))
        .args([dir.join("tls.pem"), dir.join("tls.key")])
        .arg(port)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the TLS front");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    TlsFront {
        child,
        url: url.trim().to_owned(),
        ca: dir.join("ca.pem"),
    }
}

#[test]
fn https_with_a_private_ca_from_ssl_cert_file() {
    let mock = Mock::start(&[]);
    let front = tls_front(&mock);
    let mut command = entitle(&mock, &["check"]);
    command
        .env("AWS_ENDPOINT_URL_MARKETPLACE_METERING", &front.url)
        .env("SSL_CERT_FILE", &front.ca);
    run(&mut command).assert_code(0);
    assert_eq!(mock.registrations().len(), 1);
}

#[test]
fn an_untrusted_certificate_fails_closed_at_once() {
    let mock = Mock::start(&[]);
    let front = tls_front(&mock);
    let mut command = entitle(&mock, &["check", "--timeout", "30s"]);
    command.env("AWS_ENDPOINT_URL_MARKETPLACE_METERING", &front.url);
    let result = run(&mut command);
    result.assert_code(76);
    assert!(result.stderr.contains("not trusted"), "{}", result.stderr);
    assert!(
        result.elapsed < Duration::from_secs(10),
        "no retries: {:?}",
        result.elapsed
    );
    assert!(mock.registrations().is_empty());
}
