#!/usr/bin/env bash
# What identities cost per request, in one run on this machine: one objd
# over 6 drives as 4+2; 4 KiB PUT and GET at concurrency 16 signed with
#   - the root credentials (no policy is evaluated: the baseline),
#   - an IAM user's key (its policy, a group's and the bucket policy),
#   - a service account of that user narrowed by its own policy,
#   - temporary credentials from AssumeRole with a session policy,
#   - the user, its policy carrying conditions (aws:SourceIp, s3:prefix).
# Usage: scripts/bench-iam.sh [SECONDS_PER_TEST]  (JSON lines with JSON=1)
set -euo pipefail
source "$(dirname "$0")/bench-common.sh"
export OBJD_ACCESS_KEY=bench-admin OBJD_SECRET_KEY=bench-secret-key OBJD_LOG=warn
export OBJD_ENDPOINT=http://127.0.0.1:9100
$objd server "$work/d{1...6}" --address 127.0.0.1:9100 --scanner-interval 0 > "$work/objd.out" &
pids+=($!)
for _ in $(seq 300); do grep -q listening "$work/objd.out" 2>/dev/null && break; sleep 0.1; done

field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
cat > "$work/rw.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
  "Resource": ["arn:aws:s3:::bench", "arn:aws:s3:::bench/*"]}]}
JSON
cat > "$work/cond.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
  "Resource": ["arn:aws:s3:::bench", "arn:aws:s3:::bench/*"],
  "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                "StringLikeIfExists": {"s3:prefix": "get-*"}}}]}
JSON
$objd admin policy add rw "$work/rw.json" > /dev/null
$objd admin policy add cond "$work/cond.json" > /dev/null
user=$($objd admin user add bench-user)
$objd admin group add bench-group > /dev/null
$objd admin group add-member bench-group bench-user > /dev/null
$objd admin policy attach rw --group bench-group > /dev/null
svc=$($objd admin svcacct add bench-user --policy "$work/rw.json")
cuser=$($objd admin user add bench-cond)
$objd admin policy attach cond --user bench-cond > /dev/null
session=$(AWS_ACCESS_KEY_ID=$(field access_key <<< "$user") AWS_SECRET_ACCESS_KEY=$(field secret_key <<< "$user") \
  python3 - <<'PY'
import boto3, json
c = boto3.client("sts", endpoint_url="http://127.0.0.1:9100", region_name="us-east-1")
policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
r = c.assume_role(RoleArn="arn:aws:iam::000000000000:role/bench", RoleSessionName="bench", Policy=policy,
                  DurationSeconds=3600)["Credentials"]
print(json.dumps({"access_key": r["AccessKeyId"], "secret_key": r["SecretAccessKey"], "token": r["SessionToken"]}))
PY
)

load() {
  local label=$1 creds=$2
  local ak sk token=""
  if [[ $label == root ]]; then ak=$OBJD_ACCESS_KEY sk=$OBJD_SECRET_KEY
  else ak=$(field access_key <<< "$creds") sk=$(field secret_key <<< "$creds"); fi
  [[ $label == session ]] && token=$(field token <<< "$creds")
  for op in put get; do
    echo "-- $label $op 4KiB"
    AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_SESSION_TOKEN=$token \
      $bench $json s3 --endpoint "$OBJD_ENDPOINT" --bucket bench --op $op --size 4KiB --concurrency 16 --duration "$secs"
  done
}
# The bucket exists before the first load (users may not create buckets).
AWS_ACCESS_KEY_ID=$OBJD_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$OBJD_SECRET_KEY \
  $bench $json s3 --endpoint "$OBJD_ENDPOINT" --bucket bench --op put --size 4KiB --concurrency 1 --duration 0.5 > /dev/null
load root ""
load user "$user"
load svcacct "$svc"
load session "$session"
load conditions "$cuser"
