#!/usr/bin/env bash
# What pools and remote tiers cost, in one run on this machine: one objd
# over 6 drives as 4+2 with a capacity pool of 6 more drives (4+2) and a
# remote tier that is a second objd (4 drives) on the same machine,
# OBJECTS objects of SIZE (default 32 of 8 MiB):
#   - PUT into the capacity pool (storage class CAPACITY) against a PUT
#     into the namespace pool
#   - transition throughput: one lifecycle pass moving all of them to the
#     tier (the pass's own time, from its log line), against the baseline
#     of a plain copy of the same bytes between the same endpoints (GET
#     from objd, PUT to the tier's server, one object at a time, as a
#     pass moves them)
#   - the same for a pass moving them to the capacity pool
#   - GET of a moved object through objd against a direct GET of the
#     same bytes from the tier's server, and against a GET of an object
#     kept local or in the capacity pool; whole objects and 4 KiB ranges
# Usage: scripts/bench-tier.sh  (OBJECTS=N SIZE_MIB=M to change the set)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"
objects=${OBJECTS:-32}
size_mib=${SIZE_MIB:-8}

export AWS_ACCESS_KEY_ID=bench-admin AWS_SECRET_ACCESS_KEY=bench-secret-key
export OBJD_ACCESS_KEY=$AWS_ACCESS_KEY_ID OBJD_SECRET_KEY=$AWS_SECRET_ACCESS_KEY
start() { # NAME DRIVES ARGS...: starts an objd; its endpoint in $endpoint
  local name=$1 n=$2
  shift 2
  OBJD_LOG=info OBJD_LOG_FORMAT=json $objd server "$work/$name/d{1...$n}" --address 127.0.0.1:0 --scanner-interval 0 "$@" \
    > "$work/$name.out" 2> "$work/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/$name.out" 2>/dev/null && break; sleep 0.1; done
  endpoint=$(sed -n 's/^objd listening on //p' "$work/$name.out")
}
start main 6 --parity EC:2 --lifecycle-day-seconds 1 --pool "capacity=$work/main/h{1...6}" \
  --pool-parity capacity=EC:2
main=$endpoint
start remote 4
remote=$endpoint
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$work/tier.creds"
python3 - "$remote" <<'PY'
import boto3, sys
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1").create_bucket(Bucket="cold")
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1").create_bucket(Bucket="copy")
PY
$objd admin --endpoint "$main" tier add warm --tier-endpoint "$remote" --bucket cold \
  --credentials-file "$work/tier.creds" > /dev/null

python3 - "$main" "$remote" "$objects" "$size_mib" "$work/main.log" "${pids[0]}" "${pids[1]}" <<'PY'
import boto3, json, os, random, resource, sys, time
from botocore.config import Config

main_ep, remote_ep, n, mib, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
server_pids = {"objd": int(sys.argv[6]), "tier": int(sys.argv[7])}

def cpu():
    """CPU seconds so far of each server and of this client."""
    out = {}
    for name, pid in server_pids.items():
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        out[name] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    r = resource.getrusage(resource.RUSAGE_SELF)
    out["client"] = r.ru_utime + r.ru_stime
    return out
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
main = boto3.client("s3", endpoint_url=main_ep, region_name="us-east-1", config=cfg)
remote = boto3.client("s3", endpoint_url=remote_ep, region_name="us-east-1", config=cfg)
size = mib << 20
total = n * size / 2**20
main.create_bucket(Bucket="hot")
body = os.urandom(size)
def puts(prefix, **extra):
    t0 = time.time()
    for i in range(n):
        main.put_object(Bucket="hot", Key=f"{prefix}/{i}", Body=body[i:] + body[:i], **extra)
    return total / (time.time() - t0)
for prefix in ("t", "p"):
    puts(prefix)
put_local = puts("l")
put_pool = puts("c", StorageClass="CAPACITY")
print(f"== {n} objects of {mib} MiB ({total:.0f} MiB) each to move to the tier and to the pool, "
      "to keep local, and written to the pool")
print(f"PUT: namespace pool {put_local:.1f} MiB/s, capacity pool {put_pool:.1f} MiB/s "
      f"({put_pool / put_local:.2f}x)")

# Baseline: the same bytes copied between the same endpoints, one object
# at a time.
t0 = time.time()
for i in range(n):
    data = main.get_object(Bucket="hot", Key=f"t/{i}")["Body"].read()
    remote.put_object(Bucket="copy", Key=f"{i}", Body=data)
copy_s = time.time() - t0
print(f"plain copy (GET from objd, PUT to the tier's server): {copy_s:.2f} s, {total / copy_s:.1f} MiB/s")

