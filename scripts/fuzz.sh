#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, one after the other (one job each),
# starting from the committed seeds (fuzz/seeds/TARGET) plus whatever earlier runs found
# (fuzz/corpus/TARGET, not committed), and prints executions and crashes per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 s for each of all targets
#
# Exits 1 if any target crashed (the input is in fuzz/artifacts/TARGET/, the log in
# fuzz/target/fuzz-logs/TARGET.log). Works on a fresh machine with rustup: installs the nightly
# toolchain, cargo-fuzz and (as root, with apt) g++ when they are missing. The first build of the
# targets takes several minutes; later runs reuse fuzz/target. Environment: FUZZ_TOOLCHAIN (default nightly),
# FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
case $seconds in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 64 ;;
esac
toolchain=${FUZZ_TOOLCHAIN:-nightly}

# libfuzzer-sys compiles libFuzzer (C++).
if ! command -v c++ >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "fuzz.sh: installing g++" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++
  else
    echo "fuzz.sh: a C++ compiler (c++) is needed to build libFuzzer; install g++" >&2
    exit 69
  fi
fi

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing the $toolchain toolchain" >&2
  rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

mapfile -t all_targets < <(cargo "+$toolchain" fuzz list --fuzz-dir fuzz)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# One build for all targets; the runs below reuse it.
cargo "+$toolchain" fuzz build --fuzz-dir fuzz

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
count_artifacts() { # the folder does not exist before a target's first run (fresh clone)
  { find "fuzz/artifacts/$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) 2>/dev/null || true; } | wc -l
}

# Dictionaries of the formats' words (fuzz/dicts/), by target.
dict_for() {
  case $1 in
    verify_*) echo fuzz/dicts/jws.dict ;;
    key_pem) echo fuzz/dicts/pem.dict ;;
    seal_decode) echo fuzz/dicts/seal.dict ;;
    *) echo "fuzz/dicts/$1.dict" ;;
  esac
}

failed=0
results=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
  before=$(count_artifacts "$target")
  echo "fuzz.sh: $target for ${seconds}s" >&2
  dict=$(dict_for "$target")
  dict_arg=()
  [ -f "$dict" ] && dict_arg=(-dict="$dict")
  status=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  cargo "+$toolchain" fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict_arg[@]}" ${FUZZ_ARGS:-} \
    >"$logs/$target.log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log" | tail -1)
  if [ -z "$execs" ]; then # stopped before the final stats: take the last status line
    execs=$(grep -oE '^#[0-9]+' "$logs/$target.log" | tail -1 | tr -d '#')
  fi
  crashes=$(($(count_artifacts "$target") - before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes="?" # failed without an artifact: see the log
  fi
  if [ "$status" -ne 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    grep -m3 -E 'panicked|ERROR: |SUMMARY' "$logs/$target.log" >&2 || true
  fi
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  results+=("$(printf '%-20s %8s %12s %8s %8s' "$target" "${seconds}s" "${execs:-0}" "$crashes" "$corpus")")
done

printf '%-20s %8s %12s %8s %8s\n' target time executions crashes corpus
printf '%s\n' "${results[@]}"
exit "$failed"
