//! `entitle run` as a container's PID 1: the real binary, real signals, a real PID namespace
//! (`unshare --pid --fork --mount-proc`), and `entitle-mock` answering RegisterUsage.
//!
//! Every wait has a deadline; the only timing assertions are generous correctness bounds.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for anything that should be quick.
const QUICK: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Helpers

/// `[python, fixture, args...]`
fn py(name: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        python().to_owned(),
        fixture(name).to_string_lossy().into_owned(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// `entitle run OPTIONS -- COMMAND` against `mock`.
fn entitle_run(mock: &Mock, options: &[&str], command: &[String]) -> Command {
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    entitle(mock, &args)
}

/// Whether this machine lets us create PID namespaces; says why not, once.
fn namespaces_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        match Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .stderr(Stdio::piped())
            .output()
        {
            Ok(out) if out.status.success() => true,
            Ok(out) => {
                eprintln!(
                    "SKIPPED: PID namespaces are not permitted here (unshare --pid --fork --mount-proc: {})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                false
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run unshare: {e}");
                false
            }
        }
    })
}

macro_rules! require_namespaces {
    () => {
        if !namespaces_available() {
            return;
        }
    };
}

/// `PREFIX... PROGRAM ARGS...` with the command's environment (it was cleared) and directory.
fn prefixed(prefix: &[&str], command: &Command) -> Command {
    let mut argv: Vec<std::ffi::OsString> = prefix.iter().map(|a| a.into()).collect();
    argv.push(command.get_program().to_owned());
    argv.extend(command.get_args().map(|a| a.to_owned()));
    let mut built = Command::new(&argv[0]);
    built.args(&argv[1..]).env_clear().stdin(Stdio::null());
    built.envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    if let Some(dir) = command.get_current_dir() {
        built.current_dir(dir);
    }
    built
}

/// The same command, run as PID 1 of a fresh PID namespace (killed if `unshare` dies).
fn as_pid1(command: &Command) -> Command {
    prefixed(
        &[
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--",
        ],
        command,
    )
}

