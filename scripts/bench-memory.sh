#!/usr/bin/env bash
# Memory and large writes under load, in one run on this machine:
#   - raw baseline: 64 MiB files written with fsync into six directories
#     at concurrency 16 and 64, through the page cache and direct (with
#     objd's direct writer); objd's best case is this times 4/6, the data
#     share of 4+2
#   - an objd over 6 drives as 4+2 with the default buffer budget
#     (256 MiB), a fresh one for each of concurrency 16, 64 and 256: 64 MiB
#     PUT and GET and 4 KiB PUT, each with the server's peak resident
#     memory during the run (VmHWM, reset before each) and its resident
#     memory 3 s after
# Needs root (resetting the kernel's peak RSS of the server).
# Usage: scripts/bench-memory.sh [SECONDS_PER_TEST]  (JSON lines with JSON=1)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"

echo "== raw disk baseline (6 directories), 64 MiB files"
raw=()
for i in 1 2 3 4 5 6; do mkdir -p "$work/raw$i"; raw+=(--dir "$work/raw$i"); done
for conc in 16 64; do
  for mode in "" --direct; do
    sync
    $bench $json raw-write "${raw[@]}" --size 64MiB --concurrency $conc --duration "$secs" $mode
    rm -rf "$work"/raw*/*
  done
done
rm -rf "$work"/raw*
sync

export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
for conc in 16 64 256; do
  # Each concurrency on a fresh objd whose drives are removed after it (a
  # run writes up to 40 GiB with its parity; together they would not fit
  # this disk), so each peak is measured from a server that starts idle.
  echo "== objd, 6 drives, EC:2 (4+2), --buffer-budget 256MiB, concurrency $conc"
  OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY OBJD_LOG=warn \
    $objd server "$work/c$conc/d{1...6}" --parity EC:2 --address 127.0.0.1:0 --scanner-interval 0 \
    > "$work/objd$conc.out" &
  pid=$!
  pids+=($pid)
  for _ in $(seq 100); do grep -q listening "$work/objd$conc.out" 2>/dev/null && break; sleep 0.1; done
  endpoint=$(sed -n 's/^objd listening on //p' "$work/objd$conc.out")
  echo "idle RSS: $(awk '/VmRSS/ {print int($2/1024) " MiB"}' /proc/$pid/status)"
  # A 64 MiB PUT at c64 takes about 15 s here: throughput runs up to c64
  # last at least 30 s, so that they measure more than the first round's
  # ramp (c256 is a memory check).
  long=$(( conc <= 64 && secs < 30 ? 30 : secs ))
  for op in put get; do
    sync
    $bench $json s3 --endpoint "$endpoint" --bucket "m$conc$op" --op $op --size 64MiB \
      --concurrency $conc --duration "$long" --objects 32 --server-pid "$pid"
  done
  sync
  $bench $json s3 --endpoint "$endpoint" --bucket "s$conc" --op put --size 4KiB \
    --concurrency $conc --duration "$secs" --server-pid "$pid"
  stop "$pid"
  rm -rf "$work/c$conc"
done
