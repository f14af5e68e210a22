#!/usr/bin/env python3
"""Side-by-side figures for entitle, tini and an AWS-CLI entrypoint, all against entitle-mock on
127.0.0.1, interleaved in one session. Called by scripts/bench.sh, which builds and installs what
this needs. Progress goes to stderr; the Markdown report goes to stdout and to --output (default
target/bench/benchmarks.md).

What is measured, and how to read it:
- latency: wall time from spawn to exit, and the CPU time (user+sys, from wait4's rusage) of the
  measured process and the children it waited for, median and p90 over BENCH_RUNS interleaved
  runs. Ratios are against tini and the AWS-CLI entrypoint measured in the same session. Wall
  time includes the mock's answer (and, over HTTPS, the Python TLS proxy): their own CPU per
  request is reported so it can be told apart from entitle's.
- herd: N `entitle check` at once against a mock throttled to 5 RegisterUsage/s (the AWS quota),
  BENCH_HERD_RUNS times per size, as min / median / max of the completion time and of its ratio
  to the floor the quota allows, (N - 5) / 5 s (5 at once from the full bucket, then 5/s); beside
  it the AWS SDK's own retry (boto3 standard mode) under the same herd.
Wall-clock figures come from a shared machine: read the ratios, not the absolute values.

Every process this starts gets its own process group, is killed with its group when done, and is
killed on exit (also on Ctrl-C / SIGTERM); long-lived ones also die with this process
(PR_SET_PDEATHSIG), and the supervised idle child dies with its supervisor."""

import argparse, ctypes, datetime, os, platform, re, select, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "scripts", "bench")
ENTITLE = os.environ["ENTITLE_BIN"]
MOCK = os.environ["MOCK_BIN"]
PEAKRSS = os.environ["PEAKRSS_BIN"]
VENV = os.environ["BENCH_VENV"]
TINI = "/usr/bin/tini-static" if os.path.exists("/usr/bin/tini-static") else "/usr/bin/tini"
KNOBS = {  # name: (default, meaning)
    "BENCH_RUNS": ("30", "interleaved runs per latency variant"),
    "BENCH_SIGNALS": ("1000", "signals forwarded per supervisor"),
    "BENCH_IDLE_SECONDS": ("10", "idle supervision time per supervisor"),
    "BENCH_HERDS": ("40,100,200", "herd sizes"),
    "BENCH_HERD_RUNS": ("5", "runs per herd size (entitle, and the SDK baseline)"),
    "BENCH_HERD_BASELINE": ("1", "also run the AWS SDK herd baseline (0: skip)"),
}
KNOB = {name: os.environ.get(name) or default for name, (default, _) in KNOBS.items()}
RUNS = int(KNOB["BENCH_RUNS"])
SIGNALS = int(KNOB["BENCH_SIGNALS"])
IDLE_SECONDS = int(KNOB["BENCH_IDLE_SECONDS"])
HERDS = [int(n) for n in KNOB["BENCH_HERDS"].split(",") if n]
HERD_RUNS = int(KNOB["BENCH_HERD_RUNS"])
HERD_BASELINE = KNOB["BENCH_HERD_BASELINE"] != "0"
PRODUCT = "prod-bench"
RATE = 5  # RegisterUsage per second, the AWS quota the herd runs against
BURST = RATE  # the mock's bucket starts full and holds RATE tokens (entitle-mock --help: "burst N")
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORK = tempfile.mkdtemp(prefix="entitle-bench-")
SECTIONS = []  # (title, text) of the report, in order

# --- processes ---------------------------------------------------------------------------------

LIVE = {}  # pid -> Popen, every process started here and not yet reaped
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


def spawn(argv, long_lived=False, **kw):
    """Popen in a new session (its own process group), remembered until reaped. long_lived ones
    also get PDEATHSIG (which forces fork instead of vfork: not used for the timed runs)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent if long_lived else None, **kw)
    LIVE[proc.pid] = proc
    return proc


def reap(proc):
    """wait4 the process; returns (exit code, rusage)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    LIVE.pop(proc.pid, None)
    return proc.returncode, usage


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def stop(proc, grace=5.0):
    """SIGTERM the process group, SIGKILL it after `grace` seconds, reap the leader."""
    if proc.returncode is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    try:  # what is left of the group (orphans), if anything
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    LIVE.pop(proc.pid, None)


