//! Field conditions (issue "Field conditions"): what real clusters do to `entitle`, recreated
//! around the real binary as a user runs it.
//!
//! - Networks: a loopback-only network namespace (`unshare -n -m`) where AWS's names do not
//!   resolve, with its own /etc/resolv.conf, /etc/hosts and /etc/nsswitch.conf, and
//!   169.254.170.2 on `lo` for the ECS credential endpoint. A shell holds it open; every process
//!   of a test (entitle-mock, a TLS front, an HTTP proxy, a fake DNS server, entitle itself) is
//!   started inside it with `nsenter`, by this file, so each is a `Child` killed on drop.
//! - The Metering and STS stand-in is `entitle-mock` behind tests/fixtures/tls_proxy.py, with a
//!   certificate for metering.marketplace.us-east-1.amazonaws.com and sts.us-east-1.amazonaws.com
//!   from a throwaway CA (`SSL_CERT_FILE`). Only the proxy (tests/fixtures/connect_proxy.py) knows
//!   where those names really are.
//! - PID 1: `unshare --pid --fork --mount-proc`, signals sent from outside.
//! - Mounts: `unshare -m` for a read-only volume, a missing /proc and Kubernetes' /dev.
//!
//! Every run has a deadline; timing bounds are the budget plus 1.5 s. Needs root, `unshare`,
//! `nsenter`, `ip` (iproute2), python3 and openssl; where namespaces are not permitted the
//! tests say so and pass without running (as tests/run.rs does).

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const METERING_HOST: &str = "metering.marketplace.us-east-1.amazonaws.com";
const METERING_URL: &str = "https://metering.marketplace.us-east-1.amazonaws.com";
const STS_HOST: &str = "sts.us-east-1.amazonaws.com";
/// The budget of runs that are expected to give up...
const BUDGET: &str = "2s";
/// ...and the wall time they must keep: the budget plus 1.5 s.
const BUDGET_BOUND: Duration = Duration::from_millis(3500);
/// The budget of runs that are expected to succeed: enough, and a quick failure if not.
const ENOUGH: &str = "20s";
/// The safety limit for any one run (it fails the test, it is not a bound being tested).
const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Harness: fixtures, processes that die with the test, namespaces

fn succeeds(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether this machine lets us make network, mount and PID namespaces; says why not, once.
fn namespaces_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let probes: [(&str, &[&str]); 2] = [
            ("unshare", &["-n", "-m", "true"]),
            ("unshare", &["--pid", "--fork", "--mount-proc", "true"]),
        ];
        for (program, args) in probes {
            if let Err(why) = succeeds(program, args) {
                eprintln!("SKIPPED: namespaces are not permitted here ({program} {args:?}: {why})");
                return false;
            }
        }
        assert!(
            succeeds("ip", &["-V"]).is_ok(),
            "the field tests need `ip` from iproute2 (apt-get install iproute2)"
        );
        assert!(
            succeeds("nsenter", &["--version"]).is_ok(),
            "the field tests need nsenter (util-linux)"
        );
        true
    })
}

macro_rules! require_namespaces {
    () => {
        if !namespaces_available() {
            return;
        }
    };
}

/// Makes the child get SIGKILL when the test's thread ends, however it ends.
fn dies_with_test(command: &mut Command) -> &mut Command {
    // SAFETY: prctl(2) only changes this (child) process's death signal; it allocates nothing
    // and is async-signal-safe, as required between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        })
    }
}

/// A helper process (namespace holder, mock, fixture) that prints one line when it is ready.
/// Killed on drop; its stderr goes to a file, shown if it fails to start.
struct Daemon {
    child: Child,
    /// The first line it printed (a URL, a port, `ready`).
    line: String,
    _stdin: ChildStdin,
}

