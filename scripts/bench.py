#!/usr/bin/env python3
"""Side-by-side figures for entitle, tini and an AWS-CLI entrypoint, all against entitle-mock on
127.0.0.1, interleaved in one run. Called by scripts/bench.sh, which builds and installs what this
needs; prints one Markdown table and writes it to docs/benchmarks.md.

Timing figures are wall-clock on a shared machine: read the ratios, not the absolute values."""

import atexit, datetime, os, platform, re, select, signal, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "scripts", "bench")
ENTITLE = os.environ["ENTITLE_BIN"]
MOCK = os.environ["MOCK_BIN"]
PEAKRSS = os.environ["PEAKRSS_BIN"]
VENV = os.environ["BENCH_VENV"]
TINI = "/usr/bin/tini-static" if os.path.exists("/usr/bin/tini-static") else "/usr/bin/tini"
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
SIGNALS = int(os.environ.get("BENCH_SIGNALS", "1000"))
IDLE_SECONDS = int(os.environ.get("BENCH_IDLE_SECONDS", "10"))
HERDS = [int(n) for n in os.environ.get("BENCH_HERDS", "40,100,200").split(",")]
PRODUCT = "prod-bench"
WORK = tempfile.mkdtemp(prefix="entitle-bench-")
ROWS = []
SERVERS = []
atexit.register(lambda: [p.kill() for p in SERVERS])


def row(measure, value, note=""):
    ROWS.append((measure, value, note))
    print(f"  {measure}: {value} {note}", flush=True)


