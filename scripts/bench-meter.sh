#!/usr/bin/env bash
# Benchmarks the metering relay (see scripts/bench_meter.py for what is measured): durable
# reports per second and acknowledgement latency with 1, 16 and 64 reporters, against the disk's
# fdatasync ceiling; RSS; idle wake-ups. Installs wrk (Debian), builds the shipped static binary
# and the mock, then runs. Prints a Markdown report to stdout and writes it to
# target/bench/meter.md, or to --output FILE.
# Environment: BENCH_SECONDS (10), BENCH_CONCURRENCY (1,16,64), BENCH_IDLE_SECONDS (10), BENCH_DIR.
set -euo pipefail
output=
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output=$(realpath -m "$2"); shift ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "usage: scripts/bench-meter.sh [--output FILE]" >&2; exit 64 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
shipped=$(scripts/build-static.sh)
cargo build --quiet --release --locked -p entitle-mock
mkdir -p target/bench
report=${output:-target/bench/meter.md}
ENTITLE_BIN=$shipped MOCK_BIN=$PWD/target/release/entitle-mock python3 scripts/bench_meter.py | tee "$report"
echo "(written to $report)" >&2