impl Daemon {
    fn start(command: &mut Command, stderr_file: &Path) -> Daemon {
        let log = std::fs::File::create(stderr_file).expect("create a stderr file");
        let mut child = dies_with_test(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default();
        if line.trim().is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?} {:?} did not start; its stderr:\n{}",
                command.get_program(),
                command.get_args().collect::<Vec<_>>(),
                std::fs::read_to_string(stderr_file).unwrap_or_default()
            );
        }
        let stdin = child.stdin.take().expect("stdin");
        Daemon {
            child,
            line: line.trim().to_owned(),
            _stdin: stdin,
        }
    }

    fn port(&self) -> u16 {
        let port = self.line.rsplit(':').next().unwrap_or(&self.line);
        port.parse()
            .unwrap_or_else(|_| panic!("no port in {:?}", self.line))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A network namespace with only `lo` (`unshare -n -m`), or only a mount namespace
/// (`unshare -m`), held open by a shell that ends with the test. Its folder holds the files
/// the namespace mounts and the fixtures' logs.
struct Namespace {
    dir: tempfile::TempDir,
    network: bool,
    holder: Option<Daemon>,
}

impl Namespace {
    /// A loopback-only network where names resolve through `resolv_conf` only, 169.254.170.2
    /// is on `lo`, and /etc/hosts knows only localhost.
    fn network(resolv_conf: &str) -> Namespace {
        let ns = Namespace::unstarted(true);
        let path = |name: &str| ns.path(name).display().to_string();
        std::fs::write(ns.path("resolv.conf"), resolv_conf).unwrap();
        std::fs::write(ns.path("hosts"), "127.0.0.1 localhost\n::1 localhost\n").unwrap();
        std::fs::write(ns.path("nsswitch.conf"), "hosts: files dns\n").unwrap();
        let setup = format!(
            "ip link set lo up
             ip addr add 169.254.170.2/32 dev lo
             mount --bind {resolv} /etc/resolv.conf
             mount --bind {hosts} /etc/hosts
             if [ -e /etc/nsswitch.conf ]; then mount --bind {nsswitch} /etc/nsswitch.conf; fi",
            resolv = path("resolv.conf"),
            hosts = path("hosts"),
            nsswitch = path("nsswitch.conf"),
        );
        ns.start(&setup)
    }

    /// The host's network, its own mounts: `setup` (shell) may use `$DIR`, this folder.
    fn mounts(setup: &str) -> Namespace {
        Namespace::unstarted(false).start(setup)
    }

    fn unstarted(network: bool) -> Namespace {
        Namespace {
            dir: tempfile::tempdir().expect("temp dir"),
            network,
            holder: None,
        }
    }

    fn start(mut self, setup: &str) -> Namespace {
        let script = format!("set -e\n{setup}\necho ready\nread _ || true\n");
        let mut command = Command::new("unshare");
        if self.network {
            command.arg("--net");
        }
        command
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(script)
            .env("DIR", self.dir.path());
        self.holder = Some(Daemon::start(&mut command, &self.path("holder.stderr")));
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pid(&self) -> String {
        self.holder
            .as_ref()
            .expect("started")
            .child
            .id()
            .to_string()
    }

    /// `command` run inside the namespace, with its environment (cleared, then its own).
    fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("nsenter");
        wrapped.args(["--target", &self.pid()]);
        if self.network {
            wrapped.arg("--net");
        }
        wrapped
            .args(["--mount", "--"])
            .arg(command.get_program())
            .args(command.get_args())
            .env_clear()
            .envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .stdin(Stdio::null());
        wrapped
    }

    /// A helper process inside the namespace, ready once it printed its first line.
    fn daemon(&self, name: &str, program: &str, args: &[&str]) -> Daemon {
        let mut command = Command::new(program);
        command.args(args);
        Daemon::start(
            &mut self.wrap(&command),
            &self.path(&format!("{name}.stderr")),
        )
    }

    /// A Python fixture inside the namespace.
    fn python(&self, name: &str, script: &str, args: &[&str]) -> Daemon {
        let script = fixture(script);
        let mut argv = vec![script.to_str().unwrap()];
        argv.extend_from_slice(args);
        self.daemon(name, python(), &argv)
    }

    /// `entitle-mock ARGS` inside the namespace.
    fn mock(&self, name: &str, args: &[&str]) -> NsMock {
        let public_key = self.path(&format!("{name}-public.pem"));
        let log = self.path(&format!("{name}-requests.jsonl"));
        let mut argv: Vec<&str> = args.to_vec();
        argv.extend_from_slice(&["--write-public-key", public_key.to_str().unwrap()]);
        argv.extend_from_slice(&["--request-log", log.to_str().unwrap()]);
        let daemon = self.daemon(name, mock_bin().to_str().unwrap(), &argv);
        NsMock {
            daemon,
            public_key,
            log,
        }
    }

    /// `entitle ARGS` inside the namespace, configured for the product of `public_key`.
    fn entitle(&self, args: &[&str], public_key: &Path) -> Command {
        self.wrap(&configured(entitle_bin().as_path(), args, public_key))
    }
}

/// `entitle ARGS` (or another build of it) with the region, static credentials, product code
/// and key, and nothing from the caller's environment (no proxy variables, no IMDS).
fn configured(binary: &Path, args: &[&str], public_key: &Path) -> Command {
    let template = bare_entitle(args);
    let mut command = Command::new(binary);
    command
        .args(template.get_args())
        .env_clear()
        .envs(template.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdin(Stdio::null())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("ENTITLE_PRODUCT_CODE", PRODUCT_CODE)
        .env("ENTITLE_PUBLIC_KEY_FILE", public_key);
    command
}

/// An `entitle-mock` started inside a namespace.
struct NsMock {
    daemon: Daemon,
    public_key: PathBuf,
    log: PathBuf,
}

impl NsMock {
    fn url(&self) -> &str {
        &self.daemon.line
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("request log line is JSON"))
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA (`ca.pem`) and its certificate for the Metering and STS names
/// (`tls.pem`, `tls.key`), as tests/tls.rs makes them.
fn make_certificates(dir: &Path) -> PathBuf {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let run = |line: String| openssl(dir, &line.split_whitespace().collect::<Vec<_>>());
    run(format!(
        "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=entitle-field-test-CA"
    ));
    run(format!(
        "req {ec} -keyout tls.key -out tls.csr -subj /CN={METERING_HOST}"
    ));
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=DNS:{METERING_HOST},DNS:{STS_HOST}\n"),
    )
    .unwrap();
    run("x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 2 -extfile ext.cnf".into());
    dir.join("ca.pem")
}

/// A product key for runs that never get an answer to verify.
fn product_key(dir: &Path) -> PathBuf {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "product.key",
        ],
    );
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "product.key",
            "-pubout",
            "-out",
            "product.pem",
        ],
    );
    dir.join("product.pem")
}