/// A running `entitle` (directly, or as PID 1 under `unshare`), its stdout as lines.
struct Supervised {
    child: Child,
    in_namespace: bool,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Supervised {
    fn start(command: &Command, in_namespace: bool) -> Supervised {
        let mut command = if in_namespace {
            as_pid1(command)
        } else {
            prefixed(&[], command)
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start entitle");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let stdin = child.stdin.take();
        Supervised {
            child,
            in_namespace,
            stdin,
            lines,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The host pid of `entitle` itself (under `unshare`: its only child).
    fn entitle_pid(&self) -> i32 {
        let outer = self.child.id();
        if !self.in_namespace {
            return outer as i32;
        }
        unshared_child(outer)
    }

    fn next_line(&self, limit: Duration) -> String {
        match self.lines.recv_timeout(limit) {
            Ok(line) => line,
            Err(e) => panic!(
                "no output line within {limit:?} ({e}); stderr:\n{}",
                self.stderr()
            ),
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with plain integers, to a process this test started.
        let rc = unsafe { libc::kill(self.entitle_pid(), signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits for the exit code, failing the test after `limit`.
    fn finish(mut self, limit: Duration) -> (i32, String) {
        self.close_stdin();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                thread::sleep(Duration::from_millis(50)); // let the stderr reader catch up
                let code = status.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + status.signal().unwrap_or(0)
                });
                return (code, self.stderr());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "entitle did not exit within {limit:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_pid1(command: &Command) -> Run {
    run_within(&mut as_pid1(command), QUICK)
}

fn probe_json(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no probe output in {stdout:?}"));
    serde_json::from_str(line).expect("probe prints JSON")
}

fn mask_line<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing in {status}"))
}

// ---------------------------------------------------------------------------------------------
// PID 1 duties

#[test]
fn orphan_storm_leaves_no_zombies() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let result = run_pid1(&entitle_run(
        &mock,
        &[],
        &py("orphan_storm.py", &["100", "20"]),
    ));
    result.assert_code(0);
    assert!(
        result.stdout.contains("zombies=0 others=0"),
        "{}",
        result.stdout
    );
}

#[test]
fn orphan_storm_is_reaped_as_a_subreaper_when_not_pid1() {
    let mock = Mock::start(&[]);
    let result = run_within(
        &mut entitle_run(&mock, &[], &py("orphan_storm.py", &["100", "20"])),
        QUICK,
    );
    result.assert_code(0);
    assert!(
        result.stdout.contains("zombies=0 others=0"),
        "{}",
        result.stdout
    );
    assert!(
        !result.stderr.contains("subreaper"),
        "quiet about subreaping: {}",
        result.stderr
    );
}

#[test]
fn every_catchable_signal_reaches_the_workload_in_order() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let mut signals: Vec<i32> = (1..=31)
        .filter(|s| ![libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD].contains(s))
        .collect();
    signals.push(libc::SIGRTMIN() + 3);
    let mut supervised =
        Supervised::start(&entitle_run(&mock, &[], &py("echo_signals.py", &[])), true);
    let ready = supervised.next_line(QUICK);
    assert!(ready.starts_with("ready"), "{ready}");
    for signal in signals {
        supervised.signal(signal);
        let echoed = supervised.next_line(QUICK);
        assert_eq!(
            echoed,
            signal.to_string(),
            "sent {signal}, the workload saw {echoed}"
        );
    }
    supervised.close_stdin();
    let (code, stderr) = supervised.finish(QUICK);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn exit_codes_0_to_255_are_propagated() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let codes: Vec<i32> = (0..=255).collect();
    thread::scope(|scope| {
        for chunk in codes.chunks(32) {
            let mock = &mock;
            scope.spawn(move || {
                for &code in chunk {
                    let command = entitle_run(
                        mock,
                        &[],
                        &["sh".into(), "-c".into(), format!("exit {code}")],
                    );
                    run_pid1(&command).assert_code(code);
                }
            });
        }
    });
}

#[test]
fn a_workload_killed_by_a_signal_gives_128_plus_the_signal() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    for signal in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGKILL,
        libc::SIGUSR2,
        libc::SIGTERM,
    ] {
        let command = entitle_run(&mock, &[], &py("die_by_signal.py", &[&signal.to_string()]));
        run_pid1(&command).assert_code(128 + signal);
    }
}

#[test]
fn sigterm_to_entitle_ends_a_default_workload_with_143() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    // A workload with default dispositions: sleep.
    let supervised = Supervised::start(
        &entitle_run(
            &mock,
            &[],
            &[
                "sh".into(),
                "-c".into(),
                "echo ready; exec sleep 600".into(),
            ],
        ),
        true,
    );
    assert_eq!(supervised.next_line(QUICK), "ready");
    thread::sleep(Duration::from_millis(100)); // let sh exec sleep
    supervised.signal(libc::SIGTERM);
    let (code, stderr) = supervised.finish(QUICK);
    assert_eq!(code, 143, "{stderr}");
}

#[test]
fn the_idle_supervisor_is_one_thread_without_sockets_that_never_wakes_up() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let command = entitle_run(
        &mock,
        &[],
        &[
            "sh".into(),
            "-c".into(),
            "echo ready; exec sleep 600".into(),
        ],
    );
    let supervised = Supervised::start(&command, true);
    assert_eq!(supervised.next_line(QUICK), "ready");
    let pid = supervised.entitle_pid();
    let status = || std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let text = status();
        let line = mask_line(&text, name).to_owned();
        line[name.len()..].trim().parse().unwrap()
    };
    // The workload can print "ready" before the supervisor has returned from spawning it (the
    // spawn's own descriptors, a socket pair among them, are still open then) and gone to sleep
    // in poll (going to sleep is itself a voluntary switch): wait until it is asleep (state S,
    // the count steady), then look at it.
    let settled = Instant::now();
    let mut before = field("voluntary_ctxt_switches:");
    loop {
        thread::sleep(Duration::from_millis(200));
        let now = field("voluntary_ctxt_switches:");
        let asleep = status()
            .lines()
            .any(|l| l.starts_with("State:") && l.contains("S ("));
        if now == before && asleep {
            break;
        }
        assert!(
            settled.elapsed() < Duration::from_secs(5),
            "the supervisor never settled"
        );
        before = now;
    }
    assert_eq!(
        field("Threads:"),
        1,
        "the registration thread (and its runtime) is gone"
    );
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect();
    assert!(
        !fds.iter().any(|t| t.starts_with("socket:")),
        "no connection left open: {fds:?}"
    );
    thread::sleep(Duration::from_secs(2));
    let after = field("voluntary_ctxt_switches:");
    assert_eq!(after, before, "an idle supervisor must not wake up");
    supervised.signal(libc::SIGTERM);
    let (code, stderr) = supervised.finish(QUICK);
    assert_eq!(code, 143, "{stderr}");
}

