#!/usr/bin/env bash
# Real container tests with podman + runc (Debian packages), no registry and no network besides
# loopback:
#   - hadolint on Dockerfile and deploy/docker/Dockerfile.vendor;
#   - the .dockerignore'd build context holds a workspace that cargo resolves with --locked;
#   - the runtime stage of ./Dockerfile (its last stage, verbatim, with the COPY taken from the
#     locally built static binary instead of the build stage) builds into a one-layer image
#     holding only /entitle, with the expected user, entrypoint and labels;
#   - that image, run read-only, as 65532, with all capabilities dropped and --network host:
#     `check` against entitle-mock on 127.0.0.1 exits 0 and writes the record; not entitled: 77;
#   - deploy/docker/Dockerfile.vendor (entitle copied into a FROM scratch app image, entrypoint
#     `entitle run --`): the workload starts hardened with the token, `podman stop` reaches it
#     through entitle (SIGTERM) and its exit code 42 comes back; not entitled: 77, never started;
#   - the ECS task definitions and the Helm example's pods (tests/deploy/podrun.py plays the ECS
#     agent / the kubelet), including metering against entitle-mock with 2 s hours: the relay as
#     an ECS sidecar (deploy/docker/Dockerfile.meter, Fargate-like task volume) the app waits for
#     with dependsOn HEALTHY, as a Kubernetes native sidecar gated by its exec startupProbe (both
#     run `/entitle health` inside the relay's container with podman exec, as the ECS agent and
#     the kubelet do), and inside `entitle run`; the app reports usage, the pod is stopped, and
#     the mock's totals must equal what was reported.
# Needs root, podman, runc, musl-gcc (musl-tools), hadolint. Usage: tests/deploy/podman.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

for tool in podman hadolint musl-gcc; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see .ci/run)"; exit 1; }
done
RUNC=$(command -v runc) || { echo "missing runc"; exit 1; }

BIN=$(entitle_static_bin)
MOCK=$(entitle_mock_bin)

# --- lint -------------------------------------------------------------------------------------
check "hadolint Dockerfile" 0 timeout 60 hadolint "$REPO/Dockerfile"
check "hadolint deploy/docker/Dockerfile.vendor" 0 timeout 60 hadolint "$REPO/deploy/docker/Dockerfile.vendor"

# A private podman store: vfs driver, runc, cgroupfs, ulimits this sandbox allows.
P=(podman --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver vfs
   --cgroup-manager cgroupfs --events-backend file --runtime "$RUNC")