/// The last line of a run's stderr: the failure line.
fn last_line(stderr: &str) -> &str {
    stderr.trim_end().lines().last().unwrap_or_default()
}

/// Asserts the final line says how many attempts in how long, and that both are plausible for
/// a run that gave up after `BUDGET`.
fn assert_attempts_and_time(result: &Run) {
    let line = last_line(&result.stderr);
    let after = line
        .split("(after ")
        .nth(1)
        .unwrap_or_else(|| panic!("no `(after N attempts in T` in: {line}"));
    let mut words = after.split_whitespace();
    let attempts: u32 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(attempts >= 1, "attempt count: {line}");
    let took = after
        .split(" in ")
        .nth(1)
        .and_then(|t| t.split('s').next())
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no time in: {line}"));
    assert!(
        (1.5..=BUDGET_BOUND.as_secs_f64()).contains(&took)
            && took <= result.elapsed.as_secs_f64() + 0.05,
        "claimed {took}s, took {:?}: {line}",
        result.elapsed
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Proxies

/// A cluster where AWS's names do not resolve (nothing answers on 127.0.0.1:53) and the only
/// way out is a proxy that knows where they are: the Metering and STS stand-in (entitle-mock
/// behind TLS) inside a loopback-only namespace.
struct Site {
    ns: Namespace,
    mock: NsMock,
    tls: Daemon,
    ca: PathBuf,
}

impl Site {
    fn new(mock_args: &[&str]) -> Site {
        let ns = Namespace::network("nameserver 127.0.0.1\n");
        let ca = make_certificates(ns.dir.path());
        let mock = ns.mock("mock", mock_args);
        let tls_args = [
            ns.path("tls.pem").display().to_string(),
            ns.path("tls.key").display().to_string(),
            mock.daemon.port().to_string(),
        ];
        let tls_args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
        let tls = ns.python("tls", "tls_proxy.py", &tls_args);
        Site { ns, mock, tls, ca }
    }

    /// The proxy, knowing Metering and STS on 443 (the TLS front) and Metering on 80 (the mock).
    fn proxy(&self, name: &str, extra: &[&str]) -> ProxyFixture {
        let log = self.ns.path(&format!("{name}.log"));
        let tls = format!("127.0.0.1:{}", self.tls.port());
        let plain = format!("127.0.0.1:{}", self.mock.daemon.port());
        let maps = [
            format!("{METERING_HOST}:443={tls}"),
            format!("{STS_HOST}:443={tls}"),
            format!("{METERING_HOST}:80={plain}"),
        ];
        let mut args = vec!["--log", log.to_str().unwrap()];
        for map in &maps {
            args.extend_from_slice(&["--map", map]);
        }
        args.extend_from_slice(extra);
        let daemon = self.ns.python(name, "connect_proxy.py", &args);
        ProxyFixture { daemon, log }
    }

    /// `entitle check --endpoint-url https://metering… --timeout T EXTRA` trusting the test CA,
    /// with `env` added.
    fn check(&self, timeout: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        self.check_at(METERING_URL, timeout, extra, env)
    }

    fn check_at(&self, endpoint: &str, timeout: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args = vec!["check", "--endpoint-url", endpoint, "--timeout", timeout];
        args.extend_from_slice(extra);
        let mut command = configured(entitle_bin().as_path(), &args, &self.mock.public_key);
        command.env("SSL_CERT_FILE", &self.ca);
        for (k, v) in env {
            command.env(k, v);
        }
        run_within(&mut self.ns.wrap(&command), LIMIT)
    }
}

struct ProxyFixture {
    daemon: Daemon,
    log: PathBuf,
}

impl ProxyFixture {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port())
    }

    /// Every request line the proxy received, oldest first.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn connect_line(host: &str) -> String {
    format!("CONNECT {host}:443 HTTP/1.1")
}

#[test]
fn without_a_proxy_an_unresolvable_endpoint_exits_75_on_time_naming_the_host() {
    require_namespaces!();
    let site = Site::new(&[]);
    let result = site.check(BUDGET, &[], &[]);
    assert_gave_up_on_time(
        "direct",
        &result,
        &format!("cannot resolve {METERING_HOST}"),
    );
    assert!(site.mock.requests().is_empty());
}

