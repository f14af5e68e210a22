# Shared helpers for the deploy tests (sourced, not run). Every test script:
#   - counts checks with ok/bad and ends with `summary` ("N passed, N failed"), exit 1 on failure;
#   - bounds every external command with `timeout`;
#   - uses loopback only (entitle-mock listens on 127.0.0.1).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUSL_TARGET=x86_64-unknown-linux-musl
PASSED=0
FAILED=0
SKIPPED=0
CLEANUPS=()

ok()  { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
note() { echo "#    $*"; }

# check "description" EXPECTED_RC cmd...   (runs cmd, compares its exit code)
check() {
  local what=$1 want=$2 rc=0
  shift 2
  "$@" >"$WORK/last.out" 2>"$WORK/last.err" || rc=$?
  if [ "$rc" = "$want" ]; then
    ok "$what (exit $rc)"
  else
    bad "$what: exit $rc, want $want"
    sed 's/^/#    stdout: /' "$WORK/last.out" | tail -n 20
    sed 's/^/#    stderr: /' "$WORK/last.err" | tail -n 20
  fi
}

# assert "description" test-expression...
assert() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

on_exit() { CLEANUPS+=("$*"); }
run_cleanups() {
  local i
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
}

summary() {
  if [ "$SKIPPED" -gt 0 ]; then
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
  else
    echo "$PASSED passed, $FAILED failed"
  fi
  [ "$FAILED" -eq 0 ]
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/entitle-deploy.XXXXXX")
trap 'run_cleanups; rm -rf "$WORK"' EXIT
on_exit true

# The static release binary (built if missing or stale; cargo is a no-op when fresh).
entitle_static_bin() {
  if [ -n "${ENTITLE_BIN:-}" ]; then echo "$ENTITLE_BIN"; return; fi
  timeout 1200 "$REPO/scripts/build-static.sh" "$MUSL_TARGET"
}

# assert_static_elf BIN ARCH: `file` says BIN is a stripped, statically linked ELF for ARCH
# (as `file` names it: x86-64, ARM aarch64) with no interpreter, and it has no NEEDED entries.
# shellcheck disable=SC2016 # single-quoted code runs in bash -c, with its own $0
assert_static_elf() {
  local bin=$1 arch=$2 desc
  desc=$(file -b "$bin")
  note "file: $desc"
  assert "file: $arch ELF" grep -q "ELF 64-bit LSB .*$arch" <<<"$desc"
  assert "file: statically linked" grep -Eq 'static-pie linked|statically linked' <<<"$desc"
  assert "file: no interpreter" bash -c '! grep -q "interpreter" <<<"$0"' "$desc"
  assert "file: stripped" grep -q ', stripped' <<<"$desc"
  assert "readelf: no NEEDED entries" bash -c '! readelf -d "$0" 2>/dev/null | grep -q NEEDED' "$bin"
}

# runtime_context DIR: a podman build context in DIR (created) holding $BIN as `entitle` and, as
# Containerfile, the last stage of ./Dockerfile with `COPY --from=build /entitle /entitle` ->
# `COPY entitle /entitle`: the image ./Dockerfile builds, from the prebuilt binary.
runtime_context() {
  local dir=$1 last_from
  mkdir "$dir"
  cp "$BIN" "$dir/entitle"
  last_from=$(grep -n '^FROM ' "$REPO/Dockerfile" | tail -n1 | cut -d: -f1)
  tail -n "+$last_from" "$REPO/Dockerfile" | sed 's|^COPY --from=build /entitle /entitle$|COPY entitle /entitle|' >"$dir/Containerfile"
}

entitle_mock_bin() {
  if [ -n "${ENTITLE_MOCK_BIN:-}" ]; then echo "$ENTITLE_MOCK_BIN"; return; fi
  (cd "$REPO" && timeout 1200 cargo build --quiet --locked -p entitle-mock) >&2
  echo "${CARGO_TARGET_DIR:-$REPO/target}/debug/entitle-mock"
}

# start_mock NAME [entitle-mock options...]: starts a mock on 127.0.0.1, sets MOCK_URL_<NAME> and
# writes its public key to $WORK/NAME.pem. Killed on exit.
start_mock() {
  local name=$1 pid url i
  shift
  "$MOCK" --write-public-key "$WORK/$name.pem" "$@" >"$WORK/$name.url" 2>"$WORK/$name.log" &
  pid=$!
  on_exit "kill $pid; wait $pid"
  for i in $(seq 200); do
    [ -s "$WORK/$name.url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  url=$(head -n1 "$WORK/$name.url" 2>/dev/null || true)
  case "$url" in
    http://127.0.0.1:*) ;;
    *) echo "entitle-mock $name did not start:"; cat "$WORK/$name.log"; exit 1 ;;
  esac
  printf -v "MOCK_URL_$name" '%s' "$url"
}
