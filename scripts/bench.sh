#!/usr/bin/env bash
# Benchmarks entitle against tini and an AWS-CLI entrypoint (see scripts/bench.py for what is
# measured and how). Installs what it needs (tini from Debian; awscli, boto3 and cryptography from
# PyPI into target/bench-venv), builds the static release binary and the mock, then runs.
#
#   scripts/bench.sh [--output FILE]
#
# The Markdown report goes to stdout (progress to stderr) and to FILE, by default
# target/bench/benchmarks.md; docs/benchmarks.md is only written when given as --output.
#
# Environment (defaults take about 20 minutes on 2 cores, most of it the herds, which cannot beat
# N/5 s each): BENCH_RUNS (30 interleaved runs per latency variant), BENCH_SIGNALS (1000),
# BENCH_IDLE_SECONDS (10), BENCH_HERDS (40,100,200), BENCH_HERD_RUNS (5 per size),
# BENCH_HERD_BASELINE (1; 0 skips the boto3 herd). A quick look, about 2 minutes:
#   BENCH_RUNS=5 BENCH_SIGNALS=200 BENCH_IDLE_SECONDS=2 BENCH_HERDS=20 scripts/bench.sh
# ENTITLE_BIN runs another entitle binary instead of the freshly built one.
set -euo pipefail
usage() { sed -n '2,17p' "$0"; }
output=
while [ $# -gt 0 ]; do
  case "$1" in
    --output) [ $# -ge 2 ] || { usage >&2; exit 64; }; output=$2; shift ;;
    --output=*) output=${1#--output=} ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; usage >&2; exit 64 ;;
  esac
  shift
done
# Resolve FILE against the caller's folder before moving to the repository root.
if [ -n "$output" ]; then
  output=$(realpath -m "$output")
fi
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/tini-static ] || ! command -v openssl >/dev/null || ! command -v musl-gcc >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tini openssl musl-tools
fi
venv=$PWD/target/bench-venv
if [ ! -x "$venv/bin/aws" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python3" -m pip install -q awscli boto3 cryptography
fi
target=x86_64-unknown-linux-musl
rustup target add "$target"
echo "bench.sh: building the static entitle and the release entitle-mock" >&2
shipped=$(scripts/build-static.sh "$target")
cargo build --quiet --release --locked -p entitle-mock
cc=$(command -v musl-gcc || echo cc)
"$cc" -O2 -static -o target/bench-peakrss scripts/bench/peakrss.c

export ENTITLE_BIN=${ENTITLE_BIN:-$shipped}
export MOCK_BIN=$PWD/target/release/entitle-mock
export PEAKRSS_BIN=$PWD/target/bench-peakrss
export BENCH_VENV=$venv
# exec: Ctrl-C and SIGTERM reach bench.py directly, which stops every process it started.
exec "$venv/bin/python3" scripts/bench.py ${output:+--output "$output"}
