#!/usr/bin/env bash
# Checks that the release binary is fully static and works in an empty root (what a FROM scratch
# image gives it):
#   - `file` says statically linked and stripped, `ldd` finds no dynamic dependencies;
#   - `chroot` into a folder holding only the binary: `entitle check` against entitle-mock on
#     127.0.0.1 exits 0 (and writes a record that `entitle verify --record` accepts), a
#     not-entitled mock gives 77, a host name resolves through /etc/hosts, and `entitle run` as
#     PID 1 of a new PID namespace starts the workload with the token only when entitled.
# Needs root (chroot, unshare). Usage: scripts/static-check.sh  (ENTITLE_BIN / ENTITLE_MOCK_BIN to
# use prebuilt binaries).
# shellcheck disable=SC2016 # single-quoted code runs in bash -c, with its own $0
set -euo pipefail
# shellcheck source=../tests/deploy/lib.sh
source "$(dirname "$0")/../tests/deploy/lib.sh"

BIN=$(entitle_static_bin)
MOCK=$(entitle_mock_bin)
note "binary: $BIN"

# --- file / ldd -----------------------------------------------------------------------------
assert_static_elf "$BIN" x86-64
ldd_out=$(ldd "$BIN" 2>&1 || true)
note "ldd: $ldd_out"
assert "ldd: no shared libraries" grep -Eq 'statically linked|not a dynamic executable' <<<"$ldd_out"

# --- empty root -------------------------------------------------------------------------------
root=$WORK/root
mkdir "$root"
cp "$BIN" "$root/entitle"
chmod 0755 "$root/entitle"
assert "the root holds only the binary" [ "$(find "$root" -mindepth 1 | wc -l)" = 1 ]

start_mock ok
start_mock refuse --answer not-entitled
MOCK_URL_ok=${MOCK_URL_ok:?} MOCK_URL_refuse=${MOCK_URL_refuse:?} # set by start_mock
KEY=$(cat "$WORK/ok.pem")
CHROOT=$(command -v chroot)
UNSHARE=$(command -v unshare)

# A clean environment, as in a container: nothing inherited from this machine.
in_root() {
  local url=$1
  shift
  timeout 60 env -i \
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDEXAMPLESTATIC AWS_SECRET_ACCESS_KEY=static-secret \
    AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL_MARKETPLACE_METERING="$url" \
    ENTITLE_PRODUCT_CODE=prod-static ENTITLE_PUBLIC_KEY="$KEY" ENTITLE_TIMEOUT=20s \
    "$@"
}

check "chroot: entitle --version" 0 timeout 10 env -i "$CHROOT" "$root" /entitle --version
check "chroot: entitle check, entitled" 0 in_root "$MOCK_URL_ok" "$CHROOT" "$root" /entitle check --output /record.json
assert "chroot: record written" grep -q '"productCode": *"prod-static"' "$root/record.json"
check "chroot: entitle verify --record" 0 in_root "$MOCK_URL_ok" "$CHROOT" "$root" /entitle verify --record /record.json
rm -f "$root/record.json"
check "chroot: entitle check, not entitled" 77 in_root "$MOCK_URL_refuse" "$CHROOT" "$root" /entitle check --output /record.json
assert "chroot: no record when not entitled" [ ! -e "$root/record.json" ]

# A host name needs /etc/hosts (musl reads it; no resolver library is needed).
mkdir "$root/etc"
echo "127.0.0.1 metering.test" >"$root/etc/hosts"
check "chroot: endpoint by host name via /etc/hosts" 0 in_root "${MOCK_URL_ok/127.0.0.1/metering.test}" "$CHROOT" "$root" /entitle check
rm -r "${root:?}/etc"

# entitle run as PID 1 of a new PID namespace; the workload is entitle itself, verifying the
# ENTITLE_TOKEN / ENTITLE_NONCE it was handed (so the root still holds only the binary).
check "chroot+pidns: entitle run -- entitle verify (token handed over)" 0 \
  in_root "$MOCK_URL_ok" "$UNSHARE" --pid --fork "$CHROOT" "$root" /entitle run -- /entitle verify
check "chroot+pidns: entitle run returns the workload's exit code" 76 \
  in_root "$MOCK_URL_ok" "$UNSHARE" --pid --fork "$CHROOT" "$root" /entitle run -- /entitle verify --nonce not-the-nonce
check "chroot+pidns: entitle run, not entitled: 77, workload not started" 77 \
  in_root "$MOCK_URL_refuse" "$UNSHARE" --pid --fork "$CHROOT" "$root" /entitle run -- /entitle --version
assert "chroot+pidns: the workload printed nothing" [ ! -s "$WORK/last.out" ]

summary
