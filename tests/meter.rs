//! Metering end to end: the real `entitle meter` / `entitle run --meter` / `entitle usage`
//! against `entitle-mock` with a 2-second "hour", real HTTP reports, real signals, crashes and
//! restarts. The invariant checked throughout: what the mock bills equals what the relay
//! acknowledged, one record per dimension and period, each timestamp inside its period.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const PERIOD: &str = "2s";
const DIMENSIONS: &str = "scans,gb";

fn mock(extra: &[&str]) -> Mock {
    let mut args = vec![
        "--period",
        PERIOD,
        "--dimensions",
        DIMENSIONS,
        "--key-bits",
        "2048",
    ];
    args.extend_from_slice(extra);
    Mock::start(&args)
}

/// A running `entitle` with metering, its log collected line by line.
struct Metered {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    url: String,
}

impl Metered {
    /// `entitle ARGS` aimed at `mock` (no public key: a metered-only product), started and
    /// waited for until its relay listens.
    fn start(mock: &Mock, args: &[&str], env: &[(&str, &str)]) -> Metered {
        let mut command = entitle(mock, args);
        command
            .env_remove("ENTITLE_PUBLIC_KEY_FILE")
            .envs(env.iter().copied());
        Metered::spawn(command)
    }

    fn spawn(mut command: Command) -> Metered {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start entitle");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&lines);
        let stderr = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        let mut metered = Metered {
            child,
            lines,
            url: String::new(),
        };
        let line = metered.wait_for("metering relay listening", Duration::from_secs(30));
        metered.url = line
            .split("url=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the listening line names the URL")
            .to_owned();
        metered
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "entitle exited ({status}) before `{needle}`; log:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < limit,
                "no `{needle}` within {limit:?}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// POSTs one report; the status and the answer.
    fn report(&self, dimension: &str, quantity: u64) -> (u16, Value) {
        let body = format!(r#"{{"dimension":"{dimension}","quantity":{quantity}}}"#);
        let (status, answer) = http("POST", &format!("{}/v1/usage", self.url), &body);
        (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for the exit (at most `limit`): the code and the whole log.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                thread::sleep(Duration::from_millis(100));
                return (status.code(), self.log());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "entitle did not exit within {limit:?}; log:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(self) -> (Option<i32>, String) {
        self.signal(libc::SIGTERM);
        self.finish(Duration::from_secs(40))
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mock's records, checked against AWS's rules, and its totals per dimension (over all
/// periods).
fn billed(mock: &Mock) -> (Vec<Value>, BTreeMap<String, u64>) {
    let (status, body) = http("GET", &format!("{}/_mock/meter", mock.url), "");
    assert_eq!(status, 200, "{body}");
    let listing: Value = serde_json::from_str(&body).expect("JSON");
    let records = listing["records"].as_array().cloned().unwrap_or_default();
    let period = listing["period"].as_f64().expect("the mock's period");
    assert_records_well_formed(&records, period);
    let mut totals = BTreeMap::new();
    for record in &records {
        let dimension = record["dimension"].as_str().unwrap().to_owned();
        *totals.entry(dimension).or_default() += record["quantity"].as_u64().unwrap();
    }
    (records, totals)
}

/// One record per dimension and period, each timestamp inside its period, none over 2^31-1.
fn assert_records_well_formed(records: &[Value], period: f64) {
    let mut seen = std::collections::BTreeSet::new();
    for record in records {
        let key = (
            record["dimension"].to_string(),
            record["period"].to_string(),
        );
        assert!(
            seen.insert(key),
            "two records for one dimension and period: {records:?}"
        );
        let start = record["periodStart"].as_f64().unwrap();
        let timestamp = record["timestamp"].as_f64().unwrap();
        assert!(
            (start..start + period).contains(&timestamp),
            "timestamp outside its period: {record}"
        );
        assert!(record["quantity"].as_u64().unwrap() <= 2_147_483_647);
    }
}

fn set_meter_answer(mock: &Mock, script: &str) {
    let (status, body) = http("POST", &format!("{}/_mock/meter-answer", mock.url), script);
    assert_eq!(status, 200, "{body}");
}

fn short_hours<'a>(state: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "meter",
        "--meter",
        DIMENSIONS,
        "--meter-period",
        PERIOD,
        "--meter-spread",
        "300ms",
        "--meter-listen",
        "127.0.0.1:0",
        "--meter-state",
        state.to_str().unwrap(),
        "--attempt-timeout",
        "1s",
    ];
    args.extend_from_slice(extra);
    args
}

/// Reporters on several threads for `run_for`, each report's answer checked; the sums of what
/// the relay acknowledged, per dimension.
fn report_concurrently(url: &str, threads: usize, run_for: Duration) -> BTreeMap<String, u64> {
    let acked = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let url = url.to_owned();
            let acked = Arc::clone(&acked);
            thread::spawn(move || {
                let started = Instant::now();
                let mut n: u64 = 0;
                while started.elapsed() < run_for {
                    n += 1;
                    let dimension = if (n + t as u64) % 3 == 0 {
                        "gb"
                    } else {
                        "scans"
                    };
                    let quantity = (n * 7 + t as u64) % 1000;
                    let body = format!(r#"{{"dimension":"{dimension}","quantity":{quantity}}}"#);
                    let (status, _) = http("POST", &format!("{url}/v1/usage"), &body);
                    if status == 200 {
                        *acked.lock().unwrap().entry(dimension.into()).or_default() += quantity;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let sums = acked.lock().unwrap().clone();
    sums
}

#[test]
fn concurrent_reporters_over_several_periods_are_billed_exactly() {
    let mock = mock(&[]);
    let state = tempfile::tempdir().unwrap();
    let relay = Metered::start(&mock, &short_hours(state.path(), &[]), &[]);
    let acked = report_concurrently(&relay.url, 8, Duration::from_secs(5));
    assert!(acked.values().sum::<u64>() > 0);
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
    let (records, totals) = billed(&mock);
    assert_eq!(totals, acked, "billed = acknowledged; log:\n{log}");
    let periods: std::collections::BTreeSet<_> = records
        .iter()
        .map(|r| r["period"].as_i64().unwrap())
        .collect();
    assert!(periods.len() >= 3, "several periods: {periods:?}");
    assert!(log.contains("all usage sent"), "{log}");
}

#[test]
fn sigterm_mid_hour_sends_the_partial_hour_before_exit() {
    // The real hour: nothing would be sent before it ends, except by the stop.
    let mock = Mock::start(&["--dimensions", DIMENSIONS]);
    let relay = Metered::start(
        &mock,
        &[
            "meter",
            "--meter",
            DIMENSIONS,
            "--meter-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(
        relay.log().contains("without --meter-state"),
        "warned once: {}",
        relay.log()
    );
    assert_eq!(relay.report("scans", 5).0, 200);
    assert_eq!(relay.report("scans", 6).0, 200);
    let sent_at = journal_now();
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
    let (records, totals) = billed(&mock);
    assert_eq!(totals.get("scans"), Some(&11), "{records:?}\n{log}");
    let timestamp = records[0]["timestamp"].as_f64().unwrap() as i64;
    assert!(
        (sent_at - 5..=sent_at + 30).contains(&timestamp),
        "stamped at the stop: {timestamp} vs {sent_at}"
    );
}

fn journal_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn kill_9_and_a_restart_on_the_same_state_bill_every_acknowledged_report_once() {
    let mock = mock(&[]);
    let state = tempfile::tempdir().unwrap();
    let args = short_hours(state.path(), &[]);
    let mut acked = BTreeMap::<String, u64>::new();
    for round in 0..3 {
        let relay = Metered::start(&mock, &args, &[]);
        if round > 0 {
            assert!(
                !relay.log().contains("replayed_frames=0 "),
                "{}",
                relay.log()
            );
        }
        for (dimension, quantity) in report_concurrently(&relay.url, 4, Duration::from_millis(2500))
        {
            *acked.entry(dimension).or_default() += quantity;
        }
        relay.signal(libc::SIGKILL);
        let _ = relay.finish(Duration::from_secs(10));
    }
    let relay = Metered::start(&mock, &args, &[]);
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
    let (_, totals) = billed(&mock);
    assert_eq!(
        totals, acked,
        "every acknowledged report billed exactly once"
    );
}

#[test]
fn a_torn_journal_tail_is_dropped_with_a_warning_and_the_rest_is_sent() {
    let mock = mock(&[]);
    let state = tempfile::tempdir().unwrap();
    let args = short_hours(state.path(), &["--meter-flush-timeout", "1s"]);
    let relay = Metered::start(&mock, &args, &[]);
    set_meter_answer(&mock, "throttle");
    assert_eq!(relay.report("scans", 40).0, 200);
    assert_eq!(relay.report("gb", 2).0, 200);
    let (code, log) = relay.stop();
    assert_eq!(code, Some(75), "usage left: {log}");
    assert!(
        log.contains("quantity=40") && log.contains("kept in"),
        "{log}"
    );
    // A crash in the middle of a write leaves part of a frame.
    let journal = state.path().join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, b'{', b'"']);
    std::fs::write(&journal, bytes).unwrap();
    set_meter_answer(&mock, "ok");
    let relay = Metered::start(&mock, &args, &[]);
    assert!(relay.log().contains("torn tail"), "{}", relay.log());
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
    let (_, totals) = billed(&mock);
    assert_eq!(totals.get("scans"), Some(&40));
    assert_eq!(totals.get("gb"), Some(&2));
}

#[test]
fn throttling_errors_resets_and_stalls_longer_than_a_period_lose_and_double_nothing() {
    let mock = mock(&["--meter-answer", "ok"]);
    let state = tempfile::tempdir().unwrap();
    let relay = Metered::start(&mock, &short_hours(state.path(), &[]), &[]);
    let mut acked = BTreeMap::<String, u64>::new();
    for script in [
        "throttle",
        "internal-error",
        "reset",
        "stall",
        "http-503-empty",
        "ok",
    ] {
        set_meter_answer(&mock, script);
        for (dimension, quantity) in report_concurrently(&relay.url, 2, Duration::from_millis(2500))
        {
            *acked.entry(dimension).or_default() += quantity;
        }
    }
    thread::sleep(Duration::from_secs(3));
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
    let (_, totals) = billed(&mock);
    assert_eq!(totals, acked, "log:\n{log}");
    assert!(log.contains("MeterUsage failed, retrying"), "{log}");
}

#[test]
fn refused_hours_and_sums_over_the_limit_fold_forward() {
    let mock = mock(&[]);
    let state = tempfile::tempdir().unwrap();
    let relay = Metered::start(&mock, &short_hours(state.path(), &[]), &[]);
    set_meter_answer(&mock, "duplicate,timestamp-out-of-bounds,ok");
    assert_eq!(relay.report("gb", 2_147_483_647).0, 200);
    assert_eq!(relay.report("gb", 2_147_483_647).0, 200);
    assert_eq!(relay.report("gb", 5).0, 200);
    assert_eq!(relay.report("scans", 9).0, 200);
    let mut relay = relay;
    relay.wait_for("DuplicateRequestException", Duration::from_secs(10));
    relay.wait_for("TimestampOutOfBoundsException", Duration::from_secs(10));
    thread::sleep(Duration::from_secs(5));
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
    let (_, totals) = billed(&mock);
    assert_eq!(totals.get("gb"), Some(&(2 * 2_147_483_647 + 5)), "{log}");
    assert_eq!(totals.get("scans"), Some(&9), "{log}");
    assert!(log.contains("folded into a later hour"), "{log}");
}

#[test]
fn bad_reports_get_a_4xx_that_names_the_problem() {
    let mock = mock(&[]);
    let state = tempfile::tempdir().unwrap();
    let relay = Metered::start(&mock, &short_hours(state.path(), &[]), &[]);
    let post = |body: &str| {
        let (status, answer) = http("POST", &format!("{}/v1/usage", relay.url), body);
        let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
        (
            status,
            answer["code"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(
        post(r#"{"dimension":"nodes","quantity":1}"#),
        (400, "unknown-dimension".into())
    );
    for quantity in ["-1", "1.5", "\"3\"", "2147483648", "1e3", "null"] {
        let (status, code) = post(&format!(r#"{{"dimension":"scans","quantity":{quantity}}}"#));
        assert_eq!(status, 400, "{quantity}");
        assert!(
            code == "bad-quantity" || code == "bad-json",
            "{quantity}: {code}"
        );
    }
    assert_eq!(post("not json").0, 400);
    assert_eq!(post(r#"{"dimension":"scans"}"#).0, 400);
    assert_eq!(
        post(r#"{"dimension":"scans","quantity":1,"extra":1}"#).0,
        400
    );
    let huge = format!(r#"{{"dimension":"{}","quantity":1}}"#, "x".repeat(70_000));
    assert_eq!(post(&huge), (413, "too-large".into()));
    assert_eq!(http("GET", &format!("{}/v1/nope", relay.url), "").0, 404);
    assert_eq!(
        http("DELETE", &format!("{}/v1/usage", relay.url), "").0,
        405
    );
    assert_eq!(http("GET", &format!("{}/v1/health", relay.url), "").0, 200);
    assert_eq!(post(r#"{"dimension":"scans","quantity":0}"#).0, 200);
    let (status, listing) = http("GET", &format!("{}/v1/usage", relay.url), "");
    assert_eq!(status, 200);
    let listing: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing["dimensions"], serde_json::json!(["scans", "gb"]));
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn while_stopping_reports_get_503_and_unsent_usage_is_named_with_its_quantity() {
    let mock = mock(&[]);
    let relay = Metered::start(
        &mock,
        &[
            "meter",
            "--meter",
            DIMENSIONS,
            "--meter-period",
            PERIOD,
            "--meter-listen",
            "127.0.0.1:0",
            "--meter-flush-timeout",
            "3s",
            "--attempt-timeout",
            "1s",
        ],
        &[],
    );
    set_meter_answer(&mock, "stall");
    assert_eq!(relay.report("scans", 17).0, 200);
    let mut relay = relay;
    relay.signal(libc::SIGTERM);
    relay.wait_for("metering relay stopping", Duration::from_secs(5));
    let (status, answer) = relay.report("scans", 1);
    assert_eq!((status, answer["code"].as_str()), (503, Some("stopping")));
    let started = Instant::now();
    let (code, log) = relay.finish(Duration::from_secs(20));
    assert_eq!(code, Some(75), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the flush timeout"
    );
    let line = log
        .lines()
        .find(|l| l.contains("not sent to AWS"))
        .expect(&log);
    assert!(
        line.contains("dimension=scans") && line.contains("quantity=17") && line.contains("LOST"),
        "{line}"
    );
}

#[test]
fn not_entitled_at_start_exits_77_and_the_workload_never_starts() {
    let mock = mock(&["--meter-answer", "not-entitled"]);
    let marker = mock.path("started");
    let mut command = entitle(
        &mock,
        &[
            "run",
            "--meter",
            DIMENSIONS,
            "--meter-listen",
            "127.0.0.1:0",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    command.env_remove("ENTITLE_PUBLIC_KEY_FILE");
    let result = run(&mut command);
    result.assert_code(77);
    assert!(!marker.exists(), "the workload never started");
    let unknown = Mock::start(&["--dimensions", "scans"]);
    let mut command = entitle(&unknown, &["check", "--meter", "scans,gb"]);
    command.env_remove("ENTITLE_PUBLIC_KEY_FILE");
    let result = run(&mut command);
    result.assert_code(78);
    assert!(
        result.stderr.contains("InvalidUsageDimensionException"),
        "{}",
        result.stderr
    );
}

#[test]
fn a_dry_run_answered_with_a_plain_200_also_passes() {
    let mock = mock(&["--meter-answer", "dry-run-200"]);
    let mut command = entitle(&mock, &["check", "--meter", DIMENSIONS]);
    command.env_remove("ENTITLE_PUBLIC_KEY_FILE");
    run(&mut command).assert_code(0);
    let requests = mock.requests();
    let dry_runs = requests
        .iter()
        .filter(|r| r["kind"] == "meter" && r["dryRun"] == true)
        .count();
    assert_eq!(dry_runs, 2, "one per dimension");
}

#[test]
fn run_gives_the_workload_the_relay_and_flushes_after_it_exits_with_its_code() {
    let mock = mock(&[]);
    let state = tempfile::tempdir().unwrap();
    let script = format!(
        "{bin} usage scans 4 && {bin} usage gb 6 && test -n \"$ENTITLE_METER_URL\" && exit 3",
        bin = entitle_bin().display()
    );
    let mut command = entitle(
        &mock,
        &[
            "run",
            "--meter",
            DIMENSIONS,
            "--meter-period",
            PERIOD,
            "--meter-listen",
            "127.0.0.1:0",
            "--meter-state",
            state.path().to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    command.env_remove("ENTITLE_PUBLIC_KEY_FILE");
    let result = run(&mut command);
    result.assert_code(3);
    let (_, totals) = billed(&mock);
    assert_eq!(
        (totals.get("scans"), totals.get("gb")),
        (Some(&4), Some(&6)),
        "{}",
        result.stderr
    );
}

#[test]
fn the_usage_command_exits_with_the_documented_codes() {
    let mock = mock(&[]);
    let socket = mock.path("meter.sock");
    let listen = format!("unix:{}", socket.display());
    let relay = Metered::start(
        &mock,
        &["meter", "--meter", DIMENSIONS, "--meter-listen", &listen],
        &[],
    );
    assert_eq!(relay.url, listen);
    let usage = |args: &[&str], url: &str| {
        let mut command = bare_entitle(&[&["usage"], args].concat());
        command.env("ENTITLE_METER_URL", url);
        run(&mut command)
    };
    usage(&["scans", "3"], &listen).assert_code(0);
    usage(&["scans", "x"], &listen).assert_code(64);
    usage(&["nodes", "3"], &listen).assert_code(78);
    let unreachable = usage(&["scans", "3"], "http://127.0.0.1:9");
    unreachable.assert_code(75);
    assert!(
        unreachable.stderr.contains("unreachable"),
        "{}",
        unreachable.stderr
    );
    let health = |url: &str| run(bare_entitle(&["health"]).env("ENTITLE_METER_URL", url));
    health(&listen).assert_code(0);
    health("http://127.0.0.1:9").assert_code(75);
    let (code, log) = relay.stop();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(billed(&mock).1.get("scans"), Some(&3));
    assert!(!socket.exists(), "the socket is removed at the stop");
}

#[test]
fn a_short_period_is_refused_against_aws() {
    let mut command = bare_entitle(&["meter", "--meter", "scans", "--meter-period", "2s"]);
    command
        .env("ENTITLE_PRODUCT_CODE", PRODUCT_CODE)
        .env("AWS_REGION", "us-east-1");
    let result = run(&mut command);
    result.assert_code(78);
    assert!(
        result.stderr.contains("refused against AWS"),
        "{}",
        result.stderr
    );
}
