#!/usr/bin/env bash
# Benchmarks entitle against tini and an AWS-CLI entrypoint (see scripts/bench.py for what is
# measured). Installs what it needs (tini from Debian; awscli, boto3 and cryptography from PyPI
# into target/bench-venv), builds the static release binary and the mock, then runs.
# Environment: BENCH_RUNS (30), BENCH_SIGNALS (1000), BENCH_IDLE_SECONDS (10), BENCH_HERDS (40,100,200).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/tini-static ] || ! command -v openssl >/dev/null || ! command -v musl-gcc >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tini openssl musl-tools
fi
venv=$PWD/target/bench-venv
if [ ! -x "$venv/bin/aws" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q awscli boto3 cryptography
fi
target=x86_64-unknown-linux-musl
rustup target add "$target" >/dev/null 2>&1 || true
shipped=$(scripts/build-static.sh "$target")
cargo build --quiet --release --locked -p entitle-mock
cc=$(command -v musl-gcc || echo cc)
"$cc" -O2 -static -o target/bench-peakrss scripts/bench/peakrss.c

ENTITLE_BIN=${ENTITLE_BIN:-$shipped} \
MOCK_BIN=$PWD/target/release/entitle-mock \
PEAKRSS_BIN=$PWD/target/bench-peakrss \
BENCH_VENV=$venv \
  "$venv/bin/python" scripts/bench.py
