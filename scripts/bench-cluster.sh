#!/usr/bin/env bash
# A 4-node cluster against one node, in one run on this machine:
#   - one objd over 8 drive directories as one set of 8 at EC:4;
#   - four objd processes (loopback ports 9101-9104) over 2 drives each,
#     the same 8-drive set at EC:4, with an etcd;
# PUT and GET of 4 KiB and 16 MiB objects at concurrency 16 through node 1
# (the cluster figure also spread over all four nodes). The single-node
# figure is the baseline: the difference is the cost of reaching 6 of the
# 8 drives through other nodes' endpoints.
# Usage: scripts/bench-cluster.sh [SECONDS_PER_TEST]  (JSON lines with JSON=1)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"
export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
export OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY OBJD_LOG=warn

wait_listening() { for _ in $(seq 300); do grep -q listening "$1" 2>/dev/null && return; sleep 0.1; done; echo "no start: $1" >&2; exit 1; }

run_loads() {
  local label=$1; shift
  for size in 4KiB 16MiB; do
    for op in put get; do
      sync
      echo "-- $label $op $size"
      $bench $json s3 "$@" --bucket "b$(tr "A-Z" "a-z" <<< "$size")" --op $op --size $size --concurrency 16 --duration "$secs"
    done
  done
}

echo "== one node, 8 drives, EC:4"
target/release/objd server "$work/single/d{1...8}" --parity EC:4 --address 127.0.0.1:9100 \
  --scanner-interval 0 > "$work/single.out" &
pids+=($!)
wait_listening "$work/single.out"
run_loads single --endpoint http://127.0.0.1:9100
stop "${pids[0]}"; pids=()

echo "== four nodes x 2 drives, EC:4, etcd"
etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23799 \
  --advertise-client-urls http://127.0.0.1:23799 --listen-peer-urls http://127.0.0.1:23809 \
  --initial-advertise-peer-urls http://127.0.0.1:23809 \
  --initial-cluster default=http://127.0.0.1:23809 --log-level error > "$work/etcd.out" 2>&1 &
pids+=($!)
args=()
for n in 1 2 3 4; do args+=("http://127.0.0.1:910$n$work/n$n/d{1...2}"); done
for n in 1 2 3 4; do
  target/release/objd server "${args[@]}" --parity EC:4 --address 127.0.0.1:910$n \
    --etcd http://127.0.0.1:23799 --scanner-interval 0 > "$work/node$n.out" &
  pids+=($!)
done
for n in 1 2 3 4; do wait_listening "$work/node$n.out"; done
run_loads cluster-node1 --endpoint http://127.0.0.1:9101
echo "-- cluster, every node: PUT 16MiB, four loads at once (sum the figures)"
loads=()
for n in 1 2 3 4; do
  $bench $json s3 --endpoint http://127.0.0.1:910$n --bucket "all$n" --op put --size 16MiB \
    --concurrency 4 --duration "$secs" > "$work/all$n.out" &
  loads+=($!)
done
wait "${loads[@]}"
cat "$work"/all*.out
