#!/usr/bin/env bash
# Prints the size of the static release binary and fails when it is over the budget.
#
#   scripts/size.sh                 build (scripts/build-static.sh) and check the shipped binary
#   scripts/size.sh PATH            check that binary instead (relative to the current folder)
#   scripts/size.sh --target T      the binary for musl target T (default x86_64-unknown-linux-musl;
#                                   aarch64-unknown-linux-musl for Graviton, cross-built)
#   scripts/size.sh --bloat         also print what each crate costs (cargo bloat, in a separate
#                                   unstripped build under target/size-bloat; needs `cargo install cargo-bloat`)
#
# ENTITLE_SIZE_BUDGET_MIB (default 3.25) is the budget, the same for every target; CI uses the
# default. Size is deterministic for a given toolchain and Cargo.lock, so this is a hard gate
# (unlike timings).
set -euo pipefail
usage() { sed -n '2,13p' "$0"; }
budget_mib=${ENTITLE_SIZE_BUDGET_MIB:-3.25}
target=x86_64-unknown-linux-musl
bloat=0
bin=
while [ $# -gt 0 ]; do
  case "$1" in
    --bloat) bloat=1 ;;
    --target) [ $# -ge 2 ] || { usage >&2; exit 64; }; target=$2; shift ;;
    --target=*) target=${1#--target=} ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "size.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
    *) bin=$1 ;;
  esac
  shift
done
# Resolve PATH against the caller's folder before moving to the repository root.
if [ -n "$bin" ]; then
  [ -f "$bin" ] || { echo "size.sh: no such file: $bin" >&2; exit 66; }
  bin=$(realpath "$bin")
fi
cd "$(dirname "$0")/.."
if [ -z "$bin" ]; then
  bin=$(timeout 1200 scripts/build-static.sh "$target")
fi

bytes=$(stat -c %s "$bin")
budget=$(awk -v m="$budget_mib" 'BEGIN { printf "%d", m * 1048576 }')
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
if command -v file >/dev/null; then
  echo "entitle binary: $bin ($(file -b "$bin" | cut -d, -f1-2))"
else
  echo "entitle binary: $bin"
fi
echo "size: $bytes bytes ($(mib "$bytes") MiB); budget $(mib "$budget") MiB"
if command -v size >/dev/null && size -A "$bin" >/dev/null 2>&1; then
  echo "largest sections:"
  size -A "$bin" | awk '$1 ~ /^\./ && $2 > 16384 { printf "  %-20s %8.1f KiB\n", $1, $2 / 1024 }' | sort -k2 -nr
fi

if [ "$bloat" = 1 ]; then
  echo "per-crate .text (cargo bloat, unstripped build; the stripped file is what counts):"
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/size-bloat CARGO_PROFILE_RELEASE_STRIP=false \
    timeout 1800 cargo bloat --release --locked --target "$target" -p entitle --bin entitle --crates -n 30
fi

if [ "$bytes" -gt "$budget" ]; then
  echo "FAIL: $(mib "$bytes") MiB is over the $(mib "$budget") MiB budget by $((bytes - budget)) bytes" >&2
  exit 1
fi
echo "ok: $((budget - bytes)) bytes under budget"