def stop_all():
    for proc in list(LIVE.values()):
        stop(proc, grace=0.5)


def _terminate(signum, _frame):
    log(f"stopped by signal {signum}: stopping every process started here")
    raise SystemExit(128 + signum)


# --- helpers -----------------------------------------------------------------------------------


def log(text):
    print(text, file=sys.stderr, flush=True)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section(title, text):
    SECTIONS.append((title, text))
    log(f"\n## {title}\n{text}")


def cpu_seconds(pid):
    """user+sys of a running process, all its threads (dead ones included), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_mock(*args):
    key = os.path.join(WORK, "key.pem")
    private = os.path.join(WORK, "private.pem")
    key_args = ["--private-key", private] if os.path.exists(private) else ["--write-private-key", private]
    log_file = os.path.join(WORK, f"requests-{time.monotonic_ns()}.jsonl")
    proc = spawn([MOCK, "--write-public-key", key, "--request-log", log_file, *key_args, *args], long_lived=True,
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        sys.exit(f"entitle-mock did not start (said {url!r})")
    return proc, url, key, log_file


def count_registrations(log_file):
    try:
        return sum(1 for line in open(log_file) if '"register"' in line)
    except FileNotFoundError:
        return 0


def ca_and_cert():
    ca_key, ca, key, csr, cert = (os.path.join(WORK, n) for n in ("ca.key", "ca.pem", "tls.key", "tls.csr", "tls.pem"))
    q = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=entitle bench CA"], **q)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], **q)
    ext = os.path.join(WORK, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext], **q)
    return ca, cert, key


def environment(url, key, ca=None):
    env = {
        "PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": WORK, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_MARKETPLACE_METERING": url, "ENTITLE_PRODUCT_CODE": PRODUCT, "ENTITLE_PUBLIC_KEY_FILE": key,
        "ENTITLE_LOG": "warn", "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "3",
    }
    if ca:
        env.update(SSL_CERT_FILE=ca, AWS_CA_BUNDLE=ca)
    return env


def timed(argv, env):
    """(wall ms, CPU ms) of one run: spawn -> exit, and user+sys of the process and the children
    it waited for (wait4's rusage)."""
    err = os.path.join(WORK, "timed.err")
    with open(err, "wb") as stderr:
        started = time.perf_counter()
        proc = spawn(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        code, usage = reap(proc)
        elapsed = time.perf_counter() - started
    if code != 0:
        sys.exit(f"{' '.join(argv)} failed with {code}: {open(err, errors='replace').read()[-500:]}")
    return elapsed * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def peak_rss(argv, env):
    """Peak RSS (KiB) of the entrypoint and the processes it waited for, via a tiny launcher
    (measured from Python, Linux would count Python's pre-exec image too)."""
    proc = spawn([PEAKRSS, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate()
    LIVE.pop(proc.pid, None)
    return int(err.strip().splitlines()[-1].split()[1])


# --- the measurements --------------------------------------------------------------------------


def sizes():
    log("sizes")
    du = subprocess.run(["du", "-sk", VENV], capture_output=True, text=True, check=True).stdout.split()[0]
    rows = [
        ("entitle (static, shipped)", f"{os.path.getsize(ENTITLE) / 1048576:.2f} MiB"),
        ("tini-static", f"{os.path.getsize(TINI) / 1048576:.2f} MiB"),
        ("AWS CLI + boto3 + cryptography (venv, Python not counted)", f"{int(du) / 1024:.0f} MiB"),
    ]
    section("Size", table(["what", "size"], rows))


def latency():
    log(f"latency: {RUNS} interleaved runs of each variant (spawn -> exit, CPU from wait4)")
    mock, url, key, mock_log = start_mock()
    ca, cert, tls_key = ca_and_cert()
    port = url.rsplit(":", 1)[1]
    proxy = spawn([sys.executable, os.path.join(ROOT, "tests", "fixtures", "tls_proxy.py"), cert, tls_key, port],
                  long_lived=True, stdout=subprocess.PIPE, text=True)
    https_url = proxy.stdout.readline().strip()
    http_env, https_env = environment(url, key), environment(https_url, key, ca)
    cli = os.path.join(BENCH, "entrypoint-awscli.sh")
    variants = {  # name: (argv, env, requests it makes)
        "true (no entrypoint: the floor)": (["true"], http_env, 0),
        "tini -- true": ([TINI, "--", "true"], http_env, 0),
        "entitle check (HTTP)": ([ENTITLE, "check"], http_env, 1),
        "entitle run -- true (HTTP)": ([ENTITLE, "run", "--", "true"], http_env, 1),
        "AWS CLI entrypoint -- true (HTTP)": ([cli, "true"], http_env, 1),
        "entitle check (HTTPS)": ([ENTITLE, "check"], https_env, 1),
        "entitle run -- true (HTTPS)": ([ENTITLE, "run", "--", "true"], https_env, 1),
        "AWS CLI entrypoint -- true (HTTPS)": ([cli, "true"], https_env, 1),
    }
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for argv, env, _ in variants.values():  # warm the page cache once
        timed(argv, env)
    registered, mock_cpu, proxy_cpu = count_registrations(mock_log), cpu_seconds(mock.pid), cpu_seconds(proxy.pid)
    for i in range(RUNS):  # interleaved, so drift hits every variant alike
        for name, (argv, env, _) in variants.items():
            w, c = timed(argv, env)
            wall[name].append(w)
            cpu[name].append(c)
        if (i + 1) % 10 == 0:
            log(f"  {i + 1}/{RUNS} rounds")
    registered = count_registrations(mock_log) - registered
    mock_cpu, proxy_cpu = cpu_seconds(mock.pid) - mock_cpu, cpu_seconds(proxy.pid) - proxy_cpu
    expected = RUNS * sum(n for _, _, n in variants.values())
    https_requests = RUNS * sum(n for name, (_, _, n) in variants.items() if "HTTPS" in name)
    rss = {name: max(peak_rss(argv, env) for _ in range(3)) for name, (argv, env, _) in variants.items()}
    stop(proxy)
    stop(mock)

    med = {name: statistics.median(v) for name, v in wall.items()}
    cmed = {name: statistics.median(v) for name, v in cpu.items()}
    rows = []
    for name in variants:
        scheme = "HTTPS" if "HTTPS" in name else "HTTP"
        base = f"AWS CLI entrypoint -- true ({scheme})"
        rows.append((name, f"{med[name]:.1f}", f"{pct(wall[name], 90):.1f}", f"{cmed[name]:.1f}",
                     f"{med[name] / med['tini -- true']:.1f}x", f"{med[name] / med[base]:.3f}x",
                     f"{cmed[name] / cmed[base]:.3f}x", f"{rss[name] / 1024:.1f}"))
    text = table(["variant", "wall median ms", "wall p90 ms", "CPU median ms (user+sys)", "wall ÷ tini",
                  "wall ÷ AWS CLI", "CPU ÷ AWS CLI", "peak RSS MiB"], rows)
    per_answer = 1000 * mock_cpu / registered if registered else float("nan")
    per_tls = 1000 * proxy_cpu / https_requests if https_requests else float("nan")
    text += (
        f"\n\nWall time includes the answer: entitle-mock used {mock_cpu:.2f} s CPU for the {registered} "
        f"RegisterUsage answers of these runs ({expected} expected), **{per_answer:.2f} ms per answer** "
        f"(an RSA-2048 PS256 signature, in every variant, the AWS CLI's too). Over HTTPS the Python TLS "
        f"proxy adds **{per_tls:.2f} ms CPU per connection** ({proxy_cpu:.2f} s for {https_requests}). "
        f"The CPU column is the measured process only (with `true`, and for the AWS CLI the shell and "
        f"Python it runs), not the mock or the proxy; /proc's CPU counters tick every {1000 / CLK_TCK:.0f} ms, "
        f"so the per-answer figures are totals divided, not single samples. The first row is the cost of "
        f"spawning `true` itself (a dynamically linked program), part of every `-- true` row.")
    section("Latency: spawn -> decision (-> trivial child `true`) -> exit", text)


def status_field(pid, field):
    text = open(f"/proc/{pid}/status").read()
    return int(re.search(rf"^{field}:\s+(\d+)", text, re.M).group(1))


def supervised(argv, env):
    proc = spawn(argv + [sys.executable, os.path.join(BENCH, "signal_child.py")], long_lived=True, env=env,
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if proc.stdout.read(1) != b"r":
        sys.exit(f"{argv[0]}: the supervised child did not start")
    return proc


def idle_and_signals():
    log(f"supervising an idle child ({IDLE_SECONDS} s) and forwarding {SIGNALS} signals")
    mock, url, key, _ = start_mock()
    env = environment(url, key)
    rows = []
    for name, argv in (("tini", [TINI, "--"]), ("entitle run", [ENTITLE, "run", "--"])):
        proc = supervised(argv, env)
        kids = children_of(proc.pid)
        time.sleep(1)
        switches, cpu = status_field(proc.pid, "voluntary_ctxt_switches"), cpu_seconds(proc.pid)
        time.sleep(IDLE_SECONDS)
        woke = status_field(proc.pid, "voluntary_ctxt_switches") - switches
        idle_cpu = cpu_seconds(proc.pid) - cpu
        rss, hwm = status_field(proc.pid, "VmRSS"), status_field(proc.pid, "VmHWM")
        latencies = []
        fd = proc.stdout.fileno()
        for _ in range(SIGNALS):
            started = time.perf_counter()
            os.kill(proc.pid, signal.SIGUSR1)
            if not select.select([fd], [], [], 5)[0]:
                sys.exit(f"{name}: the child did not answer a forwarded SIGUSR1 within 5 s")
            os.read(fd, 1)
            latencies.append((time.perf_counter() - started) * 1e6)
        rows.append((name, f"{rss} KiB (VmHWM {hwm})", f"{woke}", f"{idle_cpu * 1000:.0f} ms",
                     f"{pct(latencies, 50):.0f}", f"{pct(latencies, 99):.0f}"))
        stop(proc)  # SIGTERM: the supervisor forwards it and the child ends; SIGKILL after 5 s
        for kid in kids:  # the child, wherever it went (PDEATHSIG also ends it with its supervisor)
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    stop(mock)
    section(f"Supervising an idle child ({IDLE_SECONDS} s idle, {SIGNALS} SIGUSR1 forwarded)",
            table(["supervisor", "steady RSS", f"voluntary context switches in {IDLE_SECONDS} s",
                   f"CPU in {IDLE_SECONDS} s", "signal forwarding p50 us", "p99 us"], rows)
            + "\n\nSignal latency: `kill` -> the child's handler wrote a byte -> read here.")


def herd_entitle(n):
    mock, url, key, mock_log = start_mock("--rate", str(RATE))
    env = environment(url, key)
    started = time.perf_counter()
    procs = [spawn([ENTITLE, "check"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    failures = sum(1 for p in procs if reap(p)[0] != 0)
    wall = time.perf_counter() - started
    requests = count_registrations(mock_log)
    stop(mock)
    return wall, requests / n, failures


SDK_HERD = """
import boto3, botocore.config, sys, threading
url, product, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}, region_name="us-east-1")
clients = [boto3.session.Session().client("meteringmarketplace", endpoint_url=url, config=cfg) for _ in range(n)]
fails = []
def one(c):
    try:
        c.register_usage(ProductCode=product, PublicKeyVersion=1, Nonce="n")
    except Exception as e:
        fails.append(type(e).__name__)
threads = [threading.Thread(target=one, args=(c,)) for c in clients]
print("ready", flush=True)
sys.stdin.readline()
[t.start() for t in threads]; [t.join() for t in threads]
print(len(fails), flush=True)
"""


def herd_sdk(n):
    """What a naive integration gets: the AWS SDK's own standard retry (3 attempts) and nothing
    else, N clients in one process (their setup is done before the clock starts)."""
    mock, url, key, mock_log = start_mock("--rate", str(RATE))
    proc = spawn([f"{VENV}/bin/python", "-c", SDK_HERD, url, PRODUCT, str(n)], env=environment(url, key),
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if proc.stdout.readline().strip() != "ready":
        sys.exit("the boto3 herd did not start")
    started = time.perf_counter()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    failures = int(proc.stdout.readline())
    wall = time.perf_counter() - started
    reap(proc)
    requests = count_registrations(mock_log)
    stop(mock)
    return wall, requests / n, failures


def herds():
    est = sum(HERDS) / RATE * HERD_RUNS * (2 if HERD_BASELINE else 1) * 1.5
    log(f"herd: N `entitle check` at once against {RATE} RegisterUsage/s, {HERD_RUNS} runs per size "
        f"(roughly {est / 60:.0f} min)")
    results = {(who, n): [] for n in HERDS for who in ("entitle", "sdk")}
    for run in range(HERD_RUNS):  # interleaved, so drift hits every size and both clients alike
        for n in HERDS:
            r = herd_entitle(n)
            results[("entitle", n)].append(r)
            log(f"  run {run + 1}/{HERD_RUNS} N={n} entitle: {r[0]:.1f} s, {r[1]:.2f} requests/agent, {r[2]} failed")
            if HERD_BASELINE:
                r = herd_sdk(n)
                results[("sdk", n)].append(r)
                log(f"  run {run + 1}/{HERD_RUNS} N={n} boto3: {r[0]:.1f} s, {r[1]:.2f} requests/agent, {r[2]} failed")
    rows = []
    for n in HERDS:
        floor = (n - BURST) / RATE
        ratio = (lambda w: f"{w / floor:.2f}") if floor > 0 else (lambda w: "n/a")
        for who, label in (("entitle", "entitle check"), ("sdk", "AWS SDK retry only (boto3 standard, 3 attempts)")):
            got = results[(who, n)]
            if not got:
                continue
            walls = [w for w, _, _ in got]
            failed = sum(f for _, _, f in got)
            rows.append((n, label, len(got), f"{min(walls):.1f} / {statistics.median(walls):.1f} / {max(walls):.1f}",
                         f"{ratio(min(walls))} / {ratio(statistics.median(walls))} / {ratio(max(walls))}",
                         f"{statistics.median(r for _, r, _ in got):.2f}",
                         f"{failed} of {n * len(got)} ({100 * failed / (n * len(got)):.0f}%)"))
    section(f"Herd: N clients at once against a {RATE} requests/s token bucket",
            table(["N", "client", "runs", "completion s (min / median / max)",
                   f"÷ floor (N-{BURST})/{RATE} s (min / median / max)", "requests/agent (median)", "failed"], rows)
            + f"\n\nThe floor is (N-{BURST})/{RATE} s: {BURST} requests at once from the full bucket, then {RATE}/s; no "
              "client can finish sooner. Completion: from starting the N clients to the last one's exit (entitle: N "
              "processes; boto3: N threads of one process, whose clients are set up before the clock starts). boto3 can "
              "come in under the floor only because the clients that gave up stop early: compare the failures. A "
              "failed entitle check would stop the product; a failed SDK call is what a naive entrypoint would turn "
              "into a refusal.")


def versions():
    def out(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True)
            return (p.stdout.strip() or p.stderr.strip()).splitlines()[0]
        except (OSError, IndexError):
            return "not found"
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu.group(1) if cpu else platform.processor()} ({os.cpu_count()} cores)",
        "kernel": platform.release(),
        "entitle": out([ENTITLE, "--version"]),
        "tini": out([TINI, "--version"]),
        "aws cli": out([f"{VENV}/bin/aws", "--version"]),
        "python": platform.python_version(),
        "knobs": ", ".join(f"{k}={v}" for k, v in KNOB.items()),
    }


def report(info, elapsed):
    lines = ["# Benchmarks", "",
             "Produced by `scripts/bench.sh` (see the README). All endpoints are `entitle-mock` on 127.0.0.1;",
             "HTTPS goes through a local TLS proxy with a test CA. Wall-clock figures come from a shared",
             "machine: compare the ratios, measured interleaved in the same session.", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()] + [f"- bench time: {elapsed / 60:.1f} min", ""]
    for title, text in SECTIONS:
        lines += [f"## {title}", "", text, ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description="entitle benchmarks (run through scripts/bench.sh)")
    parser.add_argument("--output", default=os.path.join(ROOT, "target", "bench", "benchmarks.md"),
                        help="where to write the Markdown report (default target/bench/benchmarks.md)")
    args = parser.parse_args()
    # Also when started with SIGINT ignored (a background job of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    started = time.monotonic()
    try:
        info = versions()
        sizes()
        latency()
        idle_and_signals()
        herds()
    finally:
        stop_all()
        shutil.rmtree(WORK, ignore_errors=True)
    text = report(info, time.monotonic() - started)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    log(f"report written to {args.output}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted: every process started here has been stopped")
        sys.exit(130)
