//! README.md is a promise: every fenced block in it is checked, and a block without a marker, or
//! with a kind nobody checks, fails here.
//!
//! Each fence is preceded by a marker comment, `<!-- snippet: KIND [ARG] -->` (the nearest
//! non-empty line above it), saying what checks the block:
//!
//! - `run`: executed with `bash -euo pipefail` from the repository root, with only PATH, HOME and
//!   TMPDIR (and the Rust toolchain's own variables) in its environment, in its own process
//!   group (killed afterwards: snippets start entitle-mock and `entitle meter` in the
//!   background), within a deadline; it must exit 0, and what it says it prints is checked
//!   (the demo's last line, the mock's billed totals). One at a time: one of them listens on
//!   the fixed port 8787.
//! - `script`: a start script, run as the README says (`entitle run -- sh start.sh CMD` against
//!   entitle-mock: CMD runs) and without entitle (exit 76, "not entitled", CMD never runs).
//! - `rust`: the program in a fresh crate that depends on `entitle-verify` the way the README says
//!   (`cargo add entitle-verify --path ...`), built, then run under `entitle run` (it serves) and
//!   without it (exit 76).
//! - `help`: every line is a line of `entitle --help`.
//! - `record`: the JSON has the keys, JSON types and value forms of a real `entitle check
//!   --output` record.
//! - `file PATH`: the block is PATH, comment and blank lines aside.
//! - `helm`: the block is consecutive lines of a template of helm/example (which
//!   tests/deploy/helm_test.py renders and validates in CI).
//! - `aws PATH`: PATH exists, every `--parameter-overrides` name is one of its `Parameters`, and
//!   every `deploy/...` path the block names exists.
//! - `ci`: every command line is a line of .ci/run.
//! - `podman NAME`: run with podman by tests/deploy/readme_snippets.sh in CI's ship phase; here
//!   only that the script handles it.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every kind a marker may name, and whether it takes an argument.
const KINDS: &[(&str, bool)] = &[
    ("run", false),
    ("script", false),
    ("rust", false),
    ("help", false),
    ("record", false),
    ("file", true),
    ("helm", false),
    ("aws", true),
    ("ci", false),
    ("podman", true),
];

/// A `run` snippet that takes longer than this fails (the demo builds entitle and the mock).
const RUN_DEADLINE: Duration = Duration::from_secs(300);
/// Building the `rust` snippet's crate (its first build compiles ring and entitle-verify).
const BUILD_DEADLINE: Duration = Duration::from_secs(600);
/// The last line `scripts/demo.sh` prints, as the README promises.
const DEMO_END: &str = "entitled, signature and claims verified";
/// Where tests/deploy/readme_snippets.sh checks the `podman` snippets.
const PODMAN_SCRIPT: &str = "tests/deploy/readme_snippets.sh";

/// The tests that run programs take turns: snippets rebuild target/debug (the `entitle` the other
/// tests run), one listens on a fixed port, and two cargo builds at once only slow both down.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One fenced block of README.md.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// The marker's words (kind, then its argument), or None without a marker.
    marker: Option<Vec<String>>,
    /// The block's lines, with the fence's own indentation removed, newline-terminated.
    text: String,
}

impl Block {
    fn kind(&self) -> &str {
        self.marker
            .as_ref()
            .and_then(|words| words.first())
            .map_or("", String::as_str)
    }

    fn arg(&self) -> &str {
        self.marker
            .as_ref()
            .and_then(|words| words.get(1))
            .map_or("", String::as_str)
    }

    fn at(&self) -> String {
        format!("README.md:{} ({})", self.line, self.kind())
    }
}

/// `<!-- snippet: KIND [ARG] -->` as words, or None for any other line.
fn parse_marker(line: &str) -> Option<Vec<String>> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim()
        .strip_prefix("snippet:")?;
    Some(inner.split_whitespace().map(str::to_owned).collect())
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