#[test]
fn https_proxy_https_proxy_lower_case_and_all_proxy_reach_the_endpoint_through_connect() {
    require_namespaces!();
    let site = Site::new(&[]);
    let proxy = site.proxy("proxy", &[]);
    for variable in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
        let before = proxy.requests().len();
        let result = site.check(ENOUGH, &[], &[(variable, &proxy.url())]);
        result.assert_code(0);
        assert!(result.stderr.contains("entitled"), "{}", result.stderr);
        assert_eq!(
            proxy.requests()[before..],
            [connect_line(METERING_HOST)],
            "{variable}"
        );
    }
    assert_eq!(site.mock.kinds(), ["register"; 3]);
}

#[test]
fn no_proxy_sends_the_endpoint_direct_even_when_only_the_proxy_could_reach_it() {
    require_namespaces!();
    let site = Site::new(&[]);
    let proxy = site.proxy("proxy", &[]);
    for no_proxy in [".amazonaws.com", "*"] {
        let result = site.check(
            BUDGET,
            &[],
            &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", no_proxy)],
        );
        result.assert_code(75);
        assert!(result.elapsed < BUDGET_BOUND, "{:?}", result.elapsed);
        assert!(
            last_line(&result.stderr).contains(&format!("cannot resolve {METERING_HOST}")),
            "NO_PROXY={no_proxy}: {}",
            result.stderr
        );
    }
    assert_eq!(proxy.requests(), Vec::<String>::new(), "no CONNECT");
}

#[test]
fn proxy_basic_auth_works_fails_closed_with_78_and_never_shows_the_password() {
    require_namespaces!();
    let site = Site::new(&[]);
    let proxy = site.proxy("proxy", &["--auth", "field-user:pr0xy/S3cret!Never"]);
    let port = proxy.daemon.port();
    let base64 = |pair: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(pair)
    };

    let right = format!("http://field-user:pr0xy%2FS3cret%21Never@127.0.0.1:{port}");
    let result = site.check(
        ENOUGH,
        &["--log-level", "trace"],
        &[("HTTPS_PROXY", &right)],
    );
    result.assert_code(0);
    assert_eq!(proxy.requests(), [connect_line(METERING_HOST)]);
    for secret in [
        "S3cret",
        "pr0xy%2F",
        &base64("field-user:pr0xy/S3cret!Never"),
    ] {
        assert!(!result.stderr.contains(secret), "{secret} leaked");
    }

    let wrong = format!("http://field-user:wr0ng%2FGuess@127.0.0.1:{port}");
    let result = site.check(
        ENOUGH,
        &["--log-level", "trace"],
        &[("HTTPS_PROXY", &wrong)],
    );
    result.assert_code(78);
    let line = last_line(&result.stderr);
    assert!(
        line.contains(&format!("proxy http://127.0.0.1:{port} (with credentials)"))
            && line.contains("407"),
        "{line}"
    );
    for secret in ["wr0ng", "Guess", &base64("field-user:wr0ng/Guess")] {
        assert!(!result.stderr.contains(secret), "{secret} leaked");
    }
    assert_eq!(proxy.requests().len(), 2, "a refusal is not retried");
    assert_eq!(site.mock.kinds(), ["register"]);
}

#[test]
fn a_proxy_refusing_connect_is_78_and_one_not_listening_is_75_both_named() {
    require_namespaces!();
    let site = Site::new(&[]);
    let proxy = site.proxy("proxy", &["--refuse", "403"]);
    let result = site.check(ENOUGH, &[], &[("HTTPS_PROXY", &proxy.url())]);
    result.assert_code(78);
    let line = last_line(&result.stderr);
    assert!(
        line.contains(&format!(
            "proxy {} refused CONNECT {METERING_HOST}:443: HTTP 403",
            proxy.url()
        )),
        "{line}"
    );
    assert_eq!(proxy.requests().len(), 1, "a refusal is not retried");

    let result = site.check(BUDGET, &[], &[("HTTPS_PROXY", "http://127.0.0.1:1")]);
    assert_gave_up_on_time("a dead proxy", &result, "proxy http://127.0.0.1:1");
    assert!(site.mock.requests().is_empty());
}

#[test]
fn an_http_endpoint_goes_through_http_proxy_in_absolute_form() {
    require_namespaces!();
    let site = Site::new(&[]);
    let proxy = site.proxy("proxy", &[]);
    let result = site.check_at(
        &format!("http://{METERING_HOST}"),
        ENOUGH,
        &[],
        &[
            ("HTTP_PROXY", &proxy.url()),
            ("HTTPS_PROXY", "http://127.0.0.1:1"),
        ],
    );
    result.assert_code(0);
    assert_eq!(
        proxy.requests(),
        [format!("POST http://{METERING_HOST}/ HTTP/1.1")]
    );
    assert_eq!(site.mock.kinds(), ["register"]);
}

