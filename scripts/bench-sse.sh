#!/usr/bin/env bash
# What encryption costs, in one run on this machine:
#   - one core: objd's package sealing/opening with each cipher, and MD5
#     (which every PUT computes for its ETag) as the baseline
#   - one objd over 6 drives as 4+2 with the built-in KMS: 4 KiB and
#     16 MiB PUT and GET at concurrency 16 into a plain bucket and into a
#     bucket whose default encryption is SSE-S3, in ABBA order, same server
# Usage: scripts/bench-sse.sh [SECONDS_PER_TEST]  (JSON lines with JSON=1)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"

echo "== one core, 1 MiB"
$bench $json seal --duration 2

echo "== objd, 6 drives, EC:2 (4+2), SSE-S3 by bucket default vs plain"
export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
head -c 32 /dev/urandom | base64 > "$work/root.key"
OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY OBJD_LOG=warn \
  $objd server "$work/d{1...6}" --parity EC:2 --address 127.0.0.1:0 --scanner-interval 0 \
  --kms-root-key-file "$work/root.key" > "$work/objd.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/objd.out" 2>/dev/null && break; sleep 0.1; done
endpoint=$(sed -n 's/^objd listening on //p' "$work/objd.out")
python3 - "$endpoint" <<'PY'
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
for b in ("plain", "sealed"):
    s3.create_bucket(Bucket=b)
s3.put_bucket_encryption(Bucket="sealed", ServerSideEncryptionConfiguration={
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
PY
for size in 4KiB 16MiB; do
  for op in put get; do
    # Plain, sealed, sealed, plain: each order once, so that what one run
    # leaves behind (dirty pages, fuller drives) weighs on both alike.
    for bucket in plain sealed sealed plain; do
      sync
      echo "-- $bucket"
      $bench $json s3 --endpoint "$endpoint" --bucket $bucket --op $op --size $size --concurrency 16 --duration "$secs"
    done
  done
done
