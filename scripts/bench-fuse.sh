#!/usr/bin/env bash
# Measures fuse-mount against Debian's s3fs on the same objd and bucket, in
# one run, with direct S3 PUT/GET of the same size as the throughput
# baseline: sequential write and read of one file, 4 KiB random reads,
# creating and stat-ing small files, and reading two directories of many
# entries (written through S3 beforehand): one with `ls -l`, the other
# with readdir alone, each cold. The sequential read starts with the page
# cache dropped, as the cold direct GET does; the warm GET (objd's shards
# in the page cache) is reported beside it.
# Needs root, /dev/fuse, fusermount3 (fuse3) and s3fs.
# Usage: scripts/bench-fuse.sh [FILE_SIZE] [SMALL_FILES] [DIR_ENTRIES]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1GiB}
files=${2:-10000}
entries=${3:-100000}
cargo build --release --quiet -p objd -p fuse-mount -p strata-tests --bins
bench=target/release/strata-bench
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/strata-fuse-bench.XXXXXX")
port=19300
export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
export OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY
export STRATA_ACCESS_KEY=$AWS_ACCESS_KEY_ID STRATA_SECRET_KEY=$AWS_SECRET_ACCESS_KEY
cleanup() {
  for m in "$work/fuse" "$work/s3fs"; do fusermount3 -uz "$m" 2>/dev/null || true; done
  # A process already gone (fuse-mount exits when unmounted) must not end
  # the cleanup before the server is stopped and the scratch removed.
  if [[ -n "${fm:-}" ]]; then kill "$fm" 2>/dev/null || true; fi
  if [[ -n "${objd:-}" ]]; then kill "$objd" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/fuse" "$work/s3fs"
target/release/objd server "$work/d{1...6}" --parity EC:2 --address "127.0.0.1:$port" --log warn >/dev/null &
objd=$!
endpoint="http://127.0.0.1:$port"
sleep 1
python3 - "$endpoint" "$entries" <<'PY'
import sys, concurrent.futures, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  config=Config(max_pool_connections=32, s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="fusebench")
n = int(sys.argv[2])
with concurrent.futures.ThreadPoolExecutor(32) as ex:
    for d in ("many", "manyl"):
        list(ex.map(lambda i: s3.put_object(Bucket="fusebench", Key=f"{d}/f{i:07d}", Body=b""), range(n)))
PY
target/release/fuse-mount "$endpoint" fusebench "$work/fuse" &
fm=$!
echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" > "$work/passwd"; chmod 600 "$work/passwd"
s3fs fusebench "$work/s3fs" -o "url=$endpoint,use_path_request_style,passwd_file=$work/passwd"
sleep 2

echo "== direct S3 (baseline), one stream"
$bench s3 --endpoint "$endpoint" --bucket fusebench --op put --size "$size" --concurrency 1 --duration 10
$bench s3 --endpoint "$endpoint" --bucket fusebench --op get --size "$size" --concurrency 1 --objects 2 --once --drop-caches
$bench s3 --endpoint "$endpoint" --bucket fusebench --op get --size "$size" --concurrency 1 --duration 10 --objects 2
echo "== fuse-mount"
$bench fs --label fuse-mount --dir "$work/fuse/run" --size "$size" --files "$files" --readdir "$work/fuse/many" --ls-l "$work/fuse/manyl" --drop-caches
echo "== s3fs"
$bench fs --label s3fs --dir "$work/s3fs/run" --size "$size" --files "$files" --readdir "$work/s3fs/many" --ls-l "$work/s3fs/manyl" --drop-caches