#[test]
fn ecs_container_credentials_stay_direct_behind_a_proxy() {
    require_namespaces!();
    let site = Site::new(&[]);
    let proxy = site.proxy("proxy", &[]);
    let ecs = site.ns.mock(
        "ecs",
        &[
            "--listen",
            "169.254.170.2:80",
            "--credentials",
            "ASIAECSFIELD00000001:ecsFieldSecretDoNotLeak0000000000000000",
        ],
    );
    assert_eq!(ecs.url(), "http://169.254.170.2:80");
    let mut args = vec!["check", "--endpoint-url", METERING_URL, "--timeout", ENOUGH];
    args.extend_from_slice(&["--log-level", "trace"]);
    let mut command = configured(entitle_bin().as_path(), &args, &site.mock.public_key);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/ecs/v2/credentials",
        )
        .env("SSL_CERT_FILE", &site.ca)
        .env("HTTPS_PROXY", proxy.url())
        .env("HTTP_PROXY", proxy.url());
    let result = run_within(&mut site.ns.wrap(&command), LIMIT);
    result.assert_code(0);
    assert_eq!(
        ecs.kinds(),
        ["ecs"],
        "the credentials came from 169.254.170.2"
    );
    assert_eq!(proxy.requests(), [connect_line(METERING_HOST)]);
    let register = &site.mock.requests()[0];
    assert_eq!(
        register["accessKeyId"], "ASIAECSFIELD00000001",
        "{register}"
    );
    assert_eq!(register["securityToken"], true, "{register}");
    assert!(!result.stderr.contains("ecsFieldSecretDoNotLeak"));
}

#[test]
fn eks_irsa_web_identity_goes_to_sts_through_the_proxy() {
    require_namespaces!();
    let site = Site::new(&[
        "--credentials",
        "ASIAIRSAFIELD0000001:irsaFieldSecretDoNotLeak000000000000000",
    ]);
    let proxy = site.proxy("proxy", &[]);
    let mut args = vec!["check", "--endpoint-url", METERING_URL, "--timeout", ENOUGH];
    args.extend_from_slice(&["--log-level", "trace"]);
    let mut command = configured(entitle_bin().as_path(), &args, &site.mock.public_key);
    with_irsa(
        &mut command,
        &site.ns.path("web-identity-token"),
        &format!("https://{STS_HOST}"),
    )
    .env("SSL_CERT_FILE", &site.ca)
    .env("HTTPS_PROXY", proxy.url());
    let result = run_within(&mut site.ns.wrap(&command), LIMIT);
    result.assert_code(0);
    assert_eq!(
        proxy.requests(),
        [connect_line(STS_HOST), connect_line(METERING_HOST)]
    );
    assert_eq!(site.mock.kinds(), ["sts", "register"]);
    assert_eq!(site.mock.requests()[1]["sigv4"], "ok");
    assert!(!result.stderr.contains("irsaFieldSecretDoNotLeak"));
}

// ---------------------------------------------------------------------------------------------
// 2. Skewed clocks

#[test]
fn a_node_clock_off_by_20_minutes_or_2_hours_is_corrected_with_one_retry() {
    for skew in ["-20m", "+2h"] {
        let mock = Mock::start(&["--clock-skew", skew]);
        let result = run_within(&mut entitle(&mock, &["check", "--timeout", ENOUGH]), LIMIT);
        result.assert_code(0);
        let success = result
            .stderr
            .lines()
            .find(|l| l.contains("entitled"))
            .unwrap_or_else(|| panic!("{skew}: no success line: {}", result.stderr));
        assert!(success.contains("attempts=2"), "{skew}: {success}");
        assert_eq!(mock.registrations().len(), 2, "{skew}");
    }
}