#[test]
fn missing_command_is_127_and_unexecutable_is_126_with_a_message() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let missing = run_pid1(&entitle_run(&mock, &[], &["/nonexistent/server".into()]));
    missing.assert_code(127);
    assert!(
        missing.stderr.contains("command not found"),
        "{}",
        missing.stderr
    );
    let missing_in_path = run_pid1(&entitle_run(
        &mock,
        &[],
        &["no-such-command-entitle".into()],
    ));
    missing_in_path.assert_code(127);
    let directory = run_pid1(&entitle_run(&mock, &[], &["/etc".into()]));
    directory.assert_code(126);
    assert!(
        directory.stderr.contains("cannot execute"),
        "{}",
        directory.stderr
    );
    let not_executable = mock.path("not-executable.sh");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    run_pid1(&entitle_run(
        &mock,
        &[],
        &[not_executable.to_string_lossy().into_owned()],
    ))
    .assert_code(126);
}

#[test]
fn the_workload_starts_with_no_blocked_or_ignored_signals() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    for options in [
        &[][..],
        &["--start", "concurrent"][..],
        &["--kill-process-group"][..],
    ] {
        let result = run_pid1(&entitle_run(
            &mock,
            options,
            &["cat".into(), "/proc/self/status".into()],
        ));
        result.assert_code(0);
        assert_eq!(
            mask_line(&result.stdout, "SigBlk:"),
            "SigBlk:\t0000000000000000",
            "{options:?}"
        );
        assert_eq!(
            mask_line(&result.stdout, "SigIgn:"),
            "SigIgn:\t0000000000000000",
            "{options:?}"
        );
    }
}

#[test]
fn a_workload_ignoring_sigterm_is_killed_after_the_grace_period() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let command = entitle_run(&mock, &["--grace-period", "1s"], &py("ignore_term.py", &[]));
    let supervised = Supervised::start(&command, true);
    assert_eq!(supervised.next_line(QUICK), "ready");
    let sent = Instant::now();
    supervised.signal(libc::SIGTERM);
    let (code, stderr) = supervised.finish(QUICK);
    let took = sent.elapsed();
    assert_eq!(code, 137, "{stderr}");
    assert!(
        took >= Duration::from_secs(1),
        "killed before the grace period: {took:?}"
    );
    assert!(stderr.contains("SIGKILL"), "{stderr}");
}

#[test]
fn without_a_grace_period_forwarded_signals_are_only_forwarded() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let supervised = Supervised::start(&entitle_run(&mock, &[], &py("ignore_term.py", &[])), true);
    assert_eq!(supervised.next_line(QUICK), "ready");
    supervised.signal(libc::SIGTERM);
    thread::sleep(Duration::from_secs(2));
    let pid = supervised.entitle_pid();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "entitle must still be running"
    );
    assert!(
        supervised.lines.try_recv().is_err(),
        "the workload is still running"
    );
    // Dropping kills unshare, and with it (--kill-child) the namespace.
}

#[test]
fn process_group_mode_reaches_a_grandchild_the_workload_ignores() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let command = entitle_run(
        &mock,
        &["--kill-process-group"],
        &py("group_leader.py", &["60"]),
    );
    let supervised = Supervised::start(&command, true);
    assert!(supervised.next_line(QUICK).starts_with("ready"));
    supervised.signal(libc::SIGTERM);
    assert_eq!(
        supervised.next_line(QUICK),
        format!("grandchild died {}", libc::SIGTERM)
    );
    let (code, stderr) = supervised.finish(QUICK);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn without_process_group_mode_only_the_workload_gets_the_signal() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let command = entitle_run(&mock, &[], &py("group_leader.py", &["2"]));
    let supervised = Supervised::start(&command, true);
    assert!(supervised.next_line(QUICK).starts_with("ready"));
    supervised.signal(libc::SIGTERM);
    assert_eq!(supervised.next_line(QUICK), "grandchild still alive");
    let (code, stderr) = supervised.finish(QUICK);
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn main_child_and_orphan_exiting_together_never_hang() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    for round in 0..20 {
        let code = if round % 2 == 0 { 127 } else { 3 };
        let command = entitle_run(
            &mock,
            &[],
            &py("simultaneous_exit.py", &[&code.to_string()]),
        );
        run_pid1(&command).assert_code(code);
    }
}

