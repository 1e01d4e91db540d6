#!/usr/bin/env bash
# What the audit log costs, in one run on this machine: two objd servers
# over 6 drives as 4+2 each, one without an audit log and one writing an
# audit file (its queue and the file on the same disk as the drives), 4 KiB
# PUT and GET at concurrency 16, in ABBA order.
# Usage: scripts/bench-audit.sh [SECONDS_PER_TEST]  (JSON lines with JSON=1)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"

export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
# Starts a server (its pid joins `pids`, so it is stopped at exit) and
# sets `endpoint_of` to its URL. Not run in a subshell: a server started
# from `$(...)` would escape the cleanup.
start() { # name, extra flags...
  local name=$1; shift
  OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY OBJD_LOG=warn \
    $objd server "$work/$name/d{1...6}" --parity EC:2 --address 127.0.0.1:0 --scanner-interval 0 \
    "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
  endpoint_of=$(sed -n 's/^objd listening on //p' "$work/$name.out")
}
mkdir -p "$work/plain" "$work/audited"
start plain
plain=$endpoint_of
start audited --audit-file "$work/audit/audit.log"
audited=$endpoint_of
for e in "$plain" "$audited"; do
  python3 -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1').create_bucket(Bucket='bench')" "$e"
done
for op in put get; do
  for name in plain audited audited plain; do
    sync
    endpoint=$plain; [ $name = audited ] && endpoint=$audited
    echo "-- $name"
    $bench $json s3 --endpoint "$endpoint" --bucket bench --op $op --size 4KiB --concurrency 16 --duration "$secs"
  done
done
echo "-- audit entries written: $(cat "$work"/audit/audit.log* | wc -l)"
