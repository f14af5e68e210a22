#!/usr/bin/env bash
# Prints the size of the static release binary and fails when it is over the budget.
#
#   scripts/size.sh                 build (scripts/build-static.sh) and check the shipped binary
#   scripts/size.sh PATH            check that binary instead
#   scripts/size.sh --bloat         also print what each crate costs (cargo bloat, in a separate
#                                   unstripped build under target/size-bloat; needs `cargo install cargo-bloat`)
#
# ENTITLE_SIZE_BUDGET_MIB (default 4.0) is the budget; CI uses the default. Size is deterministic
# for a given toolchain and Cargo.lock, so this is a hard gate (unlike timings).
set -euo pipefail
cd "$(dirname "$0")/.."
budget_mib=${ENTITLE_SIZE_BUDGET_MIB:-4.0}
target=x86_64-unknown-linux-musl
bloat=0
bin=
for arg in "$@"; do
  case "$arg" in
    --bloat) bloat=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) bin=$arg ;;
  esac
done
if [ -z "$bin" ]; then
  bin=$(timeout 1200 scripts/build-static.sh "$target")
fi

bytes=$(stat -c %s "$bin")
budget=$(awk -v m="$budget_mib" 'BEGIN { printf "%d", m * 1048576 }')
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
echo "entitle binary: $bin"
echo "size: $bytes bytes ($(mib "$bytes") MiB); budget $(mib "$budget") MiB"
if command -v size >/dev/null; then
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