#[test]
fn an_interactive_terminal_is_handed_to_the_workload_and_ctrl_c_reaches_it() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let inner = entitle_run(&mock, &[], &py("tty_probe.py", &[]));
    let in_pty = fixture("in_pty.py").to_string_lossy().into_owned();
    let mut command = prefixed(&[python(), &in_pty, "--interrupt"], &as_pid1(&inner));
    let result = run_within(&mut command, QUICK);
    assert!(
        result.stdout.contains("foreground=True"),
        "{}",
        result.stdout
    );
    assert!(result.stdout.contains("read=hello"), "{}", result.stdout);
    // Ctrl-C killed the workload (SIGINT from the terminal), so entitle exits 130.
    result.assert_code(130);
}

// ---------------------------------------------------------------------------------------------
// Entitlement and the workload

#[test]
fn gate_not_entitled_never_starts_the_command() {
    require_namespaces!();
    let mock = Mock::start(&["--answer", "not-entitled"]);
    let marker = mock.path("ran");
    let command = entitle_run(
        &mock,
        &[],
        &["touch".into(), marker.to_string_lossy().into_owned()],
    );
    let result = run_pid1(&command);
    result.assert_code(77);
    assert!(!marker.exists(), "the command must not run");
}

#[test]
fn concurrent_not_entitled_stops_the_running_command() {
    require_namespaces!();
    let mock = Mock::start(&["--answer", "throttle,not-entitled"]);
    let marker = mock.path("ran");
    // TERM is ignored until the marker exists, so the run is deterministic; the 2 s grace period
    // covers a TERM that arrived in that window.
    let script = format!(
        "trap '' TERM; touch '{}'; trap - TERM; exec sleep 600",
        marker.display()
    );
    let command = entitle_run(
        &mock,
        &["--start", "concurrent", "--grace-period", "2s"],
        &["sh".into(), "-c".into(), script],
    );
    let result = run_pid1(&command);
    result.assert_code(77);
    assert!(marker.exists(), "the command ran");
    assert!(
        result.stderr.contains("stopping the workload"),
        "{}",
        result.stderr
    );
    let reported = result
        .stderr
        .matches("CustomerNotEntitledException")
        .count();
    assert_eq!(
        reported, 1,
        "the failure is logged once:\n{}",
        result.stderr
    );
}

#[test]
fn concurrent_entitled_keeps_the_workload_running_to_its_own_exit() {
    let mock = Mock::start(&[]);
    let mut command = entitle_run(
        &mock,
        &["--start", "concurrent"],
        &["sh".into(), "-c".into(), "sleep 2; exit 5".into()],
    );
    let result = run_within(&mut command, QUICK);
    result.assert_code(5);
    assert!(result.stderr.contains("entitled"), "{}", result.stderr);
}

#[test]
fn sigterm_while_registering_exits_143_at_once_without_starting_the_command() {
    require_namespaces!();
    let mock = Mock::start(&["--answer", "stall"]);
    let marker = mock.path("ran");
    let command = entitle_run(
        &mock,
        &[],
        &["touch".into(), marker.to_string_lossy().into_owned()],
    );
    let supervised = Supervised::start(&command, true);
    let deadline = Instant::now() + QUICK;
    while mock.registrations().is_empty() {
        assert!(Instant::now() < deadline, "entitle never called the mock");
        thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    supervised.signal(libc::SIGTERM);
    let (code, stderr) = supervised.finish(QUICK);
    assert_eq!(code, 143, "{stderr}");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "not at once: {:?}",
        sent.elapsed()
    );
    assert!(!marker.exists(), "the command must not run");
}

#[test]
fn the_workload_gets_the_verified_token_nonce_and_product_code() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let result = run_pid1(&entitle_run(&mock, &[], &py("probe.py", &[])));
    result.assert_code(0);
    let probe = probe_json(&result.stdout);
    let registration = &mock.registrations()[0];
    assert_eq!(probe["env"]["ENTITLE_PRODUCT_CODE"], PRODUCT_CODE);
    assert_eq!(probe["env"]["ENTITLE_NONCE"], registration["nonce"]);
    let token = probe["env"]["ENTITLE_TOKEN"]
        .as_str()
        .expect("ENTITLE_TOKEN");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert!(
        !result.stderr.contains(token),
        "the token must not be logged"
    );
    assert_ne!(probe["pid"], 1, "entitle is PID 1, the workload its child");
    assert_eq!(
        probe["pgid"], probe["pid"],
        "the workload leads its own process group"
    );
}

