#!/usr/bin/env bash
# The whole flow on one machine, no AWS account: build entitle and entitle-mock (the debug
# profile, into target/debug: it shares the build `cargo test` makes, and tests/readme.rs runs this
# script), start the mock on 127.0.0.1, run `entitle check` against it, then verify the record
# offline.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building entitle and entitle-mock (cargo build; the first build takes a few minutes)" >&2
cargo build --locked -p entitle -p entitle-mock
bin=target/debug
work=$(mktemp -d)
mock_pid=
cleanup() {
  if [ -n "$mock_pid" ]; then
    kill "$mock_pid" 2>/dev/null || true # already gone is fine
    wait "$mock_pid" 2>/dev/null || true # its exit status (killed) is not ours
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/entitle-mock" --write-public-key "$work/product-key.pem" >"$work/url" 2>"$work/mock.log" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "entitle-mock did not start:" >&2; cat "$work/mock.log" >&2; exit 1; }
echo "entitle-mock listening on $url (it plays AWS Marketplace Metering for product prod-demo)"

export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDEXAMPLEDEMO AWS_SECRET_ACCESS_KEY=demo-secret
export AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL_MARKETPLACE_METERING="$url"
export ENTITLE_PRODUCT_CODE=prod-demo ENTITLE_PUBLIC_KEY_FILE="$work/product-key.pem"

echo "\$ entitle check --output record.json"
"$bin/entitle" check --output "$work/record.json"
echo "exit code $?; the record:"
cat "$work/record.json"
echo "\$ entitle verify --record record.json"
"$bin/entitle" verify --record "$work/record.json"
echo "exit code $?: entitled, signature and claims verified"
