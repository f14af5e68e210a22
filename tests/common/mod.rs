//! Shared by the integration tests: start `entitle-mock` on 127.0.0.1 and run the real `entitle`
//! binary against it, always with a deadline so no test can hang.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PRODUCT_CODE: &str = "prod-entitletest01";
pub const ACCESS_KEY_ID: &str = "AKIDENTITLETEST00001";
pub const SECRET_ACCESS_KEY: &str = "entitleTestSecretKey/DoNotLeak0000000000";

/// The `entitle` binary under test.
pub fn entitle_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_entitle"))
}

/// The `entitle-mock` binary, built next to `entitle` (same target folder) if it is not there yet.
pub fn mock_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = entitle_bin().parent().expect("target folder").to_path_buf();
            let target_dir = profile_dir.parent().expect("target root").to_path_buf();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "entitle-mock"])
                .env("CARGO_TARGET_DIR", &target_dir)
                .status()
                .expect("run cargo build -p entitle-mock");
            assert!(status.success(), "building entitle-mock failed");
            profile_dir.join("entitle-mock")
        })
        .clone()
}

/// A file in tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The real python3 (not a version-manager shim), so fixtures start fast and keep their pid.
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed by the fixtures");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

/// The host pid of the process `unshare --fork` (pid `outer`) started: its only child,
/// waited for up to 20 s.
pub fn unshared_child(outer: u32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().expect("pid");
        }
        assert!(Instant::now() < deadline, "unshare never started entitle");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// EKS IRSA instead of static keys: a web identity token in `token_file` (written here), the
/// role to assume, and STS at `sts_url`.
pub fn with_irsa<'c>(
    command: &'c mut Command,
    token_file: &Path,
    sts_url: &str,
) -> &'c mut Command {
    std::fs::write(
        token_file,
        "eyJraWQiOiJ0ZXN0In0.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln",
    )
    .expect("write the web identity token");
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env(
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/entitle-irsa",
        )
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
        .env("AWS_ENDPOINT_URL_STS", sts_url)
}

/// A running `entitle-mock`, killed on drop.
pub struct Mock {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub public_key: PathBuf,
    pub private_key: PathBuf,
    pub log: PathBuf,
}

impl Mock {
    /// Starts the mock with `args` plus a fresh folder for its key and request log.
    pub fn start(args: &[&str]) -> Mock {
        let dir = tempfile::tempdir().expect("temp dir");
        let public_key = dir.path().join("mock-public.pem");
        let private_key = dir.path().join("mock-private.pem");
        let log = dir.path().join("requests.jsonl");
        let mut command = Command::new(mock_bin());
        command
            .args(args)
            .arg("--write-public-key")
            .arg(&public_key)
            .arg("--request-log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if !args.contains(&"--private-key") {
            command.arg("--write-private-key").arg(&private_key);
        }
        let mut child = command.spawn().expect("start entitle-mock");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("mock stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("mock prints its URL");
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "mock said {url:?}");
        Mock {
            child,
            url,
            dir,
            public_key,
            private_key,
            log,
        }
    }

    /// Every request the mock saw, oldest first.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("request log line is JSON"))
            .collect()
    }

    /// The `kind` of every request, oldest first (register, ecs, sts, other).
    pub fn request_kinds(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Only the RegisterUsage requests.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["kind"] == "register")
            .collect()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `entitle ARGS` with a clean environment aimed at `mock`: region, static test credentials,
/// product code and the mock's public key. No IMDS, no profile files.
pub fn entitle(mock: &Mock, args: &[&str]) -> Command {
    let mut command = bare_entitle(args);
    command
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_ENDPOINT_URL_MARKETPLACE_METERING", &mock.url)
        .env("ENTITLE_PRODUCT_CODE", PRODUCT_CODE)
        .env("ENTITLE_PUBLIC_KEY_FILE", &mock.public_key);
    command
}

/// `entitle ARGS` with nothing configured but PATH and no way to reach real AWS or IMDS.
pub fn bare_entitle(args: &[&str]) -> Command {
    let mut command = Command::new(entitle_bin());
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    command
}

/// What a finished run printed, and how long it took.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn assert_code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(expected),
            "exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
        self
    }
}

/// Runs `command` to completion, killing it (and failing the test) after `limit`.
pub fn run_within(command: &mut Command, limit: Duration) -> Run {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start entitle");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        // SAFETY: kill(2) on a pid we spawned; harmless if it already exited.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        true
    });
    let output: Output = child.wait_with_output().expect("wait for entitle");
    let elapsed = started.elapsed();
    let killed = elapsed >= limit && watchdog.join().unwrap_or(false);
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed,
    };
    assert!(
        !killed,
        "entitle did not finish within {limit:?}; stderr:\n{}",
        run.stderr
    );
    run
}

/// Runs with the default 60 s safety limit.
pub fn run(command: &mut Command) -> Run {
    run_within(command, Duration::from_secs(60))
}

/// A minimal HTTP/1.1 exchange with a local test server (the relay or the mock's control
/// endpoints): one request, `Connection: close`, the status and body back.
pub fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
