#!/usr/bin/env bash
# aarch64 (AWS Graviton) as a tested target, on an x86_64 machine: the static aarch64 binary
# (scripts/build-static.sh aarch64-unknown-linux-musl, cross-built with Debian's
# gcc-aarch64-linux-gnu) runs under qemu-user (qemu-aarch64-static, no binfmt needed) against the
# natively built x86_64 entitle-mock on 127.0.0.1:
#   - `file`: ARM aarch64, statically linked, no interpreter, stripped; readelf: no NEEDED;
#   - `check`: 0 against `--answer ok` (the record verifies), 77 against `--answer not-entitled`;
#   - `run -- /bin/sh -c ...`: the workload (a native x86_64 sh: qemu emulates only entitle, the
#     workload's execve goes to the host kernel) gets ENTITLE_TOKEN and its exit code comes back;
#     SIGTERM sent to the (qemu) entitle process reaches the workload, whose trap exits 42, and
#     entitle returns 42; not entitled: 77 and the workload never starts;
#   - `seal` a copy for the mock's key; `inspect` shows the fingerprint that
#     `openssl pkey -pubin -outform DER | sha256sum` gives; the sealed copy's `check` exits 0 with
#     no key options and refuses ENTITLE_PUBLIC_KEY_FILE with 78.
# Prints ok/FAIL per check and "N passed, N failed" (tests/deploy/lib.sh); exits 1 on any
# failure; the mocks are always killed.
#
# Usage: tests/arm64/run.sh   Environment: ENTITLE_ARM64_BIN (a prebuilt aarch64 binary; default:
# build it), ENTITLE_MOCK_BIN (a prebuilt x86_64 mock), QEMU_AARCH64 (default qemu-aarch64-static;
# on an aarch64 machine the binary runs natively).
# shellcheck disable=SC2016 # single-quoted code runs in sh -c / bash -c, with its own $0
set -euo pipefail
# shellcheck source=../deploy/lib.sh
source "$(dirname "$0")/../deploy/lib.sh"

TARGET=aarch64-unknown-linux-musl
if [ "$(uname -m)" = aarch64 ]; then
  QEMU=()
else
  qemu=${QEMU_AARCH64:-$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)}
  [ -n "$qemu" ] || { echo "missing qemu-aarch64-static (Debian: qemu-user-static; see .ci/run)"; exit 1; }
  QEMU=("$qemu")
fi
if [ -n "${ENTITLE_ARM64_BIN:-}" ]; then
  BIN=$ENTITLE_ARM64_BIN
else
  BIN=$(timeout 1800 "$REPO/scripts/build-static.sh" "$TARGET")
