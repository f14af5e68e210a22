//! Fault injection: `entitle check --timeout 3s --attempt-timeout 1s` against `entitle-mock`
//! answering with broken HTTP. Whatever the endpoint does, the process ends within the budget
//! (plus a margin for a loaded machine), with 75 (only transient failures until the budget ran
//! out) or 76 (an answer that cannot be trusted), and never panics.

mod common;

use common::*;
use std::time::Duration;

const TRANSIENT: i32 = 75;
const UNTRUSTED: i32 = 76;
/// The 3 s budget plus a generous margin: this checks that the budget holds, not speed.
const BOUND: Duration = Duration::from_secs(6);

fn check_against(mode: &str, expected_code: i32) -> Run {
    let mock = Mock::start(&["--answer", mode]);
    let mut command = entitle(
        &mock,
        &["check", "--timeout", "3s", "--attempt-timeout", "1s"],
    );
    // The watchdog is far above BOUND so that a hang shows up as an elapsed time, not a kill.
    let run = run_within(&mut command, Duration::from_secs(30));
    assert!(
        !run.stderr.contains("panicked"),
        "{mode}: entitle panicked:\n{}",
        run.stderr
    );
    assert_eq!(
        run.code,
        Some(expected_code),
        "{mode}: exit code; stderr:\n{}",
        run.stderr
    );
    assert!(
        run.elapsed < BOUND,
        "{mode}: took {:?} with a 3 s budget; stderr:\n{}",
        run.elapsed,
        run.stderr
    );
    let attempts = mock.registrations().len();
    match expected_code {
        // Transient: retried within the budget (1 s attempts, backoff from 0.25 s).
        TRANSIENT => assert!(attempts >= 2, "{mode}: {attempts} attempts"),
        // Untrusted: fails closed on the first answer, no retry.
        _ => assert_eq!(attempts, 1, "{mode}: {attempts} attempts"),
    }
    run
}

/// Slow headers: the mock reads the request and never answers. Every attempt times out after
/// 1 s, which is transient, so it retries until the 3 s budget is spent: 75.
#[test]
fn stalled_headers_exit_75_within_the_budget() {
    let run = check_against("stall", TRANSIENT);
    assert!(run.stderr.contains("no answer within"), "{}", run.stderr);
}

/// Slow body: a 200 head with Content-Length 500, 7 bytes of body, then silence. The attempt
/// timeout covers reading the body too, so this is the same transient timeout as above: 75.
#[test]
fn a_stalled_body_exits_75_within_the_budget() {
    let run = check_against("stall-body", TRANSIENT);
    assert!(run.stderr.contains("no answer within"), "{}", run.stderr);
}

/// Content-Length says half of the (valid) body; the client reads exactly that much and gets
/// truncated JSON. A complete HTTP exchange with a 200 status and a body that does not parse is
/// a malformed answer, which fails closed at once: 76.
#[test]
fn a_content_length_mismatch_exits_76() {
    let run = check_against("length-mismatch", UNTRUSTED);
    assert!(run.stderr.contains("malformed"), "{}", run.stderr);
}

/// Transfer-Encoding: chunked with a chunk size line that is not hex. The 200 answer's body
/// cannot be read, and an unreadable 200 body is a malformed answer (not a network error): 76.
#[test]
fn chunked_garbage_exits_76() {
    let run = check_against("chunked-garbage", UNTRUSTED);
    assert!(run.stderr.contains("malformed"), "{}", run.stderr);
}

/// A 200 head with Content-Length 1000, 10 bytes, then FIN. The status arrived, so this is
/// classified as a malformed (truncated) 200 answer rather than a failed connection: 76.
#[test]
fn a_connection_closed_mid_body_exits_76() {
    let run = check_against("close-mid-body", UNTRUSTED);
    assert!(run.stderr.contains("malformed"), "{}", run.stderr);
}

/// The mock accepts the connection but never reads the request (it stays in the socket buffer)
/// and never answers: each attempt times out, transient, retried until the budget: 75.
#[test]
fn a_server_that_never_reads_exits_75_within_the_budget() {
    let run = check_against("no-read", TRANSIENT);
    assert!(run.stderr.contains("no answer within"), "{}", run.stderr);
}

/// A 20 MiB 200 answer whose Signature is 20 MiB of 'A': read within the attempt timeout on
/// loopback, then refused by the verifier's 64 KiB cap as oversized: 76. (On a machine too slow
/// to read 20 MiB within 1 s the attempt would time out instead, and the budget end gives 75.)
#[test]
fn a_huge_body_is_refused() {
    let mock = Mock::start(&["--answer", "huge-body"]);
    let mut command = entitle(
        &mock,
        &["check", "--timeout", "3s", "--attempt-timeout", "1s"],
    );
    let run = run_within(&mut command, Duration::from_secs(30));
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        matches!(run.code, Some(UNTRUSTED | TRANSIENT)),
        "exit code {:?}; stderr:\n{}",
        run.code,
        run.stderr
    );
    if run.code == Some(UNTRUSTED) {
        assert!(run.stderr.contains("limit"), "{}", run.stderr);
    }
    assert!(run.elapsed < BOUND, "took {:?}", run.elapsed);
}
