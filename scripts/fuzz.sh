#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, one after the other (one job each),
# starting from the committed seeds (fuzz/seeds/TARGET) plus whatever earlier runs found
# (fuzz/corpus/TARGET, not committed), and prints executions and crashes per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   default: 60 s for each of all targets
#   scripts/fuzz.sh --replay                run every input in fuzz/artifacts-found/TARGET/ once
#                                           against TARGET (regression cases); fails if one fails
#   scripts/fuzz.sh --setup                 only install what fuzzing needs (below), then exit
#
# Exits 1 if any target crashed (the input is in fuzz/artifacts/TARGET/, the log in
# fuzz/target/fuzz-logs/TARGET.log). Works on a fresh machine with rustup: installs the pinned
# nightly toolchain, the pinned cargo-fuzz and (as root, with apt) g++ when they are missing. The
# first build of the targets takes several minutes; later runs reuse fuzz/target.
# Environment: FUZZ_TOOLCHAIN (default nightly-2026-05-20, i.e. rustc 1.97.0-nightly e50aa6fba
# 2026-05-19), CARGO_FUZZ_VERSION (default 0.13.2), FUZZ_ARGS (extra libFuzzer flags, e.g.
# "-jobs=2").
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...] | --replay | --setup" >&2; exit 64; }
mode=run
seconds=60
case ${1:-} in
  --replay | --setup) mode=${1#--}; shift; [ $# -eq 0 ] || usage ;;
  -*) usage ;;
  '') ;;
  *[!0-9]*) usage ;;
  *) seconds=$1; shift ;;
esac
toolchain=${FUZZ_TOOLCHAIN:-nightly-2026-05-20}
cargo_fuzz_version=${CARGO_FUZZ_VERSION:-0.13.2}

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
installed=$(cargo fuzz --version 2>/dev/null) || installed=none
if [ "$installed" != "cargo-fuzz $cargo_fuzz_version" ]; then
  echo "fuzz.sh: installing cargo-fuzz $cargo_fuzz_version (found: $installed)" >&2
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi
echo "fuzz.sh: $(rustup run "$toolchain" rustc --version), $(cargo fuzz --version)" >&2
[ "$mode" != setup ] || exit 0

mapfile -t all_targets < <(cargo "+$toolchain" fuzz list --fuzz-dir fuzz)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

if [ "$mode" = replay ]; then
  failed=0
  for dir in fuzz/artifacts-found/*/; do
    target=$(basename "$dir")
    mapfile -t inputs < <(find "$dir" -maxdepth 1 -type f ! -name '*.md' | sort)
    [ ${#inputs[@]} -gt 0 ] || continue
    if ! printf '%s\n' "${all_targets[@]}" | grep -qx "$target"; then
      echo "fuzz.sh: fuzz/artifacts-found/$target/ names no fuzz target" >&2
      failed=1
      continue
    fi
    echo "fuzz.sh: replaying ${#inputs[@]} inputs against $target" >&2
    if cargo "+$toolchain" fuzz run --fuzz-dir fuzz "$target" "${inputs[@]}"; then
      echo "fuzz.sh: $target: ${#inputs[@]} inputs pass" >&2
    else
      echo "fuzz.sh: $target: a found input fails again" >&2
      failed=1
    fi
  done
  exit "$failed"
fi

# One build for all targets; the runs below reuse it.
build_start=$SECONDS
cargo "+$toolchain" fuzz build --fuzz-dir fuzz
echo "fuzz.sh: built the targets in $((SECONDS - build_start))s" >&2

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
count_artifacts() { # the folder does not exist before a target's first run (fresh clone)
  if [ -d "fuzz/artifacts/$1" ]; then
    find "fuzz/artifacts/$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l
  else
    echo 0
  fi
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
    execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$logs/$target.log" | tail -n1)
  fi
  crashes=$(($(count_artifacts "$target") - before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes="?" # failed without an artifact: see the log
  fi
  if [ "$status" -ne 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    awk '/panicked|ERROR: |SUMMARY/ && n++ < 3' "$logs/$target.log" >&2
  fi
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  results+=("$(printf '%-20s %8s %12s %8s %8s' "$target" "${seconds}s" "${execs:-0}" "$crashes" "$corpus")")
done

printf '%-20s %8s %12s %8s %8s\n' target time executions crashes corpus
printf '%s\n' "${results[@]}"
exit "$failed"