def start_mock(*args):
    key = os.path.join(WORK, "key.pem")
    private = os.path.join(WORK, "private.pem")
    key_args = ["--private-key", private] if os.path.exists(private) else ["--write-private-key", private]
    log = os.path.join(WORK, f"requests-{time.monotonic_ns()}.jsonl")
    proc = subprocess.Popen([MOCK, "--write-public-key", key, "--request-log", log, *key_args, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    SERVERS.append(proc)
    url = proc.stdout.readline().strip()
    return proc, url, key, log


def ca_and_cert():
    ca_key, ca, key, csr, cert = (os.path.join(WORK, n) for n in ("ca.key", "ca.pem", "tls.key", "tls.csr", "tls.pem"))
    q = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=entitle bench CA"], **q)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], **q)
    ext = os.path.join(WORK, "ext.cnf")
    open(ext, "w").write("subjectAltName=DNS:localhost\n")
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
    """Wall time of exec..exit in ms."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed with {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed * 1000


def peak_rss(argv, env):
    """Peak RSS (KiB) of the entrypoint and the processes it waited for, via a tiny launcher."""
    proc = subprocess.run([PEAKRSS, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(proc.stderr.strip().splitlines()[-1].split()[1])


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency():
    print("decision latency (exec -> trivial child `true` has run -> exit)", flush=True)
    mock, url, key, _ = start_mock()
    ca, cert, tls_key = ca_and_cert()
    port = url.rsplit(":", 1)[1]
    proxy = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fixtures", "tls_proxy.py"), cert, tls_key, port],
                             stdout=subprocess.PIPE, text=True)
    SERVERS.append(proxy)
    https_url = proxy.stdout.readline().strip()
    http_env, https_env = environment(url, key), environment(https_url, key, ca)
    variants = {
        "tini -- true": ([TINI, "--", "true"], http_env),
        "entitle run -- true (HTTP)": ([ENTITLE, "run", "--", "true"], http_env),
        "entitle run -- true (HTTPS)": ([ENTITLE, "run", "--", "true"], https_env),
        "AWS CLI entrypoint (HTTP)": ([os.path.join(BENCH, "entrypoint-awscli.sh"), "true"], http_env),
        "AWS CLI entrypoint (HTTPS)": ([os.path.join(BENCH, "entrypoint-awscli.sh"), "true"], https_env),
    }
    times = {name: [] for name in variants}
    for name, (argv, env) in variants.items():  # warm the page cache once
        timed(argv, env)
    for _ in range(RUNS):  # interleaved, so drift hits every variant alike
        for name, (argv, env) in variants.items():
            times[name].append(timed(argv, env))
    rss = {name: [peak_rss(argv, env) for _ in range(3)] for name, (argv, env) in variants.items()}
    tini = statistics.median(times["tini -- true"])
    cli = {scheme: statistics.median(times[f"AWS CLI entrypoint ({scheme})"]) for scheme in ("HTTP", "HTTPS")}
    for name in variants:
        med, p90 = statistics.median(times[name]), pct(times[name], 90)
        scheme = "HTTPS" if "HTTPS" in name else "HTTP"
        row(f"latency {name}", f"median {med:.1f} ms, p90 {p90:.1f} ms",
            f"{med / tini:.1f}x tini -- true, {med / cli[scheme]:.3f}x AWS CLI ({scheme})")
    for name in variants:
        row(f"peak RSS {name}", f"{max(rss[name]) / 1024:.1f} MiB")
    proxy.kill()
    mock.kill()


def status_field(pid, field):
    text = open(f"/proc/{pid}/status").read()
    return int(re.search(rf"^{field}:\s+(\d+)", text, re.M).group(1))


def supervised(argv, env):
    proc = subprocess.Popen(argv + [sys.executable, os.path.join(BENCH, "signal_child.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout.read(1) == b"r", "child did not start"
    return proc


def idle_and_signals():
    print(f"supervising an idle child ({IDLE_SECONDS} s) and forwarding {SIGNALS} signals", flush=True)
    mock, url, key, _ = start_mock()
    env = environment(url, key)
    for name, argv in (("tini", [TINI, "--"]), ("entitle run", [ENTITLE, "run", "--"])):
        proc = supervised(argv, env)
        time.sleep(1)
        switches = status_field(proc.pid, "voluntary_ctxt_switches")
        time.sleep(IDLE_SECONDS)
        woke = status_field(proc.pid, "voluntary_ctxt_switches") - switches
        row(f"steady RSS, {name}", f"{status_field(proc.pid, 'VmRSS')} KiB",
            f"(VmHWM {status_field(proc.pid, 'VmHWM')} KiB)")
        row(f"idle wakeups over {IDLE_SECONDS} s, {name}", f"{woke} voluntary context switches")
        latencies = []
        fd = proc.stdout.fileno()
        for _ in range(SIGNALS):
            started = time.perf_counter()
            os.kill(proc.pid, signal.SIGUSR1)
            select.select([fd], [], [], 5)
            os.read(fd, 1)
            latencies.append((time.perf_counter() - started) * 1e6)
        row(f"signal forwarding {name}", f"p50 {pct(latencies, 50):.0f} us, p99 {pct(latencies, 99):.0f} us",
            "(kill -> child's handler wrote a byte)")
        proc.kill()
        proc.wait()
    mock.kill()


def count_registrations(log):
    return sum(1 for line in open(log) if '"register"' in line)


def herd(n):
    mock, url, key, log = start_mock("--rate", "5")
    env = environment(url, key)
    started = time.perf_counter()
    procs = [subprocess.Popen([ENTITLE, "check"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    failures = sum(1 for p in procs if p.wait() != 0)
    wall = time.perf_counter() - started
    requests = count_registrations(log)
    mock.kill()
    floor = n / 5
    row(f"herd N={n}, entitle", f"wall {wall:.1f} s = {wall / floor:.2f}x the {floor:.0f} s floor",
        f"requests/agent {requests / n:.2f}, failures {failures}")
    herd_sdk_baseline(n)


def herd_sdk_baseline(n):
    """What a naive integration gets: the AWS SDK's own standard retry (3 attempts) and nothing else."""
    mock, url, key, log = start_mock("--rate", "5")
    code = f"""
import boto3, botocore.config, threading, sys
cfg = botocore.config.Config(retries={{"mode": "standard", "max_attempts": 3}}, region_name="us-east-1")
fails = []
def one():
    c = boto3.session.Session().client("meteringmarketplace", endpoint_url="{url}", config=cfg)
    try:
        c.register_usage(ProductCode="{PRODUCT}", PublicKeyVersion=1, Nonce="n")
    except Exception as e:
        fails.append(type(e).__name__)
threads = [threading.Thread(target=one) for _ in range({n})]
[t.start() for t in threads]; [t.join() for t in threads]
print(len(fails))
"""
    env = environment(url, key)
    started = time.perf_counter()
    out = subprocess.run([f"{VENV}/bin/python", "-c", code], env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    failures = int(out.stdout.strip().splitlines()[-1])
    requests = count_registrations(log)
    mock.kill()
    row(f"herd N={n}, AWS SDK retry only (boto3 standard, 3 attempts)", f"wall {wall:.1f} s",
        f"requests/agent {requests / n:.2f}, failures {failures} ({100 * failures / n:.0f}%)")


def sizes():
    print("sizes", flush=True)
    row("size entitle (static, shipped)", f"{os.path.getsize(ENTITLE) / 1048576:.2f} MiB")
    row("size tini-static", f"{os.path.getsize(TINI) / 1048576:.2f} MiB")
    du = subprocess.run(["du", "-sk", VENV], capture_output=True, text=True).stdout.split()[0]
    row("size AWS CLI + boto3 + cryptography (venv, Python not counted)", f"{int(du) / 1024:.0f} MiB")


def versions():
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip() or \
                subprocess.run(argv, capture_output=True, text=True).stderr.strip()
        except OSError:
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
    }


def write_report(info):
    lines = ["# Benchmarks", "",
             "Produced by `scripts/bench.sh` (see the README). All endpoints are `entitle-mock` on 127.0.0.1;",
             "HTTPS goes through a local TLS proxy with a test CA. Wall-clock figures come from a shared",
             "2-core machine: compare the ratios, measured interleaved in the same run.", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()] + ["", "| measure | value | note |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {n} |" for m, v, n in ROWS]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "w") as f:
        f.write(text)


def main():
    info = versions()
    sizes()
    latency()
    idle_and_signals()
    print("herd: N `entitle check` at once against a 5 requests/s token bucket (the AWS quota)", flush=True)
    for n in HERDS:
        herd(n)
    write_report(info)


if __name__ == "__main__":
    main()