fi
# shellcheck disable=SC2034 # start_mock (lib.sh) uses it
MOCK=$(entitle_mock_bin)
note "binary: $BIN ($(stat -c %s "$BIN") bytes)"
[ ${#QEMU[@]} -eq 0 ] || note "emulator: $("${QEMU[0]}" --version | head -n1)"

# --- file / readelf ---------------------------------------------------------------------------
assert_static_elf "$BIN" "ARM aarch64"

start_mock ok
start_mock refuse --answer not-entitled
MOCK_URL_ok=${MOCK_URL_ok:?} MOCK_URL_refuse=${MOCK_URL_refuse:?} # set by start_mock

# A clean environment, as in a container: nothing inherited from this machine.
CLEAN_ENV=(env -i PATH=/usr/bin:/bin AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDEXAMPLEARM64
           AWS_SECRET_ACCESS_KEY=arm64-secret AWS_EC2_METADATA_DISABLED=true ENTITLE_TIMEOUT=20s)
# arm URL [ENV=VALUE...] -- BINARY ARGS...: an aarch64 binary (under qemu) against the mock at URL.
arm() {
  local envs=(AWS_ENDPOINT_URL_MARKETPLACE_METERING="$1")
  shift
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  timeout 60 "${CLEAN_ENV[@]}" "${envs[@]}" "${QEMU[@]}" "$@"
}
KEYED=(ENTITLE_PRODUCT_CODE=prod-arm64 ENTITLE_PUBLIC_KEY_FILE="$WORK/ok.pem")

check "entitle --version" 0 arm "$MOCK_URL_ok" -- "$BIN" --version
check "check, entitled" 0 arm "$MOCK_URL_ok" "${KEYED[@]}" -- "$BIN" check --output "$WORK/record.json"
assert "check: record written" grep -q '"productCode": *"prod-arm64"' "$WORK/record.json"
check "verify --record" 0 arm "$MOCK_URL_ok" "${KEYED[@]}" -- "$BIN" verify --record "$WORK/record.json"
rm -f "$WORK/record.json"
check "check, not entitled" 77 arm "$MOCK_URL_refuse" "${KEYED[@]}" -- "$BIN" check --output "$WORK/record.json"
assert "check, not entitled: no record" [ ! -e "$WORK/record.json" ]

# --- run: token handed over, exit code returned, SIGTERM forwarded ------------------------------
check "run -- sh: workload got ENTITLE_TOKEN, its exit code 5 returned" 5 \
  arm "$MOCK_URL_ok" "${KEYED[@]}" -- "$BIN" run -- /bin/sh -c 'test -n "$ENTITLE_TOKEN" && exit 5'
check "run, not entitled: 77" 77 \
  arm "$MOCK_URL_refuse" "${KEYED[@]}" -- "$BIN" run -- /bin/sh -c 'echo workload started'
assert "run, not entitled: the workload never started" bash -c '! grep -q "workload started" "$0"' "$WORK/last.out"

ready=$WORK/workload-ready
# The trap also ends the sleep, so nothing is left behind.
workload='trap '\''kill $s; exit 42'\'' TERM; sleep 30 & s=$!; echo ready >"$0"; wait'
# Not through arm(): $! must be the entitle process itself (env execs qemu, which runs entitle).
"${CLEAN_ENV[@]}" AWS_ENDPOINT_URL_MARKETPLACE_METERING="$MOCK_URL_ok" "${KEYED[@]}" \
  "${QEMU[@]}" "$BIN" run -- /bin/sh -c "$workload" "$ready" >"$WORK/run.out" 2>"$WORK/run.err" &
pid=$!
on_exit "kill -KILL $pid"
for _ in $(seq 300); do [ -s "$ready" ] && break; sleep 0.1; done
if assert "run: workload started" [ -s "$ready" ]; then
  note "SIGTERM to entitle: pid $pid, $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-100)"
  kill -TERM "$pid"
fi
rc=0
wait "$pid" || rc=$?
assert "run: SIGTERM to entitle reached the workload, its exit code 42 returned (got $rc)" [ "$rc" = 42 ]
[ "$rc" = 42 ] || sed 's/^/#    stderr: /' "$WORK/run.err" | tail -n 20

# --- seal / inspect -----------------------------------------------------------------------------
sealed=$WORK/sealed/entitle
mkdir "$WORK/sealed"
check "seal a copy for the mock's key" 0 \
  arm "$MOCK_URL_ok" -- "$BIN" seal --product-code prod-arm64 --public-key-file "$WORK/ok.pem" --output "$sealed"
assert "sealed copy: still ARM aarch64" bash -c 'file -b "$0" | grep -q "ARM aarch64"' "$sealed"
want=$(openssl pkey -pubin -in "$WORK/ok.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "inspect the sealed copy" 0 arm "$MOCK_URL_ok" -- "$sealed" inspect
note "inspect: $(grep prod-arm64 "$WORK/last.out" || true)"
assert "inspect: fingerprint = openssl pkey -pubin -outform DER | sha256sum ($want)" \
  grep -Eq "prod-arm64 .*sha256:$want\$" "$WORK/last.out"
check "sealed copy: check with no key options" 0 arm "$MOCK_URL_ok" -- "$sealed" check
check "sealed copy: ENTITLE_PUBLIC_KEY_FILE refused" 78 \
  arm "$MOCK_URL_ok" ENTITLE_PUBLIC_KEY_FILE="$WORK/ok.pem" -- "$sealed" check

summary
