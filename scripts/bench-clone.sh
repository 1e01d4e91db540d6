#!/usr/bin/env bash
# What a clone (a CSI snapshot, restore or clone) costs, in one run on
# this machine: one objd over 6 drives as 4+2, a bucket of OBJECTS
# objects of SIZE each (default 10,000 of 1 MiB: 10 GiB), then
#   - objd admin clone of the bucket into another (records copied, shard
#     files hard-linked), timed, with the drives' space before and after
#   - the baseline: a server-side copy of the same objects between the
#     same buckets (CopyObject of each, 16 at a time), timed
#   - a clone of 10,000 objects of 4 KiB (inline data: records only)
# Usage: scripts/bench-clone.sh  (OBJECTS=N SIZE=1MiB to change the set)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"
objects=${OBJECTS:-10000}
size=${SIZE:-1MiB}

export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
export OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY
OBJD_LOG=warn $objd server "$work/d{1...6}" --parity EC:2 --address 127.0.0.1:0 \
  --scanner-interval 0 > "$work/objd.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/objd.out" 2>/dev/null && break; sleep 0.1; done
endpoint=$(sed -n 's/^objd listening on //p' "$work/objd.out")
export OBJD_ENDPOINT=$endpoint

python3 - "$endpoint" <<'PY'
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
for b in ("source", "clone", "copy", "small", "small-clone"):
    s3.create_bucket(Bucket=b)
PY

used() { du -sb --apparent-size "$work"/d* | awk '{s += $1} END {print s}'; }
disk() { df -B1 --output=used "$work" | tail -1; }
now() { date +%s.%N; }

echo "== filling: $objects objects of $size"
$bench s3 --endpoint "$endpoint" --bucket source --op get --size "$size" \
  --objects "$objects" --concurrency 16 --duration 0.2 > /dev/null
sync
echo "stored: $(used) bytes in the drives, disk used $(disk)"

echo "== clone (objd admin clone source clone)"
before=$(disk)
t0=$(now)
$objd admin clone source clone | tail -1
t1=$(now)
sync
after=$(disk)
awk -v a="$t0" -v b="$t1" -v n="$objects" -v d=$((after - before)) \
  'BEGIN {printf "clone: %.2f s, %.0f objects/s, disk grew %d bytes\n", b - a, n / (b - a), d}'

echo "== baseline: server-side copy of every object (CopyObject, 16 at a time)"
t0=$(now)
python3 - "$endpoint" <<'PY'
import boto3, sys
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  config=Config(max_pool_connections=32))
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="source"):
    keys += [o["Key"] for o in page.get("Contents", [])]
def copy(k):
    s3.copy_object(Bucket="copy", Key=k, CopySource={"Bucket": "source", "Key": k})
with ThreadPoolExecutor(16) as pool:
    list(pool.map(copy, keys))
print(f"copied {len(keys)} objects")
PY
t1=$(now)
awk -v a="$t0" -v b="$t1" -v n="$objects" \
  'BEGIN {printf "copy: %.2f s, %.0f objects/s\n", b - a, n / (b - a)}'

echo "== clone of 10,000 objects of 4 KiB (inline data)"
$bench s3 --endpoint "$endpoint" --bucket small --op get --size 4KiB \
  --objects 10000 --concurrency 16 --duration 0.2 > /dev/null
t0=$(now)
$objd admin clone small small-clone | tail -1
t1=$(now)
awk -v a="$t0" -v b="$t1" 'BEGIN {printf "clone: %.2f s, %.0f objects/s\n", b - a, 10000 / (b - a)}'