/// The fenced blocks of a Markdown text: a fence is a line of optional spaces then three
/// backticks; the block ends at the next such line.
fn parse_blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !is_fence(lines[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let indent = lines[i].len() - lines[i].trim_start().len();
        let marker = lines[..i]
            .iter()
            .rev()
            .find(|line| !line.trim().is_empty())
            .and_then(|line| parse_marker(line));
        let mut text = String::new();
        i += 1;
        while i < lines.len() && !is_fence(lines[i]) {
            let line = lines[i];
            let cut = line.len() - line.trim_start().len();
            text.push_str(&line[cut.min(indent)..]);
            text.push('\n');
            i += 1;
        }
        assert!(
            i < lines.len(),
            "README.md:{}: a fence that is never closed",
            start + 1
        );
        blocks.push(Block {
            line: start + 1,
            marker,
            text,
        });
        i += 1;
    }
    blocks
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("read README.md")
}

fn blocks_of(kind: &str) -> Vec<Block> {
    parse_blocks(&readme())
        .into_iter()
        .filter(|block| block.kind() == kind)
        .collect()
}

// --- markers ------------------------------------------------------------------------------------

#[test]
fn every_block_is_marked_with_a_known_kind() {
    let text = readme();
    let blocks = parse_blocks(&text);
    assert!(!blocks.is_empty(), "README.md has no fenced block");
    let mut problems = Vec::new();
    for block in &blocks {
        let Some(words) = &block.marker else {
            problems.push(format!(
                "README.md:{}: no `<!-- snippet: KIND [ARG] -->` marker above this block",
                block.line
            ));
            continue;
        };
        let first = words.first().map_or("", String::as_str);
        match KINDS.iter().find(|(kind, _)| *kind == first) {
            None => problems.push(format!(
                "README.md:{}: unknown snippet kind {first:?} (known: {})",
                block.line,
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            )),
            Some((kind, takes_arg)) => {
                let want = if *takes_arg { 2 } else { 1 };
                if words.len() != want {
                    problems.push(format!(
                        "README.md:{}: `{kind}` takes {} (marker: {words:?})",
                        block.line,
                        if *takes_arg {
                            "one argument"
                        } else {
                            "no argument"
                        }
                    ));
                }
            }
        }
    }
    // A marker must mark a block: the next non-empty line after it is a fence.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if parse_marker(line).is_some()
            && !lines[i + 1..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| is_fence(l))
        {
            problems.push(format!(
                "README.md:{}: a marker with no block under it",
                i + 1
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_parser_finds_markers_fences_and_indented_blocks() {
    let text = "intro\n\n<!-- snippet: run -->\n```sh\necho hi\n```\n\n- item\n\n  <!-- snippet: file a/b -->\n  ```\n  x\n    y\n  ```\nplain\n```\nnone\n```\n";
    let blocks = parse_blocks(text);
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        (blocks[0].kind(), blocks[0].text.as_str()),
        ("run", "echo hi\n")
    );
    assert_eq!((blocks[1].kind(), blocks[1].arg()), ("file", "a/b"));
    assert_eq!(blocks[1].text, "x\n  y\n");
    assert_eq!(blocks[1].line, 11);
    assert!(blocks[2].marker.is_none());
}

// --- running things -----------------------------------------------------------------------------

/// How a command run by [`run_in_group`] ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

impl Finished {
    fn report(&self) -> String {
        format!(
            "exit {:?} after {:.1?}{}\n--- stdout (end):\n{}\n--- stderr (end):\n{}",
            self.code,
            self.elapsed,
            if self.timed_out {
                " (deadline: killed)"
            } else {
                ""
            },
            tail(&self.stdout, 60),
            tail(&self.stderr, 60)
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn collect(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = send.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receive
}

/// Runs `command` in a process group of its own, at most for `limit`; then kills whatever of the
/// group is left (background processes a snippet started), finished or not.
fn run_in_group(command: &mut Command, limit: Duration) -> Finished {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let group = child.id() as i32;
    let stdout = collect(child.stdout.take().expect("stdout"));
    let stderr = collect(child.stderr.take().expect("stderr"));
    let mut timed_out = false;
    let mut status = None;
    while status.is_none() {
        status = child.try_wait().expect("wait for the snippet");
        if status.is_none() {
            if started.elapsed() > limit {
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let elapsed = started.elapsed();
    // SAFETY: kill(2) on the process group this test created (its leader is our child); ESRCH
    // when nothing is left is fine.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let status = status.or_else(|| child.wait().ok());
    let read = |pipe: mpsc::Receiver<String>| {
        pipe.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| "<still open: a process left the group>".to_owned())
    };
    Finished {
        code: status.and_then(|s| s.code()),
        stdout: read(stdout),
        stderr: read(stderr),
        elapsed,
        timed_out,
    }
}

/// An executable named `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|path| {
            use std::os::unix::fs::PermissionsExt;
            path.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A clean environment for snippets and the builds this test runs: PATH and HOME, and the Rust
/// toolchain's own locations so cargo finds the same toolchain and caches. No AWS_*, no
/// CARGO_TARGET_DIR, nothing else from the host.
fn clean_env(command: &mut Command, path: &OsString) {
    command.env_clear().env("PATH", path).env(
        "HOME",
        std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
    );
    for name in ["TMPDIR", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
}

/// PATH with `dir` first.
fn path_with(dir: &Path) -> OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

/// The product environment `common::entitle` gives, on another program.
fn with_product_env(program: impl AsRef<std::ffi::OsStr>, mock: &Mock, path: &OsString) -> Command {
    let configured = entitle(mock, &[]);
    let mut command = Command::new(program);
    command.env_clear().stdin(Stdio::null());
    for (key, value) in configured.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command.env("PATH", path);
    command
}

fn entitle_dir() -> PathBuf {
    entitle_bin()
        .parent()
        .expect("entitle's folder")
        .to_path_buf()
}

// --- run ----------------------------------------------------------------------------------------

/// helm for the snippet that needs it: `$HELM` (CI) or `helm` on PATH.
fn find_helm() -> Option<PathBuf> {
    match std::env::var_os("HELM").filter(|h| !h.is_empty()) {
        Some(helm) => {
            let helm = PathBuf::from(helm);
            assert!(helm.is_file(), "HELM={} does not exist", helm.display());
            Some(std::fs::canonicalize(&helm).expect("canonical HELM"))
        }
        None => on_path("helm"),
    }
}

/// The quantities the README says the mock billed, from the comment on the `/_mock/meter` line:
/// `# what the mock billed: scans 3, gb 12`.
fn promised_totals(block: &Block) -> BTreeMap<String, u64> {
    let line = block
        .text
        .lines()
        .find(|line| line.contains("/_mock/meter"))
        .expect("a /_mock/meter line");
    let said = line
        .split_once("billed:")
        .unwrap_or_else(|| panic!("{}: the /_mock/meter line says what was billed", block.at()))
        .1;
    said.split(',')
        .map(|pair| {
            let mut words = pair.split_whitespace();
            match (words.next(), words.next().and_then(|q| q.parse().ok())) {
                (Some(dimension), Some(quantity)) => (dimension.to_owned(), quantity),
                _ => panic!("{}: cannot read `{pair}` as DIMENSION QUANTITY", block.at()),
            }
        })
        .collect()
}

/// The last `/_mock/meter` answer a snippet printed, summed per dimension over all periods.
fn billed_totals(stdout: &str) -> Option<BTreeMap<String, u64>> {
    let answer = stdout.lines().rev().find_map(|line| {
        let start = line.find('{')?;
        serde_json::from_str::<Value>(&line[start..])
            .ok()
            .filter(|v| v.get("totals").is_some())
    })?;
    let mut sums = BTreeMap::new();
    for period in answer["totals"].as_object()?.values() {
        for (dimension, quantity) in period.as_object()? {
            *sums.entry(dimension.clone()).or_insert(0) += quantity.as_u64()?;
        }
    }
    Some(sums)
}

fn run_snippet(block: &Block) {
    let helm_dir = tempfile::tempdir().expect("temp dir");
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    let uses = |tool: &str| {
        block.text.lines().any(|line| {
            let line = line.trim_start();
            line.starts_with(&format!("{tool} "))
                || line.contains(&format!("until {tool} "))
                || line.contains(&format!("&& {tool} "))
                || line.contains(&format!("$({tool} "))
                || line.contains(&format!("; {tool} "))
        })
    };
    if uses("helm") {
        match find_helm() {
            Some(helm) => {
                std::os::unix::fs::symlink(&helm, helm_dir.path().join("helm")).expect("link helm");
                path = path_with(helm_dir.path());
            }
            None => {
                println!(
                    "SKIPPED: helm not found ({}: set HELM or put helm on PATH)",
                    block.at()
                );
                return;
            }
        }
    }
    for (tool, package) in [
        ("cargo", "Rust (rustup)"),
        ("curl", "curl (Debian: apt-get install curl)"),
    ] {
        if uses(tool) && on_path(tool).is_none() {
            panic!(
                "{}: this snippet needs {tool}, which is not on PATH: install {package}",
                block.at()
            );
        }
    }
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", &block.text])
        .current_dir(repo());
    clean_env(&mut command, &path);
    let finished = run_in_group(&mut command, RUN_DEADLINE);
    println!(
        "{}: exit {:?} in {:.1?}",
        block.at(),
        finished.code,
        finished.elapsed
    );
    assert!(
        !finished.timed_out && finished.code == Some(0),
        "{} failed:\n{}\n--- the snippet:\n{}",
        block.at(),
        finished.report(),
        block.text
    );
    if block.text.contains("scripts/demo.sh") {
        assert!(
            finished.stdout.trim_end().ends_with(DEMO_END),
            "{}: the demo does not end with `{DEMO_END}`:\n{}",
            block.at(),
            finished.report()
        );
    }
    if block.text.contains("/_mock/meter") {
        let promised = promised_totals(block);
        assert_eq!(
            billed_totals(&finished.stdout).as_ref(),
            Some(&promised),
            "{}: what the mock billed (its last /_mock/meter answer) is not what the README says:\n{}",
            block.at(),
            finished.report()
        );
    }
}

#[test]
fn run_snippets_succeed_and_print_what_the_readme_says() {
    let blocks = blocks_of("run");
    assert!(!blocks.is_empty(), "README.md has no `run` snippet");
    let _turn = serial();
    for block in &blocks {
        run_snippet(block);
    }
}

// --- script -------------------------------------------------------------------------------------

#[test]
fn start_scripts_serve_under_entitle_run_and_refuse_without_it() {
    let _turn = serial();
    for block in blocks_of("script") {
        let mock = Mock::start(&[]);
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("start.sh");
        std::fs::write(&script, &block.text).expect("write the script");
        let script = script.to_str().expect("UTF-8 path");
        let path = path_with(&entitle_dir());
        let served = ["sh", "-c", "echo served"];

        let mut args = vec!["run", "--", "sh", script];
        args.extend(served);
        let mut with = entitle(&mock, &args);
        with.env("PATH", &path);
        let mut without = with_product_env("sh", &mock, &path);
        without.arg(script).args(served);
        let run =
            assert_serves_only_under_entitle(&block, (&mut with, &mut without), "served", "served");
        assert!(
            run.stderr.contains("not entitled"),
            "{}: stderr {:?}",
            block.at(),
            run.stderr
        );
    }
}

/// Runs `with` (under `entitle run`): 0, and `served` on stdout; then `without`: 76, and not
/// even `a_trace` of serving on stdout. Returns the run without entitle.
fn assert_serves_only_under_entitle(
    block: &Block,
    (with, without): (&mut Command, &mut Command),
    served: &str,
    a_trace: &str,
) -> Run {
    let run = common::run(with);
    assert_eq!(
        run.code,
        Some(0),
        "{}: under `entitle run`: stdout {:?}, stderr:\n{}",
        block.at(),
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains(served),
        "{}: stdout {:?}",
        block.at(),
        run.stdout
    );
    let run = common::run(without);
    assert_eq!(
        run.code,
        Some(76),
        "{}: without entitle: stdout {:?}, stderr:\n{}",
        block.at(),
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stdout.contains(a_trace),
        "{}: served without entitle",
        block.at()
    );
    run
}

// --- rust ---------------------------------------------------------------------------------------

/// Runs cargo with `args` in `dir` (clean environment, `target` as its target folder).
fn cargo(dir: &Path, target: &Path, args: &[&str], limit: Duration) {
    let mut command = Command::new(env!("CARGO"));
    command.args(args).current_dir(dir);
    clean_env(&mut command, &std::env::var_os("PATH").unwrap_or_default());
    command.env("CARGO_TARGET_DIR", target);
    let finished = run_in_group(&mut command, limit);
    assert!(
        !finished.timed_out && finished.code == Some(0),
        "cargo {}: {}",
        args.join(" "),
        finished.report()
    );
}

#[test]
fn rust_snippets_build_against_entitle_verify_and_verify_the_token() {
    let _turn = serial();
    for block in blocks_of("rust") {
        let started = Instant::now();
        let mock = Mock::start(&[]);
        let dir = tempfile::tempdir().expect("temp dir");
        let krate = dir.path().join("readme-snippet");
        // Next to the workspace's own build (target/readme-crate), kept between runs.
        let target = entitle_dir()
            .parent()
            .expect("the target folder")
            .join("readme-crate");
        let verify_crate = repo().join("entitle-verify");
        let verify_crate = verify_crate.to_str().expect("UTF-8 path");
        let crate_path = krate.to_str().expect("UTF-8 path");
        cargo(
            dir.path(),
            &target,
            &[
                "new",
                "--quiet",
                "--vcs",
                "none",
                "--name",
                "readme-snippet",
                crate_path,
            ],
            Duration::from_secs(60),
        );
        // The workspace's lock file: the same versions as the cached ones, no registry needed.
        std::fs::copy(repo().join("Cargo.lock"), krate.join("Cargo.lock"))
            .expect("copy Cargo.lock");
        cargo(
            &krate,
            &target,
            &[
                "add",
                "--quiet",
                "--offline",
                "entitle-verify",
                "--path",
                verify_crate,
            ],
            Duration::from_secs(120),
        );
        std::fs::write(krate.join("src/main.rs"), &block.text).expect("write src/main.rs");
        std::fs::copy(&mock.public_key, krate.join("product-key.pem")).expect("copy the key");
        cargo(
            &krate,
            &target,
            &["build", "--quiet", "--offline", "--locked"],
            BUILD_DEADLINE,
        );
        let program = target.join("debug/readme-snippet");
        let program = program.to_str().expect("UTF-8 path");
        println!("{}: built in {:.1?}", block.at(), started.elapsed());

        let mut with = entitle(
            &mock,
            &["run", "--product-code", "prod-abc123", "--", program],
        );
        let mut alone = Command::new(program);
        alone
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        assert_serves_only_under_entitle(
            &block,
            (&mut with, &mut alone),
            "entitled: serving",
            "serving",
        );
    }
}

// --- help ---------------------------------------------------------------------------------------

fn normalise(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn help_snippets_are_lines_of_entitle_help() {
    let _turn = serial();
    let help = run(&mut bare_entitle(&["--help"]));
    help.assert_code(0);
    let text = format!("{}{}", help.stdout, help.stderr);
    let lines: Vec<String> = text.lines().map(normalise).collect();
    for block in blocks_of("help") {
        let missing: Vec<&str> = block
            .text
            .lines()
            .filter(|line| !line.trim().is_empty() && !lines.contains(&normalise(line)))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: not in `entitle --help`:\n{}\n--- entitle --help:\n{text}",
            block.at(),
            missing.join("\n")
        );
    }
}

// --- record -------------------------------------------------------------------------------------

fn is_base64url(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .clone()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10))
        || !(b[10] == b'T' || b[10] == b't')
        || !(digits(11..13) && b[13] == b':' && digits(14..16) && b[16] == b':' && digits(17..19))
    {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return false;
        }
        rest = &fraction[end..];
    }
    let zone = rest.as_bytes();
    rest == "Z"
        || rest == "z"
        || (zone.len() == 6
            && (zone[0] == b'+' || zone[0] == b'-')
            && zone[1..3].iter().all(u8::is_ascii_digit)
            && zone[3] == b':'
            && zone[4..].iter().all(u8::is_ascii_digit))
}

fn decodes_to_json_object(part: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|value| value.is_object())
}

/// A compact JWS: header.payload.signature, base64url, header and payload JSON objects. With
/// `shortened`, a prefix of one ending in `…` (as the README prints it) also counts.
fn is_jws(text: &str, shortened: bool) -> bool {
    let (text, cut) = match text.strip_suffix('…') {
        Some(prefix) if shortened => (prefix, true),
        _ => (text, false),
    };
    let parts: Vec<&str> = text.split('.').collect();
    if cut {
        // Every part before the cut is whole; the last one is a prefix.
        let (last, whole) = parts.split_last().expect("split yields one part");
        parts.len() <= 3
            && is_base64url(last)
            && whole.iter().all(|part| decodes_to_json_object(part))
    } else {
        parts.len() == 3
            && parts.iter().all(|part| is_base64url(part))
            && parts[..2].iter().all(|part| decodes_to_json_object(part))
    }
}

/// What kind of value this is, as far as the README promises it.
fn form(value: &Value, shortened: bool) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer".into(),
        Value::Number(_) => "number".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
        Value::String(s) if is_rfc3339(s) => "an RFC 3339 time".into(),
        Value::String(s) if s.len() == 43 && is_base64url(s) => "a 43-char base64url nonce".into(),
        Value::String(s) if is_jws(s, shortened) => "a JWS (header.payload.signature)".into(),
        Value::String(_) => "a string".into(),
    }
}

#[test]
fn record_snippets_look_like_a_real_record() {
    let _turn = serial();
    for block in blocks_of("record") {
        let shown: Value = serde_json::from_str(&block.text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", block.at()));
        let shown = shown.as_object().expect("the record is a JSON object");
        let mock = Mock::start(&[]);
        let output = mock.path("record.json");
        let output_arg = output.to_str().expect("UTF-8 path");
        let product = shown
            .get("productCode")
            .and_then(Value::as_str)
            .unwrap_or("prod-abc123");
        run(&mut entitle(
            &mock,
            &["check", "--product-code", product, "--output", output_arg],
        ))
        .assert_code(0);
        let real: Value =
            serde_json::from_str(&std::fs::read_to_string(&output).expect("the record"))
                .expect("JSON");
        let real = real.as_object().expect("a JSON object");
        assert_eq!(
            shown.keys().collect::<BTreeSet<_>>(),
            real.keys().collect::<BTreeSet<_>>(),
            "{}: keys differ from a real record:\n{}",
            block.at(),
            serde_json::to_string_pretty(real).unwrap()
        );
        for (key, value) in shown {
            assert_eq!(
                form(value, true),
                form(&real[key], false),
                "{}: `{key}` is {value} here, a real record has {}",
                block.at(),
                real[key]
            );
        }
        for key in ["productCode", "publicKeyVersion"] {
            assert_eq!(shown.get(key), real.get(key), "{}: {key}", block.at());
        }
    }
}

// --- file, helm, aws, ci, podman: text against the repository -----------------------------------

/// Lines that are neither blank nor comments, trailing space removed.
fn meaningful_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .collect()
}

#[test]
fn file_snippets_are_the_files_they_name() {
    for block in blocks_of("file") {
        let path = repo().join(block.arg());
        let file = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", block.at(), block.arg()));
        assert_eq!(
            meaningful_lines(&block.text),
            meaningful_lines(&file),
            "{}: the block is not {} (comments and blank lines aside)",
            block.at(),
            block.arg()
        );
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn helm_snippets_are_in_the_example_charts_templates() {
    let templates = repo().join("helm/example/templates");
    for block in blocks_of("helm") {
        let wanted: Vec<&str> = block.text.lines().map(str::trim).collect();
        let wanted: Vec<&str> = wanted
            .iter()
            .copied()
            .skip_while(|l| l.is_empty())
            .collect();
        assert!(!wanted.is_empty(), "{}: an empty block", block.at());
        let found = files_under(&templates).into_iter().find(|file| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            lines
                .windows(wanted.len())
                .any(|window| window == wanted.as_slice())
        });
        assert!(
            found.is_some(),
            "{}: these lines are not consecutive lines of any file under helm/example/templates/:\n{}",
            block.at(),
            block.text
        );
    }
}

/// The names declared under a CloudFormation template's top-level `Parameters:`.
fn template_parameters(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            inside = line.trim_end() == "Parameters:";
            continue;
        }
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        if inside && !rest.starts_with(' ') {
            if let Some(name) = rest.trim_end().strip_suffix(':') {
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

/// The `Name` of every `Name=value` after `--parameter-overrides`, up to the next `--` option.
fn parameter_overrides(command: &str) -> Vec<String> {
    let joined = command.replace("\\\n", " ");
    let Some((_, after)) = joined.split_once("--parameter-overrides") else {
        return Vec::new();
    };
    after
        .split_whitespace()
        .take_while(|word| !word.starts_with("--"))
        .filter_map(|word| {
            let word = word.trim_start_matches(['"', '\'']);
            let (name, _) = word.split_once('=')?;
            (!name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric()))
            .then(|| name.to_owned())
        })
        .collect()
}

/// Every `deploy/...` path a text names.
fn deploy_paths(text: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("deploy/") {
        let preceded_by_path = at > 0 && {
            let before = rest.as_bytes()[at - 1];
            before.is_ascii_alphanumeric() || b"/._-".contains(&before)
        };
        let path = &rest[at..];
        let end = path
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c)))
            .unwrap_or(path.len());
        if !preceded_by_path {
            paths.push(path[..end].trim_end_matches('.'));
        }
        rest = &path[end.max(1)..];
    }
    paths
}

#[test]
fn aws_snippets_name_real_files_and_template_parameters() {
    for block in blocks_of("aws") {
        let template_path = repo().join(block.arg());
        let template = std::fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", block.at(), block.arg()));
        let declared = template_parameters(&template);
        assert!(
            !declared.is_empty(),
            "{}: {} declares no Parameters",
            block.at(),
            block.arg()
        );
        let given = parameter_overrides(&block.text);
        assert!(
            !given.is_empty(),
            "{}: no --parameter-overrides found",
            block.at()
        );
        let unknown: Vec<&String> = given
            .iter()
            .filter(|name| !declared.contains(name))
            .collect();
        assert!(
            unknown.is_empty(),
            "{}: {unknown:?} are not parameters of {} (it has {declared:?})",
            block.at(),
            block.arg()
        );
        for path in deploy_paths(&block.text) {
            assert!(
                repo().join(path).exists(),
                "{}: {path} does not exist",
                block.at()
            );
        }
    }
}

#[test]
fn the_aws_helpers_read_what_they_should() {
    let template = "Description: x\nParameters:\n  ProductCode:\n    Type: String\n  AppImage:\n    Type: String\nRules:\n  NotAParameter:\n    x: 1\n";
    assert_eq!(template_parameters(template), ["ProductCode", "AppImage"]);
    let command = "aws cloudformation deploy --template-file deploy/x.yaml \\\n  --parameter-overrides A=1 \\\n  \"Key=$(awk 'BEGIN{ORS=\"\\\\n\"} {print}' k.pem)\" B=x=y --tags T=1";
    assert_eq!(parameter_overrides(command), ["A", "Key", "B"]);
    assert_eq!(
        deploy_paths("see deploy/ecs/a.json, deploy/iam/b.json."),
        ["deploy/ecs/a.json", "deploy/iam/b.json"]
    );
}

#[test]
fn ci_snippets_are_commands_of_ci_run() {
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect("read .ci/run");
    let ci_lines: Vec<&str> = ci.lines().map(str::trim).collect();
    for block in blocks_of("ci") {
        for line in meaningful_lines(&block.text) {
            assert!(
                ci_lines.contains(&line.trim()),
                "{}: `{}` is not a command of .ci/run",
                block.at(),
                line.trim()
            );
        }
    }
}

#[test]
fn podman_snippets_are_checked_by_the_deploy_script() {
    let script = repo().join(PODMAN_SCRIPT);
    let text = std::fs::read_to_string(&script)
        .unwrap_or_else(|e| panic!("{PODMAN_SCRIPT}: {e}: it runs the `podman` snippets"));
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect("read .ci/run");
    assert!(
        ci.contains(PODMAN_SCRIPT),
        ".ci/run does not run {PODMAN_SCRIPT}"
    );
    for block in blocks_of("podman") {
        let name = format!("podman {}", block.arg());
        assert!(
            text.contains(&name),
            "{}: {PODMAN_SCRIPT} does not check `{name}`",
            block.at()
        );
    }
}