#[test]
fn concurrent_workload_gets_no_token_even_if_one_is_inherited() {
    let mock = Mock::start(&[]);
    let mut command = entitle_run(&mock, &["--start", "concurrent"], &py("probe.py", &[]));
    command
        .env("ENTITLE_TOKEN", "forged.token.value")
        .env("ENTITLE_NONCE", "stale");
    let result = run_within(&mut command, QUICK);
    result.assert_code(0);
    let env = &probe_json(&result.stdout)["env"];
    assert!(env.get("ENTITLE_TOKEN").is_none(), "{env}");
    assert!(env.get("ENTITLE_NONCE").is_none(), "{env}");
}

#[test]
fn no_descriptor_leaks_to_the_workload_and_it_keeps_the_callers_cwd() {
    let mock = Mock::start(&[]);
    let cwd = mock.dir.path().to_path_buf();
    // Baseline: what the probe sees when this test starts it directly (inherited descriptors).
    let baseline = Command::new(python())
        .arg(fixture("probe.py"))
        .current_dir(&cwd)
        .output()
        .unwrap();
    let baseline = probe_json(&String::from_utf8_lossy(&baseline.stdout));
    let high = |probe: &serde_json::Value| -> Vec<serde_json::Value> {
        probe["fds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|fd| fd[0].as_i64().unwrap() >= 3)
            .cloned()
            .collect()
    };
    for options in [&[][..], &["--start", "concurrent"][..], &["--exec"][..]] {
        let mut command = entitle_run(&mock, options, &py("probe.py", &[]));
        command.current_dir(&cwd);
        let result = run_within(&mut command, QUICK);
        result.assert_code(0);
        let probe = probe_json(&result.stdout);
        assert_eq!(
            high(&probe),
            high(&baseline),
            "{options:?}: descriptors >= 3 beyond the inherited ones"
        );
        assert_eq!(probe["cwd"], cwd.to_string_lossy().as_ref(), "{options:?}");
    }
}

#[test]
fn exec_replaces_entitle_with_the_command() {
    let mock = Mock::start(&[]);
    let command = entitle_run(&mock, &["--exec"], &py("probe.py", &[]));
    let supervised = Supervised::start(&command, false);
    let entitle_pid = supervised.entitle_pid();
    let probe: serde_json::Value = serde_json::from_str(&supervised.next_line(QUICK)).unwrap();
    assert_eq!(probe["pid"], entitle_pid, "same pid: entitle was replaced");
    assert_eq!(probe["env"]["ENTITLE_PRODUCT_CODE"], PRODUCT_CODE);
    assert!(probe["env"]["ENTITLE_TOKEN"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
    let (code, stderr) = supervised.finish(QUICK);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn exec_as_pid1_gives_a_clean_signal_state_and_env_var_works() {
    require_namespaces!();
    let mock = Mock::start(&[]);
    let mut command = entitle_run(
        &mock,
        &[],
        &[
            "sh".into(),
            "-c".into(),
            "echo pid=$$; grep -E '^Sig(Blk|Ign)' /proc/self/status".into(),
        ],
    );
    command.env("ENTITLE_EXEC", "1");
    let result = run_pid1(&command);
    result.assert_code(0);
    assert!(result.stdout.contains("pid=1\n"), "{}", result.stdout);
    assert!(
        result.stdout.contains("SigBlk:\t0000000000000000"),
        "{}",
        result.stdout
    );
    assert!(
        result.stdout.contains("SigIgn:\t0000000000000000"),
        "{}",
        result.stdout
    );
}

#[test]
fn exec_failure_reports_127() {
    let mock = Mock::start(&[]);
    let result = run_within(
        &mut entitle_run(&mock, &["--exec"], &["/nonexistent/server".into()]),
        QUICK,
    );
    result.assert_code(127);
    assert!(
        result.stderr.contains("command not found"),
        "{}",
        result.stderr
    );
}