time.sleep(2)
main.put_bucket_lifecycle_configuration(Bucket="hot", LifecycleConfiguration={"Rules": [
    {"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "t/"},
     "Transitions": [{"Days": 0, "StorageClass": "WARM"}]}]})
def passes_moving(seen, where):
    """Waits for the lifecycle passes after the first `seen` to move n
    objects; their count and the seconds they took."""
    deadline = time.time() + 180
    while True:
        passes = [json.loads(l) for l in open(log) if '"lifecycle pass"' in l][seen:]
        moved = sum(p.get("transitioned", 0) for p in passes)
        if moved >= n or time.time() > deadline:
            break
        time.sleep(0.5)
    assert moved == n, f"moved {moved} of {n} to {where}"
    return seen + len(passes), sum(p["seconds"] for p in passes if p.get("transitioned", 0))
seen, secs = passes_moving(0, "the tier")
print(f"transition (lifecycle passes moving them): {secs:.2f} s, {total / secs:.1f} MiB/s, "
      f"{copy_s / secs:.2f}x the plain copy")

# The same to the capacity pool: the baseline is a copy of the bytes
# within objd (GET, then PUT with the pool's class), one at a time.
t0 = time.time()
for i in range(n):
    data = main.get_object(Bucket="hot", Key=f"p/{i}")["Body"].read()
    main.put_object(Bucket="hot", Key=f"x/{i}", Body=data, StorageClass="CAPACITY")
pcopy_s = time.time() - t0
main.put_bucket_lifecycle_configuration(Bucket="hot", LifecycleConfiguration={"Rules": [
    {"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "t/"},
     "Transitions": [{"Days": 0, "StorageClass": "WARM"}]},
    {"ID": "capacity", "Status": "Enabled", "Filter": {"Prefix": "p/"},
     "Transitions": [{"Days": 0, "StorageClass": "CAPACITY"}]}]})
_, psecs = passes_moving(seen, "the pool")
print(f"plain copy into the pool (GET, PUT with class CAPACITY): {pcopy_s:.2f} s, {total / pcopy_s:.1f} MiB/s")
print(f"transition to the pool (lifecycle passes moving them): {psecs:.2f} s, {total / psecs:.1f} MiB/s, "
      f"{pcopy_s / psecs:.2f}x the plain copy")

def gets(client, bucket, key):
    c0, t0 = cpu(), time.time()
    for i in range(n):
        client.get_object(Bucket=bucket, Key=key(i))["Body"].read()
    s = time.time() - t0
    c1 = cpu()
    used = ", ".join(f"{k} {c1[k] - c0[k]:.2f}" for k in c1)
    return total / s, f"{s:.2f} s wall, CPU s: {used}"

def ranges(client, bucket, key, count=300):
    rnd = random.Random(7)
    t0 = time.time()
    for _ in range(count):
        i, at = rnd.randrange(n), rnd.randrange(size - 4096)
        client.get_object(Bucket=bucket, Key=key(i), Range=f"bytes={at}-{at + 4095}")["Body"].read()
    return (time.time() - t0) / count * 1000

assert main.head_object(Bucket="hot", Key="t/0")["StorageClass"] == "WARM"
assert main.head_object(Bucket="hot", Key="p/0")["StorageClass"] == "CAPACITY"
local, lc = gets(main, "hot", lambda i: f"l/{i}")
pooled, pc = gets(main, "hot", lambda i: f"p/{i}")
tiered, tc = gets(main, "hot", lambda i: f"t/{i}")
direct, dc = gets(remote, "copy", lambda i: f"{i}")
print(f"GET whole objects: local {local:.1f} MiB/s, in the tier through objd {tiered:.1f} MiB/s, "
      f"direct from the tier's server {direct:.1f} MiB/s ({tiered / direct:.2f}x direct)")
print(f"  local: {lc}\n  in the tier through objd: {tc}\n  direct: {dc}")
print(f"GET whole objects from the capacity pool: {pooled:.1f} MiB/s ({pooled / local:.2f}x local)\n  pool: {pc}")
rl = ranges(main, "hot", lambda i: f"l/{i}")
rp = ranges(main, "hot", lambda i: f"p/{i}")
rt = ranges(main, "hot", lambda i: f"t/{i}")
rd = ranges(remote, "copy", lambda i: f"{i}")
print(f"GET 4 KiB ranges: local {rl:.2f} ms, in the capacity pool {rp:.2f} ms, in the tier through objd {rt:.2f} ms, "
      f"direct from the tier's server {rd:.2f} ms")
PY
