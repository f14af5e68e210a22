#!/usr/bin/env python3
"""Metering relay benchmark (run by scripts/bench-meter.sh, which builds what it needs).

Measures the shipped `entitle meter` relay, not its client or the mock:
- durable reports per second and acknowledgement latency (p50/p99) with 1, 16 and 64 concurrent
  reporters (wrk, keep-alive connections, POST /v1/usage), the relay's CPU per report, and how
  many reports each synced journal batch held (group commit);
- the disk's own fdatasync ceiling in the same folder: the most any fsync-per-report design can
  do there, and what the 1-reporter run is (each report waits for its own fsync);
- the relay's RSS idle and after load, against `entitle run -- sleep` without metering;
- wake-ups while idle (voluntary context switches of every thread over BENCH_IDLE_SECONDS).

Every run checks that the relay's ledger holds every acknowledged report.
Environment: ENTITLE_BIN, MOCK_BIN, BENCH_SECONDS (10), BENCH_CONCURRENCY (1,16,64),
BENCH_IDLE_SECONDS (10), BENCH_DIR (a folder on the disk to measure; default a temp folder under
target/bench).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ENTITLE = os.environ["ENTITLE_BIN"]
MOCK = os.environ["MOCK_BIN"]
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1,16,64").split(",")]
IDLE_SECONDS = int(os.environ.get("BENCH_IDLE_SECONDS", "10"))
PROCESSES = []


def start(args, **kwargs):
    process = subprocess.Popen(args, start_new_session=True, **kwargs)
    PROCESSES.append(process)
    return process


def stop_all(*_):
    for process in PROCESSES:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if _:
        sys.exit(130)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fsync_ceiling(folder, count=2000):
    path = os.path.join(folder, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    started = time.perf_counter()
    for _ in range(count):
        os.write(fd, b"x" * 100)
        os.fdatasync(fd)
    elapsed = time.perf_counter() - started
    os.close(fd)
    os.unlink(path)
    return count / elapsed


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_field(pid, name):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def wakeups(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        for line in open(f"/proc/{pid}/task/{task}/status"):
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def wait_healthy(url, process, log):
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"entitle exited: {open(log).read()}")
        try:
            if urllib.request.urlopen(url + "/v1/health", timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("the relay did not become healthy")


def mock_env(work):
    out = open(os.path.join(work, "mock.url"), "w")
    key = os.path.join(work, "key.pem")
    mock = start([MOCK, "--dimensions", "scans,gb", "--write-public-key", key], stdout=out,
                 stderr=subprocess.DEVNULL)
    for _ in range(200):
        url = open(out.name).read().strip()
        if url:
            break
        time.sleep(0.05)
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL_MARKETPLACE_METERING=url,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="AKIDBENCH",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_EC2_METADATA_DISABLED="true",
        ENTITLE_PRODUCT_CODE="prod-bench",
    )
    return mock, env, key


def relay(env, work, name):
    port = free_port()
    state = os.path.join(work, f"state-{name}")
    log = os.path.join(work, f"relay-{name}.log")
    process = start(
        [ENTITLE, "meter", "--meter", "scans,gb", "--meter-state", state,
         "--meter-listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log)
    return process, url, log


def wrk(url, connections, script):
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{SECONDS}s", "--latency", "-s", script,
         url + "/v1/usage"],
        capture_output=True, text=True, check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def percentile(p):
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "total": total, "rate": rate, "p50": percentile(50), "p99": percentile(99),
        "bad": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else "",
    }


def stop(process, log):
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=60)
    text = open(log).read()
    match = re.search(r"(\d+) reports made durable in (\d+) synced batches", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def main():
    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    root = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="meter-", dir="target/bench")
    os.makedirs(root, exist_ok=True)
    work = tempfile.mkdtemp(dir=root)
    script = os.path.join(work, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                'wrk.body = \'{"dimension":"scans","quantity":1}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    ceiling = fsync_ceiling(work)
    mock, env, key = mock_env(work)

    # Idle: RSS and wake-ups of a relay nobody talks to, and of a plain supervisor.
    idle, url, log = relay(env, work, "idle")
    time.sleep(1)
    rss_idle = status_field(idle.pid, "VmRSS")
    before = wakeups(idle.pid)
    time.sleep(IDLE_SECONDS)
    idle_wakeups = wakeups(idle.pid) - before
    stop(idle, log)
    plain = start([ENTITLE, "run", "--public-key-file", key, "--", "sleep", "3600"],
                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    plain_rss = status_field(plain.pid, "VmRSS") if plain.poll() is None else 0
    os.killpg(plain.pid, signal.SIGKILL)

    rows = []
    for connections in CONCURRENCY:
        process, url, log = relay(env, work, f"c{connections}")
        cpu_before = cpu_seconds(process.pid)
        result = wrk(url, connections, script)
        cpu = cpu_seconds(process.pid) - cpu_before
        booked = sum(
            hour["dimensions"].get("scans", {}).get("quantity", 0)
            for hour in get_json(url + "/v1/usage")["hours"]
        )
        hwm = status_field(process.pid, "VmHWM")
        reports, batches = stop(process, log)
        acked = result["total"] - result["bad"]
        # wrk stops with one request per connection in flight: processed (and durable), but its
        # answer never read, so not counted as acknowledged by wrk.
        if not acked <= booked <= acked + connections:
            sys.exit(f"{connections} reporters: {acked} acknowledged but {booked} in the ledger")
        rows.append((connections, result, cpu, reports, batches, hwm))

    stop_all()
    print("## Metering relay: durable reports\n")
    print(f"Disk: {ceiling:,.0f} fdatasync/s of 100-byte appends in {work} (the ceiling of any "
          "fsync-per-report design on this disk; the 1-reporter run below is one).\n")
    print("| reporters | durable reports/s | × fsync ceiling | p50 ack | p99 ack | reports per fsync | relay CPU per report | relay peak RSS | non-2xx |")
    print("|---|---|---|---|---|---|---|---|---|")
    for connections, result, cpu, reports, batches, hwm in rows:
        per_batch = reports / batches if batches else 0
        cpu_us = cpu / max(result["total"], 1) * 1e6
        print(f"| {connections} | {result['rate']:,.0f} | {result['rate'] / ceiling:.1f}× | "
              f"{result['p50']:.2f} ms | {result['p99']:.2f} ms | {per_batch:.1f} | {cpu_us:.1f} µs | "
              f"{hwm / 1024:.1f} MiB | {result['bad']} |")
    print()
    print(f"Idle relay: RSS {rss_idle / 1024:.1f} MiB (a supervisor without metering: "
          f"{plain_rss / 1024:.1f} MiB); {idle_wakeups} wake-ups of all its threads in {IDLE_SECONDS} s.")
    print("In every run the ledger held every acknowledged report (and at most one more per "
          "connection: the requests in flight when wrk stopped). wrk shares the machine's "
          f"{os.cpu_count()} cores with the relay, so the rates are a floor.")


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_all()