on_exit "timeout 60 ${P[*]} rm -af -t 0; timeout 60 ${P[*]} rmi -af"
note "$(podman --version), $("$RUNC" --version | head -n1)"
RUN_FLAGS=(--network host --read-only --cap-drop ALL --security-opt no-new-privileges
           --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
pod() { timeout "${POD_TIMEOUT:-120}" "${P[@]}" "$@"; }

# --- the build context ---------------------------------------------------------------------------
printf 'FROM scratch\nCOPY . /src\n' >"$WORK/Containerfile.context"
check "build context image (.dockerignore applied)" 0 \
  pod build --pull=never --isolation chroot -f "$WORK/Containerfile.context" -t localhost/entitle-context:test "$REPO"
ctx=$WORK/context
mkdir "$ctx"
cid=$(pod create localhost/entitle-context:test /none)
pod export "$cid" | tar -x -C "$ctx" src
pod rm "$cid" >/dev/null
assert "context: no target/ directory" [ ! -e "$ctx/src/target" ]
assert "context: Cargo.lock present" [ -f "$ctx/src/Cargo.lock" ]
check "context: cargo metadata --locked resolves the workspace" 0 \
  timeout 120 cargo metadata --locked --offline --format-version 1 --no-deps --manifest-path "$ctx/src/Cargo.toml"
note "context: $(du -sh "$ctx/src" | cut -f1), $(find "$ctx/src" -type f | wc -l) files"
pod rmi localhost/entitle-context:test >/dev/null

# --- the runtime image from the prebuilt binary ----------------------------------------------------
img=$WORK/img
runtime_context "$img"
assert "runtime stage is FROM scratch" grep -qx 'FROM scratch' "$img/Containerfile"
assert "runtime stage copies /entitle (prebuilt)" grep -qx 'COPY entitle /entitle' "$img/Containerfile"
check "podman build: runtime stage" 0 \
  pod build --pull=never --isolation chroot -f "$img/Containerfile" -t localhost/entitle:test "$img"

cfg() { pod image inspect --format "$1" localhost/entitle:test; }
assert "image user is 65532:65532" [ "$(cfg '{{.Config.User}}')" = 65532:65532 ]
assert "image entrypoint is [/entitle]" [ "$(cfg '{{json .Config.Entrypoint}}')" = '["/entitle"]' ]
assert "image cmd is [check]" [ "$(cfg '{{json .Config.Cmd}}')" = '["check"]' ]
assert "image has OCI title label" [ "$(cfg '{{index .Config.Labels "org.opencontainers.image.title"}}')" = entitle ]
assert "image has one layer" [ "$(cfg '{{len .RootFS.Layers}}')" = 1 ]
pod save -q --format docker-archive -o "$WORK/image.tar" localhost/entitle:test
mkdir "$WORK/image" && tar -x -C "$WORK/image" -f "$WORK/image.tar"
files=$(for layer in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$WORK/image/manifest.json"); do
  tar -t -f "$WORK/image/$layer"; done | sort | tr '\n' ' ')
assert "image layer holds only /entitle (got: $files)" [ "$files" = "entitle " ]
IMAGE_BYTES=$(cfg '{{.Size}}')
note "image localhost/entitle:test: $IMAGE_BYTES bytes ($(awk -v b="$IMAGE_BYTES" 'BEGIN{printf "%.2f", b/1048576}') MiB)"

# --- run it against entitle-mock on loopback --------------------------------------------------------
start_mock ok
start_mock refuse --answer not-entitled
chmod 0644 "$WORK/ok.pem"
mkdir "$WORK/out" && chown 65532:65532 "$WORK/out"
ENV_FLAGS=(-e AWS_REGION=us-east-1 -e AWS_ACCESS_KEY_ID=AKIDEXAMPLEPODMAN -e AWS_SECRET_ACCESS_KEY=podman-secret
           -e AWS_EC2_METADATA_DISABLED=true -e ENTITLE_PRODUCT_CODE=prod-podman -e ENTITLE_TIMEOUT=20s
           -e ENTITLE_PUBLIC_KEY_FILE=/etc/entitle/product-key.pem
           -v "$WORK/ok.pem:/etc/entitle/product-key.pem:ro")

check "podman run check (read-only, 65532, cap-drop ALL): entitled" 0 \
  pod run --rm "${RUN_FLAGS[@]}" "${ENV_FLAGS[@]}" -e AWS_ENDPOINT_URL_MARKETPLACE_METERING="$MOCK_URL_ok" \
  -v "$WORK/out:/var/run/entitle" localhost/entitle:test check --output /var/run/entitle/record.json
assert "record written by uid 65532" [ "$(stat -c %u "$WORK/out/record.json" 2>/dev/null)" = 65532 ]
assert "record names the product" grep -q '"productCode": *"prod-podman"' "$WORK/out/record.json"
check "podman run (default CMD check): not entitled" 77 \
  pod run --rm "${RUN_FLAGS[@]}" "${ENV_FLAGS[@]}" -e AWS_ENDPOINT_URL_MARKETPLACE_METERING="$MOCK_URL_refuse" \
  localhost/entitle:test
assert "the refusal is logged" grep -q 'CustomerNotEntitled\|not entitled\|not subscribed' "$WORK/last.err"

# --- the vendor pattern: entitle run -- /app/server, stopped with podman stop ------------------------
vendor=$WORK/vendor
mkdir "$vendor"
timeout 120 musl-gcc -static -Os -o "$vendor/server" "$REPO/tests/deploy/workload.c"
check "podman build: deploy/docker/Dockerfile.vendor (BASE_IMAGE=scratch)" 0 \
  pod build --pull=never --isolation chroot -f "$REPO/deploy/docker/Dockerfile.vendor" \
  --build-arg ENTITLE_IMAGE=localhost/entitle:test --build-arg BASE_IMAGE=scratch \
  -t localhost/entitle-vendor:test "$vendor"

wait_log() { # wait_log CONTAINER TEXT SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    pod logs "$1" 2>&1 | grep -q "$2" && return 0
    sleep 0.1
  done
  return 1
}

pod run -d --name vendor-ok "${RUN_FLAGS[@]}" "${ENV_FLAGS[@]}" \
  -e AWS_ENDPOINT_URL_MARKETPLACE_METERING="$MOCK_URL_ok" localhost/entitle-vendor:test >/dev/null
if wait_log vendor-ok 'server: ready' 30; then
  ok "vendor image: workload started after the check"
  logs=$(pod logs vendor-ok 2>&1)
  assert "workload runs as 65532:65532" grep -q 'server: uid=65532 gid=65532' <<<"$logs"
  assert "workload's parent is entitle as PID 1" grep -q 'ppid=1$' <<<"$logs"
  assert "workload has no capabilities" grep -Eq 'server: CapEff:[[:space:]]+0+$' <<<"$logs"
  assert "workload has no_new_privs" grep -Eq 'server: NoNewPrivs:[[:space:]]+1$' <<<"$logs"
  assert "root filesystem is read-only" grep -q 'server: write to / Read-only file system' <<<"$logs"
  assert "workload got ENTITLE_TOKEN" grep -q 'server: ENTITLE_TOKEN present' <<<"$logs"
  start=$(date +%s%N)
  timeout 60 "${P[@]}" stop -t 10 vendor-ok >/dev/null || true
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  code=$(pod wait vendor-ok 2>/dev/null || pod inspect --format '{{.State.ExitCode}}' vendor-ok)
  assert "podman stop: workload's exit code 42 returned (got $code)" [ "$code" = 42 ]
  assert "podman stop: SIGTERM reached the workload" bash -c "${P[*]} logs vendor-ok 2>&1 | grep -q 'server: got SIGTERM'"
  assert "podman stop: no SIGKILL needed (${elapsed_ms} ms < 10 s)" [ "$elapsed_ms" -lt 9000 ]
else
  bad "vendor image: workload did not start within 30 s"
  pod logs vendor-ok 2>&1 | tail -n 20 | sed 's/^/#    /'
fi
pod rm -f -t 0 vendor-ok >/dev/null 2>&1 || true

check "vendor image, not entitled: 77" 77 \
  pod run --rm "${RUN_FLAGS[@]}" "${ENV_FLAGS[@]}" -e AWS_ENDPOINT_URL_MARKETPLACE_METERING="$MOCK_URL_refuse" \
  localhost/entitle-vendor:test
assert "vendor image, not entitled: workload never started" bash -c '! grep -q "server:" "$0" "$1"' "$WORK/last.out" "$WORK/last.err"

printf 'FROM scratch\nCOPY server /app/server\nUSER 65532:65532\nENTRYPOINT ["/app/server"]\n' >"$vendor/Containerfile.app"
check "podman build: app image without entitle (FROM scratch, /app/server)" 0 \
  pod build --pull=never --isolation chroot -f "$vendor/Containerfile.app" -t localhost/app:test "$vendor"
# An app image that already has a file at /entitle (a vendor image built on entitle's own): the
# Helm wrapper must not mount its emptyDir there.
printf 'FROM localhost/app:test\nCOPY server /entitle\n' >"$vendor/Containerfile.app-entitle"
check "podman build: app image with its own /entitle file" 0 \
  pod build --pull=never --isolation chroot -f "$vendor/Containerfile.app-entitle" -t localhost/app-with-entitle:test "$vendor"
PODMAN_JSON=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${P[@]}")
PODRUN_FLAGS=(--podman "$PODMAN_JSON" --run-flag=--network=host --run-flag=--ulimit=nofile=1024:1024 --run-flag=--ulimit=nproc=1024:1024)

# --- the ECS task definitions, run the way the ECS agent would ------------------------------------
# Task-role credentials come from the mock's ECS credentials stand-in through
# AWS_CONTAINER_CREDENTIALS_FULL_URI, as the agent provides them; the public key is given inline
# with literal \n, exactly as in deploy/ecs/taskdef-*.json.
start_mock ecs --credentials AKIDEXAMPLEECSTASK:ecs-task-secret --request-log "$WORK/ecs-requests.jsonl"
KEY_INLINE=$(awk 'BEGIN { ORS = "\\n" } { print }' "$WORK/ecs.pem")
ecs_task() { # ecs_task TASKDEF MOCK_URL NAME APP_IMAGE
  mkdir -p "$WORK/$3"
  timeout 300 python3 "$REPO/tests/deploy/podrun.py" "$REPO/deploy/ecs/$1" --work "$WORK/$3" --name "$3" "${PODRUN_FLAGS[@]}" \
    --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/entitle:0.1.0=localhost/entitle:test \
    --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-product:1.0.0="$4" \
    --env "ENTITLE_PUBLIC_KEY=$KEY_INLINE" --env AWS_REGION=us-east-1 --env ENTITLE_TIMEOUT=20s \
    --env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$2/ecs/v2/credentials/task-role" \
    --env "AWS_ENDPOINT_URL_MARKETPLACE_METERING=$2" >"$WORK/$3.out" 2>&1 || true
}
ecs_task taskdef-init.json "$MOCK_URL_ecs" ecs-init localhost/app:test
out=$(cat "$WORK/ecs-init.out")
if assert "ECS taskdef-init: entitle-check (essential false) exits 0 with task-role credentials" grep -qx 'init entitle-check: exit 0' <<<"$out"; then
  assert "ECS taskdef-init: app started after dependsOn SUCCESS" grep -qx 'app app: ready' <<<"$out"
  assert "ECS taskdef-init: app stopped cleanly (exit 42)" grep -qx 'app app: exit 42' <<<"$out"
else
  sed 's/^/#    /' "$WORK/ecs-init.out" | tail -n 30
fi
assert "ECS: credentials fetched from the container credentials endpoint" grep -q '"kind": *"ecs"' "$WORK/ecs-requests.jsonl"
assert "ECS: RegisterUsage signed (SigV4 verified) with the task-role key" \
  python3 -c 'import json,sys; sys.exit(not any(r.get("kind") == "register" and r.get("accessKeyId") == "AKIDEXAMPLEECSTASK" and r.get("sigv4") == "ok" for r in map(json.loads, open(sys.argv[1]))))' "$WORK/ecs-requests.jsonl"
ecs_task taskdef-init.json "$MOCK_URL_refuse" ecs-refuse localhost/app:test
assert "ECS taskdef-init, not entitled: entitle-check exits 77, app never starts" \
  bash -c 'grep -qx "init entitle-check: exit 77" "$0" && ! grep -q "^app " "$0"' "$WORK/ecs-refuse.out"
ecs_task taskdef-run.json "$MOCK_URL_ecs" ecs-run localhost/entitle-vendor:test
out=$(cat "$WORK/ecs-run.out")
if assert "ECS taskdef-run: app started under entryPoint /entitle run --" grep -qx 'app app: ready' <<<"$out"; then
  assert "ECS taskdef-run: workload got ENTITLE_TOKEN" grep -q 'server: ENTITLE_TOKEN present' <<<"$out"
  assert "ECS taskdef-run: stop forwarded, exit 42" grep -qx 'app app: exit 42' <<<"$out"
else
  sed 's/^/#    /' "$WORK/ecs-run.out" | tail -n 30
fi

# --- metering on ECS: the relay image and deploy/ecs/taskdef-meter.json, 2 s hours -----------------
# Sum of each dimension over all hours in entitle-mock's MeterUsage records: "gb=2 scans=3".
meter_totals() {
  python3 -c 'import json, sys, urllib.request
t = json.load(urllib.request.urlopen(sys.argv[1] + "/_mock/meter", timeout=10))["totals"]
s = {}
for hour in t.values():
    for d, q in hour.items():
        s[d] = s.get(d, 0) + q
print(" ".join(f"{d}={q}" for d, q in sorted(s.items())))' "$1"
}
# A free port for a relay (host network here: the pods share the host's loopback).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
before_line() { # before_line FILE FIRST SECOND: both lines present, FIRST earlier
  local a b
  a=$(grep -n -m1 -F -- "$2" "$1" | cut -d: -f1)
  b=$(grep -n -m1 -F -- "$3" "$1" | cut -d: -f1)
  [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}
meter_start=$SECONDS
check "hadolint deploy/docker/Dockerfile.meter" 0 timeout 60 hadolint "$REPO/deploy/docker/Dockerfile.meter"
check "podman build: deploy/docker/Dockerfile.meter (the ECS relay image)" 0 \
  pod build --pull=never --isolation chroot -f "$REPO/deploy/docker/Dockerfile.meter" \
  --build-arg ENTITLE_IMAGE=localhost/entitle:test -t localhost/entitle-meter:test "$REPO/deploy/docker"
mcfg() { pod image inspect --format "$1" localhost/entitle-meter:test; }
assert "relay image: user 65532:65532, entrypoint [/entitle], cmd [meter]" \
  [ "$(mcfg '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}')" = '65532:65532 ["/entitle"] ["meter"]' ]
assert "relay image: /var/lib/entitle-meter is a VOLUME" bash -c "grep -q '/var/lib/entitle-meter' <<<'$(mcfg '{{json .Config.Volumes}}')'"
cid=$(pod create localhost/entitle-meter:test)
state_owner=$(pod export "$cid" | tar -tv --numeric-owner -f - var/lib/entitle-meter/ 2>/dev/null | awk '$NF == "var/lib/entitle-meter/" { print $2 }')
pod rm "$cid" >/dev/null
assert "relay image: the journal folder is owned by 65532 (got: $state_owner)" [ "$state_owner" = 65532/65532 ]

start_mock meter_ecs --period 2s --dimensions scans,gb --credentials AKIDEXAMPLEECSTASK:ecs-task-secret \
  --request-log "$WORK/meter-ecs-requests.jsonl"
ecs_meter() { # ecs_meter NAME RELAY_IMAGE MOCK_URL [podrun options...]: run taskdef-meter.json
  local name=$1 relay=$2 url=$3 port
  shift 3
  port=$(free_port)
  mkdir -p "$WORK/$name"
  # The relay listens on a free port instead of 8787 (host network here), the app is told so.
  timeout 300 python3 "$REPO/tests/deploy/podrun.py" "$REPO/deploy/ecs/taskdef-meter.json" --work "$WORK/$name" --name "$name" \
    "${PODRUN_FLAGS[@]}" \
    --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/entitle-meter:0.1.0="$relay" \
    --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-product:1.0.0=localhost/app:test \
    --env AWS_REGION=us-east-1 --env ENTITLE_TIMEOUT=20s --env ENTITLE_METER_PERIOD=2s \
    --env "AWS_CONTAINER_CREDENTIALS_FULL_URI=$url/ecs/v2/credentials/task-role" \
    --env "AWS_ENDPOINT_URL_MARKETPLACE_METERING=$url" \
    --env "ENTITLE_METER_LISTEN=127.0.0.1:$port" --env "ENTITLE_METER_URL=http://127.0.0.1:$port" "$@" \
    >"$WORK/$name.out" 2>&1 || true
}
ecs_meter ecs-meter localhost/entitle-meter:test "$MOCK_URL_meter_ecs" --env WORKLOAD_USAGE=scans=3,gb=2
out=$(cat "$WORK/ecs-meter.out")
if assert "ECS taskdef-meter: the relay's healthCheck \`/entitle health\` passed inside it (dependsOn HEALTHY), then the app started" \
  before_line "$WORK/ecs-meter.out" 'sidecar entitle-meter: healthy (healthCheck CMD /entitle health: exit 0' 'app app: ready'; then
  assert "ECS taskdef-meter: the app's reports were durable (HTTP 200)" \
    bash -c 'grep -q "server: usage scans 3 to .*: HTTP 200" <<<"$0" && grep -q "server: usage gb 2 to .*: HTTP 200" <<<"$0"' "$out"
  assert "ECS taskdef-meter: the app stopped first (exit 42), then the relay flushed and exited 0" \
    before_line "$WORK/ecs-meter.out" 'app app: exit 42' 'sidecar entitle-meter: exit 0'
  assert "ECS taskdef-meter: the relay logged every hour sent" grep -q 'all usage sent' <<<"$out"
  assert "ECS taskdef-meter: the journal is on the task volume, written by 65532" \
    [ "$(stat -c %u "$WORK/ecs-meter/vol/meter-state/journal" 2>/dev/null)" = 65532 ]
  totals=$(meter_totals "$MOCK_URL_meter_ecs")
  assert "ECS taskdef-meter: MeterUsage totals equal what the app reported (got: $totals)" [ "$totals" = "gb=2 scans=3" ]
  assert "ECS taskdef-meter: MeterUsage signed (SigV4 verified) with the task-role key, no RegisterUsage" \
    python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(not (any(x.get("kind") == "meter" and x.get("accessKeyId") == "AKIDEXAMPLEECSTASK" and x.get("sigv4") == "ok" for x in r) and not any(x.get("kind") == "register" for x in r)))' "$WORK/meter-ecs-requests.jsonl"
else
  sed 's/^/#    /' "$WORK/ecs-meter.out" | tail -n 30
fi
# Negative control: the plain entitle image (no VOLUME): the task volume stays root-owned, as on
# Fargate, and the relay (65532, read-only root) cannot keep a journal there.
# The app never starts here: the relay (essential) exits before its health check passes, which
# stops the task. A mock of its own:
# entitle-mock keeps one record per dimension and period for all its clients, so a dry run in the
# period the task above metered in would be refused as a duplicate.
start_mock meter_plain --period 2s --dimensions scans,gb --credentials AKIDEXAMPLEECSTASK:ecs-task-secret
ecs_meter ecs-meter-plain localhost/entitle:test "$MOCK_URL_meter_plain" --ready never-ready
assert "ECS taskdef-meter with the plain entitle image: the relay exits 78 (task volume not writable) before it is healthy, the task stops, the app never starts" \
  bash -c 'grep -qx "sidecar entitle-meter: exited (essential: the task stops)" "$0" && grep -qx "sidecar entitle-meter: exit 78" "$0" && grep -q "cannot write in --meter-state" "$0" && ! grep -q "^sidecar entitle-meter: healthy\|^app " "$0"' "$WORK/ecs-meter-plain.out" \
  || sed 's/^/#    /' "$WORK/ecs-meter-plain.out" | tail -n 20

# --- the Helm example chart's pod, rendered by helm and run the way a kubelet would -------------
HELM=${HELM:-$(command -v helm || true)}
if [ -z "$HELM" ]; then
  bad "helm not found (set HELM; see .ci/run)"
else
  cp -r "$REPO/helm" "$WORK/helm"
  rm -rf "$WORK/helm/example/charts" "$WORK/helm/example/Chart.lock"
  timeout 60 "$HELM" dependency update "$WORK/helm/example" >/dev/null
  mkdir "$WORK/keycm" && cp "$WORK/ok.pem" "$WORK/keycm/product-key.pem"
  # IRSA as the EKS webhook provides it: AWS_ROLE_ARN from the ServiceAccount annotation, a
  # projected web identity token, STS (here the mock's AssumeRoleWithWebIdentity stand-in).
  echo "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDpyZWwtZW50aXRsZS1leGFtcGxlIn0.c2ln" >"$WORK/irsa-token"
  chmod 0644 "$WORK/irsa-token"
  # helm_pod VALUES MOCK_URL NAME [--key PEM|""] [--app IMAGE] [--env-json JSON] [--helm ARG]...
  #          [--podrun ARG]...: render the example chart with ci/VALUES-values.yaml and run its pod.
  helm_pod() {
    local values=$1 url=$2 name=$3 key=$WORK/ok.pem app=localhost/app:test env_json=""
    local helm_args=() podrun_args=()
    shift 3
    while [ $# -gt 0 ]; do
      case $1 in
        --key) key=$2 ;;
        --app) app=$2 ;;
        --env-json) env_json=",$2" ;;
        --helm) helm_args+=("$2") ;;
        --podrun) podrun_args+=("$2") ;;
        *) echo "helm_pod: unknown option $1" >&2; return 64 ;;
      esac
      shift 2
    done
    [ -z "$key" ] || helm_args+=(--set-file "entitle.publicKey=$key")
    timeout 60 "$HELM" template rel "$WORK/helm/example" -f "$WORK/helm/example/ci/$values-values.yaml" \
      --set entitle.productCode=prod-helm --set entitle.timeout=20s "${helm_args[@]}" \
      --set-json "entitle.extraEnv=[{\"name\":\"AWS_ENDPOINT_URL_MARKETPLACE_METERING\",\"value\":\"$url\"},{\"name\":\"AWS_ENDPOINT_URL_STS\",\"value\":\"$url\"}$env_json]" \
      >"$WORK/$name.yaml"
    mkdir -p "$WORK/$name"
    timeout 300 python3 "$REPO/tests/deploy/podrun.py" "$WORK/$name.yaml" --work "$WORK/$name" --name "$name" "${PODRUN_FLAGS[@]}" \
      --image registry.example.com/entitle:0.1.0=localhost/entitle:test \
      --image registry.example.com/my-product:1.0.0="$app" \
      --configmap my-product-entitle-key="$WORK/keycm" \
      --irsa-token "$WORK/irsa-token" --env AWS_REGION=us-east-1 --env AWS_DEFAULT_REGION=us-east-1 "${podrun_args[@]}" \
      >"$WORK/$name.out" 2>&1 || true
  }
  show() { sed 's/^/#    /' "$WORK/$1.out" | tail -n 30; }

  helm_pod init "$MOCK_URL_ok" helm-init
  out=$(cat "$WORK/helm-init.out")
  if assert "helm init mode: entitle-check init container exits 0" grep -qx 'init entitle-check: exit 0' <<<"$out"; then
    assert "helm init mode: app started" grep -qx 'app app: ready' <<<"$out"
    assert "helm init mode: app reads the record (read-only mount)" \
      grep -Eq 'server: ENTITLE_RECORD /var/run/entitle/record.json: [1-9][0-9]* bytes' <<<"$out"
    assert "helm init mode: record not writable by the app" grep -q 'record writable: Read-only file system' <<<"$out"
    assert "helm init mode: app runs hardened (65532, no caps, read-only /)" \
      bash -c 'grep -q "uid=65532 gid=65532" <<<"$0" && grep -Eq "CapEff:[[:space:]]+0+$" <<<"$0" && grep -q "write to / Read-only" <<<"$0"' "$out"
    assert "helm init mode: app stopped cleanly (exit 42)" grep -qx 'app app: exit 42' <<<"$out"
    assert "helm init mode: IRSA: AssumeRoleWithWebIdentity for the ServiceAccount's role" \
      grep -q 'AssumeRoleWithWebIdentity.*roleArn="arn:aws:iam::123456789012:role/my-product-registerusage"' "$WORK/ok.log"
  else
    show helm-init
  fi
  helm_pod init "$MOCK_URL_refuse" helm-refuse
  assert "helm init mode, not entitled: init container exits 77, app never starts" \
    bash -c 'grep -qx "init entitle-check: exit 77" "$0" && ! grep -q "^app " "$0"' "$WORK/helm-refuse.out" || show helm-refuse
  assert "helm init mode, not entitled: the termination message is entitle's one-line reason" \
    grep -Eq '^termination entitle-check: entitle: .*(not entitled|not subscribed|CustomerNotEntitled)' "$WORK/helm-refuse.out"

  # Wrapper mode needs `entitle install DIR` (the scratch image has no cp). Its app image has a
  # file at /entitle of its own: the chart's default install path (/.entitle) must not collide.
  if "$BIN" --help 2>&1 | grep -q 'entitle install'; then
    helm_pod wrapper "$MOCK_URL_ok" helm-wrap --app localhost/app-with-entitle:test
    out=$(cat "$WORK/helm-wrap.out")
    if assert "helm wrapper mode: entitle-install init container exits 0" grep -qx 'init entitle-install: exit 0' <<<"$out"; then
      assert "helm wrapper mode: the command is /.entitle/entitle run -- /app/server" \
        grep -qF 'command: ["/.entitle/entitle","run","--","/app/server"]' "$WORK/helm-wrap.yaml"
      assert "helm wrapper mode: app started under /.entitle/entitle run, beside the image's own /entitle" \
        grep -qx 'app app: ready' <<<"$out"
      assert "helm wrapper mode: app got ENTITLE_TOKEN" grep -q 'server: ENTITLE_TOKEN present' <<<"$out"
      assert "helm wrapper mode: app's parent is entitle (PID 1)" grep -q 'server: uid=65532 gid=65532 pid=[0-9]* ppid=1$' <<<"$out"
      assert "helm wrapper mode: SIGTERM forwarded, exit 42" grep -qx 'app app: exit 42' <<<"$out"
    else
      show helm-wrap
    fi
    # Negative control: the old default path, /entitle, cannot be mounted over that image's file.
    helm_pod wrapper "$MOCK_URL_ok" helm-wrap-old --app localhost/app-with-entitle:test --helm --set=entitle.binDir=/entitle
    assert "helm wrapper mode with binDir /entitle: an app image with a file there cannot start" \
      bash -c 'grep -q "^app app: cannot start" "$0" && ! grep -q "^app app: ready" "$0"' "$WORK/helm-wrap-old.out" || show helm-wrap-old
    helm_pod wrapper "$MOCK_URL_refuse" helm-wrap-refuse
    assert "helm wrapper mode, not entitled: 77, workload never started" \
      bash -c 'grep -qx "app app: exit 77" "$0" && ! grep -q "server:" "$0"' "$WORK/helm-wrap-refuse.out" || show helm-wrap-refuse
    assert "helm wrapper mode, not entitled: the termination message is entitle's one-line reason" \
      grep -Eq '^termination app: entitle: .*(not entitled|not subscribed|CustomerNotEntitled)' "$WORK/helm-wrap-refuse.out"
  else
    SKIPPED=$((SKIPPED + 1))
    echo "skip - helm wrapper mode pod: this entitle has no \`install\` subcommand yet"
  fi

  # --- metering with the Helm chart: sidecar mode and run mode, 2 s hours ------------------------
  PERIOD_JSON='{"name":"ENTITLE_METER_PERIOD","value":"2s"}'
  # The first MeterUsage dry run is held (the mock stalls it; entitle gives the attempt up after
  # 1 s and retries): the startupProbe, run at once, must fail meanwhile (exit 75), the app wait.
  start_mock meter_k8s --period 2s --dimensions scans,gb --meter-answer 'stall,ok'
  port=$(free_port)
  probe="exec /entitle health --meter-url http://127.0.0.1:$port"
  helm_pod meter-sidecar "$MOCK_URL_meter_k8s" helm-meter --key "$WORK/meter_k8s.pem" \
    --env-json "$PERIOD_JSON"',{"name":"ENTITLE_ATTEMPT_TIMEOUT","value":"1s"}' \
    --helm --set=entitle.meter.port="$port" --podrun --env=WORKLOAD_USAGE=scans=3,gb=2
  out=$(cat "$WORK/helm-meter.out")
  if assert "helm meter sidecar: entitle-check (RegisterUsage) exits 0, then the native sidecar's exec startupProbe (\`/entitle health\` inside it) passes" \
    bash -c 'grep -qx "init entitle-check: exit 0" "$0" && grep -qF "sidecar entitle-meter: started (startupProbe $1: exit 0" "$0"' \
    "$WORK/helm-meter.out" "$probe"; then
    assert "helm meter sidecar: while the dry run was held the startupProbe failed (exit 75), before it passed" \
      before_line "$WORK/helm-meter.out" "probe entitle-meter: startupProbe $probe: exit 75" 'sidecar entitle-meter: started'
    assert "helm meter sidecar: the app starts only after the startupProbe passed" \
      before_line "$WORK/helm-meter.out" 'sidecar entitle-meter: started' 'app app: ready'
    assert "helm meter sidecar: the app's reports to ENTITLE_METER_URL were durable (HTTP 200)" \
      bash -c 'grep -q "server: usage scans 3 to http://127.0.0.1:$1: HTTP 200" <<<"$0" && grep -q "server: usage gb 2 to http://127.0.0.1:$1: HTTP 200" <<<"$0"' "$out" "$port"
    assert "helm meter sidecar: the app stops first (42), then the sidecar flushes and exits 0" \
      before_line "$WORK/helm-meter.out" 'app app: exit 42' 'sidecar entitle-meter: exit 0'
    assert "helm meter sidecar: the journal is on the emptyDir, written by 65532" \
      [ "$(stat -c %u "$WORK/helm-meter/vol/entitle-meter-state/journal" 2>/dev/null)" = 65532 ]
    totals=$(meter_totals "$MOCK_URL_meter_k8s")
    assert "helm meter sidecar: MeterUsage totals equal what the app reported (got: $totals)" [ "$totals" = "gb=2 scans=3" ]
    assert "helm meter sidecar: the failed probes left no termination message (the sidecar stopped cleanly)" \
      bash -c '! grep -q "^termination entitle-meter:" "$0"' "$WORK/helm-meter.out"
  else
    show helm-meter
  fi

  start_mock meter_run --period 2s --dimensions scans,gb --request-log "$WORK/meter-run-requests.jsonl"
  port=$(free_port)
  helm_pod meter-run "$MOCK_URL_meter_run" helm-meter-run --key "" --app localhost/app-with-entitle:test --env-json "$PERIOD_JSON" \
    --helm --set=entitle.meter.port="$port" \
    --podrun --env=WORKLOAD_USAGE=scans=5 --podrun --env=WORKLOAD_USAGE_CLI=gb=4 --podrun --env=WORKLOAD_ENTITLE=/.entitle/entitle
  out=$(cat "$WORK/helm-meter-run.out")
  if assert "helm meter run mode: the workload started under /.entitle/entitle run (no key: MeterUsage dry runs only)" \
    grep -qx 'app app: ready' <<<"$out"; then
    assert "helm meter run mode: entitle run gave the workload ENTITLE_METER_URL; its report was durable" \
      grep -q "server: usage scans 5 to http://127.0.0.1:$port: HTTP 200" <<<"$out"
    assert "helm meter run mode: \`entitle usage gb 4\` from the workload exits 0" grep -q 'server: entitle usage gb 4: exit 0' <<<"$out"
    assert "helm meter run mode: the workload's exit code (42) is the container's after the flush" grep -qx 'app app: exit 42' <<<"$out"
    assert "helm meter run mode: the relay flushed before exiting" grep -q 'all usage sent' <<<"$out"
    totals=$(meter_totals "$MOCK_URL_meter_run")
    assert "helm meter run mode: MeterUsage totals equal what the workload reported (got: $totals)" [ "$totals" = "gb=4 scans=5" ]
    assert "helm meter run mode: no RegisterUsage without a key" \
      python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(not (any(x.get("kind") == "meter" for x in r) and not any(x.get("kind") == "register" for x in r)))' "$WORK/meter-run-requests.jsonl"
  else
    show helm-meter-run
  fi

  start_mock meter_refuse --period 2s --dimensions scans,gb --meter-answer not-entitled
  port=$(free_port)
  helm_pod meter-sidecar "$MOCK_URL_meter_refuse" helm-meter-refuse --key "$WORK/meter_refuse.pem" --env-json "$PERIOD_JSON" \
    --helm --set=entitle.meter.port="$port"
  assert "helm meter sidecar, not entitled: the sidecar exits 77 before its startupProbe passes, the app never starts" \
    bash -c 'grep -qx "sidecar entitle-meter: exit 77" "$0" && grep -q "startupProbe .* never passed" "$0" && ! grep -q "^app " "$0"' \
    "$WORK/helm-meter-refuse.out" || show helm-meter-refuse
  assert "helm meter sidecar, not entitled: the termination message is entitle's one-line reason" \
    grep -q '^termination entitle-meter: entitle: ' "$WORK/helm-meter-refuse.out"
  note "metering (ECS relay image and task, Helm sidecar, run mode, refusals): $((SECONDS - meter_start)) s"
fi

summary
