#!/usr/bin/env bash
# README.md's container snippets, run with podman + runc (tests/readme.rs checks that every block
# marked `<!-- snippet: podman NAME -->` is handled here; it runs all the other blocks itself):
#   - `podman image`: `docker build -t entitle:0.1.0 .` is ./Dockerfile; its runtime stage is built
#     the way tests/deploy/podman.sh builds it (the last stage, with the COPY taken from the
#     prebuilt static binary: no registry here) and tagged entitle:0.1.0. Then the README's
#     `docker run ...` command, with `docker` replaced by podman and `--network host` plus the
#     mock's environment added, runs in a folder holding product-key.pem (the snippet mounts
#     "$PWD/product-key.pem"): 0 against entitle-mock, 77 against `--answer not-entitled`.
#   - `podman seal`: the README's sealing Dockerfile, built as written but for `your-app-image`
#     (a small local FROM scratch image; --pull=never) with the mock's key in the build context;
#     in the result `/entitle inspect` shows the product and the key's fingerprint as
#     `openssl pkey -pubin -outform DER | sha256sum` prints it, the sealed binary's `check` against
#     the mock exits 0 with no product or key option, and a runtime key option is refused (78).
# Needs root, podman, runc, openssl, python3. Usage: tests/deploy/readme_snippets.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

for tool in podman openssl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see .ci/run)"; exit 1; }
done
RUNC=$(command -v runc) || { echo "missing runc"; exit 1; }

BIN=$(entitle_static_bin)
MOCK=$(entitle_mock_bin)