#[test]
fn a_clock_aws_keeps_refusing_is_named_after_exactly_two_requests() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.log");
    let script = fixture("expired_signature.py");
    let mut command = Command::new(python());
    command.arg(&script).arg(&log);
    let aws = Daemon::start(&mut command, &dir.path().join("aws.stderr"));
    let key = product_key(dir.path());
    let mut command = configured(
        entitle_bin().as_path(),
        &["check", "--timeout", ENOUGH],
        &key,
    );
    command.env("AWS_ENDPOINT_URL_MARKETPLACE_METERING", &aws.line);
    let result = run_within(&mut command, LIMIT);
    result.assert_code(78);
    let line = last_line(&result.stderr);
    assert!(
        line.contains("Signature expired") && line.contains("time synchronisation"),
        "{line}"
    );
    let behind = line
        .split("clock is ")
        .nth(1)
        .and_then(|rest| rest.split(" behind AWS's").next())
        .unwrap_or_else(|| panic!("no `clock is … behind AWS's`: {line}"));
    assert!(
        ["19m 5", "20m 0"].iter().any(|m| behind.starts_with(m)),
        "about 20 minutes behind: {line}"
    );
    let requests = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(requests.lines().count(), 2, "{requests}");
    assert!(
        result.elapsed < Duration::from_secs(10),
        "{:?}",
        result.elapsed
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A DNS server that never answers, or says the name does not exist

const KUBERNETES_RESOLV_CONF: &str = "search ns.svc.cluster.local svc.cluster.local cluster.local ec2.internal\noptions ndots:5\nnameserver 127.0.0.1\n";

/// A namespace whose only DNS server (127.0.0.1:53) is `fake_dns.py MODE`.
fn dns_namespace(resolv_conf: &str, mode: &str) -> (Namespace, Daemon, PathBuf) {
    let ns = Namespace::network(resolv_conf);
    let dns = ns.python("dns", "fake_dns.py", &[mode]);
    let key = product_key(ns.dir.path());
    (ns, dns, key)
}

/// Asserts a run gave up with 75 on time, its last line naming the Metering host.
fn assert_gave_up_on_time_naming_the_host(what: &str, result: &Run) {
    assert_gave_up_on_time(what, result, METERING_HOST);
}

/// Asserts a run gave up with 75 on time, with a last line that contains `names` and says how
/// many attempts it made in how long.
fn assert_gave_up_on_time(what: &str, result: &Run, names: &str) {
    assert_eq!(result.code, Some(75), "{what}: {}", result.stderr);
    assert!(
        result.elapsed < BUDGET_BOUND,
        "{what}: took {:?}: {}",
        result.elapsed,
        result.stderr
    );
    let line = last_line(&result.stderr);
    assert!(
        line.contains(names),
        "{what}: the last line must name {names}: {line}"
    );
    assert_attempts_and_time(result);
    assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
}

/// `check`, `run -- true` and `run --start concurrent -- sleep 30` all give up on time.
fn assert_the_deadline_holds(resolv_conf: &str) {
    let (ns, _dns, key) = dns_namespace(resolv_conf, "silent");
    let endpoint = ["--endpoint-url", METERING_URL, "--timeout", BUDGET];
    let check = [&["check"][..], &endpoint].concat();
    let result = run_within(&mut ns.entitle(&check, &key), LIMIT);
    assert_gave_up_on_time_naming_the_host("check", &result);

    let gate = [&["run"][..], &endpoint, &["--", "true"]].concat();
    let result = run_within(&mut ns.entitle(&gate, &key), LIMIT);
    assert_gave_up_on_time_naming_the_host("run (gate)", &result);

    let pid_file = ns.path("workload.pid");
    let workload = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let concurrent = [
        &["run", "--start", "concurrent"][..],
        &endpoint,
        &["--", "sh", "-c", &workload],
    ]
    .concat();
    let result = run_within(&mut ns.entitle(&concurrent, &key), LIMIT);
    assert_gave_up_on_time_naming_the_host("run --start concurrent", &result);
    assert!(
        result.stderr.contains("workload stopped"),
        "{}",
        result.stderr
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the workload started");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{}", pid.trim())).exists() {
        assert!(Instant::now() < deadline, "the workload {pid} still runs");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_dns_server_that_never_answers_cannot_hold_check_or_run_past_the_deadline() {
    require_namespaces!();
    assert_the_deadline_holds("nameserver 127.0.0.1\n");
}

#[test]
fn kubernetes_search_domains_and_ndots_with_a_silent_dns_server_keep_the_deadline() {
    require_namespaces!();
    assert_the_deadline_holds(KUBERNETES_RESOLV_CONF);
}

#[test]
fn nxdomain_exits_75_naming_the_host() {
    require_namespaces!();
    let (ns, _dns, key) = dns_namespace(KUBERNETES_RESOLV_CONF, "nxdomain");
    let args = ["check", "--endpoint-url", METERING_URL, "--timeout", BUDGET];
    let result = run_within(&mut ns.entitle(&args, &key), LIMIT);
    assert_gave_up_on_time_naming_the_host("check", &result);
    assert!(
        last_line(&result.stderr).contains(&format!("cannot resolve {METERING_HOST}")),
        "{}",
        result.stderr
    );
}

/// The shipped static binary resolves names with musl, not glibc: the same deadline must hold.
/// With ENTITLE_TEST_STATIC=1 it is built first (scripts/build-static.sh); otherwise it is used
/// only if it is already there.
#[test]
fn the_static_musl_binary_keeps_the_deadline_with_a_silent_dns_server() {
    require_namespaces!();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("ENTITLE_TEST_STATIC").is_some_and(|v| v == "1") {
        let status = Command::new(root.join("scripts/build-static.sh"))
            .current_dir(root)
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/build-static.sh");
        assert!(status.success(), "scripts/build-static.sh failed");
    }
    let binary = root.join("target/dist/x86_64-unknown-linux-musl/entitle");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let built_for_this_code =
        modified(&binary) >= modified(Path::new(env!("CARGO_BIN_EXE_entitle")));
    if !binary.exists() || !built_for_this_code {
        eprintln!(
            "SKIPPED: {} is missing or older than this build (set ENTITLE_TEST_STATIC=1, or run scripts/build-static.sh first)",
            binary.display()
        );
        return;
    }
    let (ns, _dns, key) = dns_namespace("nameserver 127.0.0.1\n", "silent");
    let args = ["check", "--endpoint-url", METERING_URL, "--timeout", BUDGET];
    let result = run_within(&mut ns.wrap(&configured(&binary, &args, &key)), LIMIT);
    assert_gave_up_on_time_naming_the_host("static check", &result);
}

// ---------------------------------------------------------------------------------------------
// 4. `entitle check` / `entitle verify` as a container's PID 1, stopped from outside

/// `command` as PID 1 of a new PID namespace; stdin stays open until it exits.
struct Pid1 {
    unshare: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Pid1 {
    fn start(command: &Command) -> Pid1 {
        let mut unshare = Command::new("unshare");
        unshare
            .args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
            .arg(command.get_program())
            .args(command.get_args())
            .env_clear()
            .envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = dies_with_test(&mut unshare).spawn().expect("start unshare");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Pid1 {
            stdin: child.stdin.take(),
            unshare: child,
            stderr: Some(stderr),
        }
    }

    /// The host pid of the namespace's PID 1: unshare's only child.
    fn host_pid(&self) -> i32 {
        unshared_child(self.unshare.id())
    }

    /// Waits until `ready` holds (checked every 10 ms, for at most 20 s).
    fn wait_until(&self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            assert!(Instant::now() < deadline, "never: {what}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to PID 1 from outside; its exit code, how long it took, its stderr.
    fn stop_with(mut self, signal: i32) -> (i32, Duration, String) {
        let pid = self.host_pid();
        let sent = Instant::now();
        // SAFETY: kill(2) with plain integers, to a process this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill");
        let deadline = sent + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.unshare.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "PID 1 ignored signal {signal}");
            thread::sleep(Duration::from_millis(5));
        };
        let took = sent.elapsed();
        drop(self.stdin.take());
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        let stderr = self.stderr.take().expect("read once");
        (code, took, stderr.join().unwrap_or_default())
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

const STOP_SIGNALS: [(i32, &str); 4] = [
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGQUIT, "SIGQUIT"),
];

fn assert_stopped_at_once(signal: i32, name: &str, (code, took, stderr): (i32, Duration, String)) {
    assert_eq!(code, 128 + signal, "{name}: {stderr}");
    assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{name}: one line: {stderr}");
    assert!(
        lines[0].contains(&format!("stopped by {name}")),
        "{name}: {stderr}"
    );
}

#[test]
fn check_as_pid1_stops_at_once_on_term_int_hup_and_quit() {
    require_namespaces!();
    let mock = Mock::start(&["--answer", "stall"]);
    for (signal, name) in STOP_SIGNALS {
        let before = mock.registrations().len();
        let pid1 = Pid1::start(&entitle(&mock, &["check"]));
        pid1.wait_until("entitle is waiting for RegisterUsage", || {
            mock.registrations().len() > before
        });
        assert_stopped_at_once(signal, name, pid1.stop_with(signal));
    }
}

#[test]
fn verify_as_pid1_waiting_on_stdin_stops_at_once_on_term_int_hup_and_quit() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    for (signal, name) in STOP_SIGNALS {
        let pid1 = Pid1::start(&entitle(&mock, &["verify", "--token", "-", "--nonce", "n"]));
        let pid = pid1.host_pid();
        // A second thread exists once every signal is blocked and the worker reads stdin.
        pid1.wait_until("entitle is reading the token from stdin", || {
            std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count()) >= 2
        });
        assert_stopped_at_once(signal, name, pid1.stop_with(signal));
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Small ones: read-only volumes, absurd values, no /proc, Kubernetes' termination log

#[test]
fn a_read_only_output_volume_is_78_before_any_request() {
    require_namespaces!();
    let ns = Namespace::mounts("mkdir -p $DIR/out && mount --bind -o ro $DIR/out $DIR/out");
    let mock = Mock::start(&["--answer", "throttle"]);
    let record = ns.path("out/record.json");
    let command = entitle(
        &mock,
        &[
            "check",
            "--timeout",
            ENOUGH,
            "--output",
            record.to_str().unwrap(),
        ],
    );
    let result = run_within(&mut ns.wrap(&command), LIMIT);
    result.assert_code(78);
    let line = last_line(&result.stderr);
    assert!(
        line.contains(&ns.path("out").display().to_string()) && line.contains("not writable"),
        "{line}"
    );
    assert_eq!(result.stderr.trim().lines().count(), 1, "{}", result.stderr);
    assert!(mock.registrations().is_empty(), "no request was sent");
}

#[test]
fn an_absurd_timeout_is_a_usage_error_in_one_line() {
    let mock = Mock::start(&[]);
    let result = run_within(
        &mut entitle(&mock, &["check", "--timeout", "500000000000y"]),
        LIMIT,
    );
    result.assert_code(64);
    assert_eq!(result.stderr.trim().lines().count(), 1, "{}", result.stderr);
    assert!(result.stderr.contains("--timeout"), "{}", result.stderr);
    assert!(mock.requests().is_empty());
}

#[test]
fn a_product_code_that_is_not_utf8_is_a_usage_error_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    let mock = Mock::start(&[]);
    let mut command = entitle(&mock, &["check"]);
    command.env(
        "ENTITLE_PRODUCT_CODE",
        std::ffi::OsStr::from_bytes(b"prod-\xff\xfe"),
    );
    let result = run_within(&mut command, LIMIT);
    result.assert_code(64);
    assert_eq!(result.stderr.trim().lines().count(), 1, "{}", result.stderr);
    assert!(
        result.stderr.contains("ENTITLE_PRODUCT_CODE"),
        "{}",
        result.stderr
    );
    assert!(mock.requests().is_empty());
}

#[test]
fn install_and_seal_without_proc_are_78_naming_proc() {
    require_namespaces!();
    let ns = Namespace::mounts("mount -t tmpfs none /proc\nmkdir -p $DIR/bin");
    let key = product_key(ns.dir.path());
    let sealed = ns.path("sealed");
    let bin = ns.path("bin");
    let runs: [Vec<&str>; 2] = [
        vec!["install", bin.to_str().unwrap()],
        vec![
            "seal",
            "--product-code",
            PRODUCT_CODE,
            "--public-key-file",
            key.to_str().unwrap(),
            "--output",
            sealed.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let result = run_within(&mut ns.wrap(&bare_entitle(&args)), LIMIT);
        result.assert_code(78);
        let line = last_line(&result.stderr);
        assert!(line.contains("/proc"), "{}: {line}", args[0]);
        assert_eq!(result.stderr.trim().lines().count(), 1, "{}", result.stderr);
    }
    assert!(!ns.path("bin/entitle").exists() && !sealed.exists());
}

/// Kubernetes' /dev: a tmpfs with the usual devices and, when the pod has a
/// `terminationMessagePath`, a file bind-mounted from the host at /dev/termination-log.
fn kubernetes_dev(with_termination_log: bool) -> Namespace {
    let mut setup = String::from(
        "mkdir -p $DIR/dev
         mount -t tmpfs tmpfs $DIR/dev
         for d in null zero urandom; do touch $DIR/dev/$d; mount --bind /dev/$d $DIR/dev/$d; done",
    );
    if with_termination_log {
        setup.push_str(
            "\nprintf 'stale message\\n' > $DIR/termination-log
             touch $DIR/dev/termination-log
             mount --bind $DIR/termination-log $DIR/dev/termination-log",
        );
    }
    setup.push_str("\nmount --move $DIR/dev /dev");
    Namespace::mounts(&setup)
}

#[test]
fn a_failure_writes_its_one_line_reason_to_the_termination_log_only_where_it_exists() {
    require_namespaces!();
    let mock = Mock::start(&["--answer", "not-entitled"]);

    let ns = kubernetes_dev(true);
    let result = run_within(&mut ns.wrap(&entitle(&mock, &["check"])), LIMIT);
    result.assert_code(77);
    let message = std::fs::read_to_string(ns.path("termination-log")).unwrap();
    assert_eq!(message.lines().count(), 1, "one line: {message:?}");
    let reason = message
        .trim_end()
        .strip_prefix("entitle: ")
        .unwrap_or_else(|| panic!("{message:?}"));
    assert!(reason.starts_with("not entitled: CustomerNotEntitledException"));
    assert!(
        last_line(&result.stderr).ends_with(reason),
        "the log's last line and the termination message agree: {}",
        result.stderr
    );

    // A probe or a report run inside the container (`entitle health`, `entitle usage`) fails
    // without it being the container's reason: the message stays what it was.
    for args in [&["health"][..], &["usage", "scans", "1"]] {
        let mut visitor = bare_entitle(args);
        visitor.env("ENTITLE_METER_URL", "http://127.0.0.1:9");
        run_within(&mut ns.wrap(&visitor), LIMIT).assert_code(75);
        let after = std::fs::read_to_string(ns.path("termination-log")).unwrap();
        assert_eq!(
            after, message,
            "{args:?} left the termination message alone"
        );
    }

    let ns = kubernetes_dev(false);
    let result = run_within(&mut ns.wrap(&entitle(&mock, &["check"])), LIMIT);
    result.assert_code(77);
    let mut list = Command::new("ls");
    list.arg("-A").arg("/dev");
    let listing = ns.wrap(&list).output().expect("ls /dev in the namespace");
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["null", "urandom", "zero"],
        "nothing created in /dev"
    );
}