# snippet NAME: the block of README.md marked `<!-- snippet: podman NAME -->` (the marker is the
# nearest non-empty line above the fence), without the fence's indentation.
snippet() {
  awk -v want="<!-- snippet: podman $1 -->" '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); gsub(/[ \t]+/, " ", s); return s }
    inside && /^[ \t]*```/ { exit }
    inside { line = $0; sub("^" indent, "", line); print line; next }
    /^[ \t]*```/ && trim(last) == want { inside = 1; indent = $0; sub(/```.*/, "", indent); next }
    NF { last = $0 }
  ' "$REPO/README.md"
}

P=(podman --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver vfs
   --cgroup-manager cgroupfs --events-backend file --runtime "$RUNC")
on_exit "timeout 60 ${P[*]} rm -af -t 0; timeout 60 ${P[*]} rmi -af"
note "$(podman --version), $("$RUNC" --version | head -n1)"
pod() { timeout "${POD_TIMEOUT:-120}" "${P[@]}" "$@"; }
# What this sandbox needs on every run (as in podman.sh): host network (the mock is on
# 127.0.0.1), ulimits it allows.
HOST_FLAGS=(--network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
# The environment entitle-mock prints (region set separately: the snippet passes -e AWS_REGION).
mock_env() { # mock_env URL: podman -e flags pointing entitle at the mock
  printf '%s\n' -e AWS_ACCESS_KEY_ID=AKIDEXAMPLEREADME -e AWS_SECRET_ACCESS_KEY=readme-secret \
    -e AWS_EC2_METADATA_DISABLED=true -e ENTITLE_TIMEOUT=20s -e "AWS_ENDPOINT_URL_MARKETPLACE_METERING=$1"
}

start_mock ok
start_mock refuse --answer not-entitled
chmod 0644 "$WORK/ok.pem" "$WORK/refuse.pem"

# --- podman image ---------------------------------------------------------------------------------
image=$(snippet image)
if [ -z "$image" ]; then
  bad "README.md has no block marked podman image"
else
  assert "podman image: the snippet builds ./Dockerfile as entitle:0.1.0" \
    [ "$(head -n1 <<<"$image")" = "docker build -t entitle:0.1.0 ." ]
  img=$WORK/img
  runtime_context "$img"
  assert "podman image: the runtime stage copies /entitle (prebuilt)" grep -qx 'COPY entitle /entitle' "$img/Containerfile"
  check "podman image: build the runtime stage as entitle:0.1.0" 0 \
    pod build --pull=never --isolation chroot -f "$img/Containerfile" -t entitle:0.1.0 "$img"

  # The snippet's `docker run ...` (everything from that line on), docker -> podman.
  run_cmd=$(sed -n '/^docker run /,$p' <<<"$image")
  assert "podman image: the snippet has a docker run command" [ -n "$run_cmd" ]
  image_run() { # image_run NAME: the snippet's docker run against mock NAME, in a folder with its key
    local name=$1 dir=$WORK/image-$1 url_var=MOCK_URL_$1 flags env
    mkdir "$dir"
    cp "$WORK/$name.pem" "$dir/product-key.pem"
    mapfile -t env < <(mock_env "${!url_var}")
    flags=("${HOST_FLAGS[@]}" "${env[@]}")
    {
      printf 'cd %q\n' "$dir"
      printf 'podman_=(%s)\n' "$(printf '%q ' "${P[@]}" run "${flags[@]}")"
      # shellcheck disable=SC2001,SC2016 # line-wise sed; ${podman_[@]} expands in the generated script
      sed 's/^docker run /"${podman_[@]}" /' <<<"$run_cmd"
    } >"$WORK/image-$name.sh"
    echo "$WORK/image-$name.sh"
  }
  script=$(image_run ok)
  # shellcheck disable=SC2016 # the generated script's text, not an expansion
  assert "podman image: docker run became podman run" grep -qF '"${podman_[@]}" --rm' "$script"
  check "podman image: the README's docker run, entitled: 0" 0 \
    env AWS_REGION=us-east-1 timeout 120 bash -euo pipefail "$script"
  assert "podman image: entitled is logged" grep -q 'entitled: signature and claims verified' "$WORK/last.err"
  check "podman image: the README's docker run, not entitled: 77" 77 \
    env AWS_REGION=us-east-1 timeout 120 bash -euo pipefail "$(image_run refuse)"
fi

# --- podman seal ----------------------------------------------------------------------------------
seal=$(snippet seal)
if [ -z "$seal" ]; then
  bad "README.md has no block marked podman seal"
elif ! pod image exists entitle:0.1.0; then
  bad "podman seal: no entitle:0.1.0 image (the podman image part failed)"
else
  app=$WORK/app
  mkdir "$app"
  echo "a stand-in for the vendor's application" >"$app/README"
  printf 'FROM scratch\nCOPY README /app/README\nUSER 65532:65532\n' >"$app/Containerfile"
  check "podman seal: a small local app image" 0 \
    pod build --pull=never --isolation chroot -f "$app/Containerfile" -t localhost/readme-app:test "$app"

  ctx=$WORK/seal
  mkdir "$ctx"
  cp "$WORK/ok.pem" "$ctx/product-key.pem"
  # shellcheck disable=SC2001 # line-wise: only a whole `FROM your-app-image` line
  sed 's|^FROM your-app-image$|FROM localhost/readme-app:test|' <<<"$seal" >"$ctx/Containerfile"
  assert "podman seal: the snippet builds on entitle:0.1.0" grep -qx 'FROM entitle:0.1.0 AS seal' "$ctx/Containerfile"
  assert "podman seal: FROM your-app-image replaced by the local app image" \
    grep -qx 'FROM localhost/readme-app:test' "$ctx/Containerfile"
  check "podman seal: build the README's sealing Dockerfile" 0 \
    pod build --pull=never --isolation chroot -f "$ctx/Containerfile" -t localhost/readme-sealed:test "$ctx"

  product=$(grep -o '"--product-code", *"[^"]*"' <<<"$seal" | sed 's/.*"\([^"]*\)"$/\1/')
  fingerprint=$(openssl pkey -pubin -in "$ctx/product-key.pem" -outform DER | sha256sum | cut -d' ' -f1)
  check "podman seal: /entitle inspect in the sealed image" 0 \
    pod run --rm "${HOST_FLAGS[@]}" --entrypoint /entitle localhost/readme-sealed:test inspect
  note "inspect: $(tr '\n' ' ' <"$WORK/last.out")"
  assert "podman seal: inspect says sealed" grep -q 'sealed' "$WORK/last.out"
  assert "podman seal: inspect shows product $product with the key's sha256 ($fingerprint)" \
    grep -Eq "^product $product .*sha256:$fingerprint( |$)" "$WORK/last.out"
  cid=$(pod create localhost/readme-sealed:test)
  files=$(pod export "$cid" | tar -t | sort | tr '\n' ' ')
  pod rm "$cid" >/dev/null
  assert "podman seal: the result is the app image plus /entitle (got: $files)" [ "$files" = "app/ app/README entitle " ]
  assert "podman seal: its entrypoint is [/entitle run --]" \
    [ "$(pod image inspect --format '{{json .Config.Entrypoint}}' localhost/readme-sealed:test)" = '["/entitle","run","--"]' ]
  url_var=MOCK_URL_ok # set by start_mock
  mapfile -t env_ok < <(mock_env "${!url_var}")
  check "podman seal: the sealed binary's check against the mock, no product or key option: 0" 0 \
    pod run --rm --read-only --cap-drop ALL --security-opt no-new-privileges "${HOST_FLAGS[@]}" \
    -e AWS_REGION=us-east-1 "${env_ok[@]}" --entrypoint /entitle localhost/readme-sealed:test check
  check "podman seal: a runtime key option is refused: 78" 78 \
    pod run --rm --read-only --cap-drop ALL --security-opt no-new-privileges "${HOST_FLAGS[@]}" \
    -e AWS_REGION=us-east-1 "${env_ok[@]}" -e "ENTITLE_PUBLIC_KEY=$(cat "$ctx/product-key.pem")" \
    --entrypoint /entitle localhost/readme-sealed:test check
fi

summary
