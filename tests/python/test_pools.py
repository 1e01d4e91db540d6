"""Pools and storage classes, with boto3 and the aws CLI, against a real
objd with a namespace pool (4 drives) and a capacity pool (6 drives of its
own), a class alias (STANDARD_IA -> capacity), a second objd as a remote
tier, and lifecycle days of two seconds: writes land on the drives of the
pool their class names and nowhere else, read back the same whole and in
ranges, survive lost drives of their pool, change class by copy, and move
fast -> capacity -> cold by lifecycle rules; pools are checked at every
start."""

import json
import os
import subprocess
import time
import urllib.request

import pytest
from conftest import eventually, ACCESS_KEY, SECRET_KEY, Objd, make_client, objd_bin, outcome

DAY = 2  # seconds in a lifecycle day of the test server
ROOT_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # 32 bytes, base64


def pool_args(tmp):
    return ["--pool", f"capacity={tmp}/hdd/h{{1...6}}", "--pool-parity", "capacity=EC:2",
            "--storage-class", "STANDARD_IA=capacity"]


def admin(server, *args):
    out = subprocess.run([objd_bin(), "admin", "--endpoint", server.endpoint, *args],
                         env={"OBJD_ACCESS_KEY": ACCESS_KEY, "OBJD_SECRET_KEY": SECRET_KEY, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pools")
    keyfile = tmp / "root.key"
    keyfile.write_text(ROOT_KEY + "\n")
    main = Objd(tmp / "main", drives=4, log=tmp / "main.log",
                extra=[*pool_args(tmp / "main"), "--lifecycle-day-seconds", str(DAY),
                       "--kms-root-key-file", str(keyfile)])
    remote = Objd(tmp / "remote", drives=4)
    make_client(remote).create_bucket(Bucket="cold")
    creds = tmp / "cold.creds"
    creds.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")
    rc, out = admin(main, "tier", "add", "cold", "--tier-endpoint", remote.endpoint, "--bucket", "cold",
                    "--credentials-file", str(creds))
    assert rc == 0, out
    try:
        yield {"main": main, "remote": remote, "tmp": tmp, "creds": creds}
    finally:
        main.stop()
        remote.stop()


@pytest.fixture(scope="module")
def s3(env):
    return make_client(env["main"])


def data_bytes(dirs):
    """Bytes of object data (shard files, not records) under drive dirs.
    Files that go while they are counted (compaction removing replaced
    data) count as gone."""
    total = 0
    for d in dirs:
        for root, _, files in os.walk(d):
            if "/data/" in root + "/":
                for f in files:
                    try:
                        total += os.path.getsize(os.path.join(root, f))
                    except FileNotFoundError:
                        pass
    return total


def read_if_there(path):
    """A file's bytes; nothing if it went meanwhile (compaction)."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return b""


def home_drives(env):
    return [env["tmp"] / "main" / f"d{i}" for i in range(1, 5)]


def pool_drives(env):
    return [env["tmp"] / "main" / "hdd" / f"h{i}" for i in range(1, 7)]


def storage_class(s3, bucket, key, version=None):
    args = {"VersionId": version} if version else {}
    return s3.head_object(Bucket=bucket, Key=key, **args).get("StorageClass", "STANDARD")


def test_writes_land_on_the_pool_their_class_names(env, s3):
    s3.create_bucket(Bucket="placed")
    home0, pool0 = data_bytes(home_drives(env)), data_bytes(pool_drives(env))
    body = os.urandom(4 * 1024 * 1024 + 11)
    s3.put_object(Bucket="placed", Key="ia", Body=body, StorageClass="STANDARD_IA", ContentType="text/csv",
                  Metadata={"owner": "ops"}, Tagging="team=web")
    s3.put_object(Bucket="placed", Key="cap", Body=body, StorageClass="CAPACITY")
    s3.put_object(Bucket="placed", Key="std", Body=body)
    # 4 MiB as 2+2 on the namespace pool: 8 MiB; twice as 4+2 on the pool.
    home1, pool1 = data_bytes(home_drives(env)), data_bytes(pool_drives(env))
    assert 1.9 * len(body) < home1 - home0 < 2.2 * len(body), (home0, home1)
    assert 2.8 * len(body) < pool1 - pool0 < 3.4 * len(body), (pool0, pool1)

    for key, cls in [("ia", "STANDARD_IA"), ("cap", "STANDARD_IA"), ("std", "STANDARD")]:
        assert storage_class(s3, "placed", key) == cls, key
        got = s3.get_object(Bucket="placed", Key=key)
        assert got["Body"].read() == body, key
    head = s3.head_object(Bucket="placed", Key="ia")
    assert head["ContentType"] == "text/csv" and head["Metadata"] == {"owner": "ops"}
    assert s3.get_object_tagging(Bucket="placed", Key="ia")["TagSet"] == [{"Key": "team", "Value": "web"}]
    for first, last in [(0, 0), (65_535, 65_537), (1_000_000, 3_000_000), (len(body) - 10, len(body) - 1)]:
        r = s3.get_object(Bucket="placed", Key="ia", Range=f"bytes={first}-{last}")["Body"].read()
        assert r == body[first:last + 1], (first, last)
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket="placed")["Contents"]}
    assert listed == {"cap": "STANDARD_IA", "ia": "STANDARD_IA", "std": "STANDARD"}
    attrs = s3.get_object_attributes(Bucket="placed", Key="cap", ObjectAttributes=["StorageClass"])
    assert attrs["StorageClass"] == "STANDARD_IA"
    # A class nothing here offers changes nothing.
    assert outcome(lambda: s3.put_object(Bucket="placed", Key="ia", Body=b"x", StorageClass="DEEP_ARCHIVE")) \
        == "InvalidStorageClass"
    assert s3.get_object(Bucket="placed", Key="ia")["Body"].read() == body


def test_multipart_uploads_copies_and_encrypted_objects_by_class(env, s3, tmp_path):
    s3.create_bucket(Bucket="moved")
    # The aws CLI uploads 20 MiB as a multipart upload.
    big = tmp_path / "big"
    big.write_bytes(os.urandom(20 * 1024 * 1024 + 3))
    cli = subprocess.run(["aws", "--endpoint-url", env["main"].endpoint, "s3", "cp", str(big), "s3://moved/big",
                          "--storage-class", "STANDARD_IA", "--only-show-errors"],
                         env=env["main"].client_env(), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert storage_class(s3, "moved", "big") == "STANDARD_IA"
    assert s3.get_object(Bucket="moved", Key="big")["Body"].read() == big.read_bytes()
    assert s3.head_object(Bucket="moved", Key="big")["ETag"].endswith('-3"')

    # A copy onto itself changes the class, both ways.
    body = os.urandom(300_000)
    s3.put_object(Bucket="moved", Key="doc", Body=body)
    pool0 = data_bytes(pool_drives(env))
    s3.copy_object(Bucket="moved", Key="doc", CopySource={"Bucket": "moved", "Key": "doc"},
                   StorageClass="STANDARD_IA")
    assert storage_class(s3, "moved", "doc") == "STANDARD_IA"
    assert data_bytes(pool_drives(env)) > pool0
    s3.copy_object(Bucket="moved", Key="doc", CopySource={"Bucket": "moved", "Key": "doc"}, StorageClass="STANDARD")
    assert storage_class(s3, "moved", "doc") == "STANDARD"
    assert s3.get_object(Bucket="moved", Key="doc")["Body"].read() == body
    # The pool's copy goes once nothing references it.
    assert eventually(lambda: data_bytes(pool_drives(env)) <= pool0)

    # Encrypted data reaches the pool's drives sealed.
    marker = b"POOL-PLAINTEXT-MARKER-" * 10_000
    s3.put_object(Bucket="moved", Key="sealed", Body=marker, StorageClass="STANDARD_IA",
                  ServerSideEncryption="AES256")
    assert s3.get_object(Bucket="moved", Key="sealed")["Body"].read() == marker
    for d in pool_drives(env):
        for root, _, files in os.walk(d):
            for f in files:
                assert b"POOL-PLAINTEXT-MARKER" not in read_if_there(os.path.join(root, f)), f


def test_a_pool_keeps_serving_with_drives_lost_up_to_its_parity(env, s3):
    s3.create_bucket(Bucket="durable")
    body = os.urandom(2 * 1024 * 1024 + 5)
    s3.put_object(Bucket="durable", Key="k", Body=body, StorageClass="CAPACITY")
    # Two of the pool's six drives lose all their data (EC:2).
    damaged = 0
    for d in pool_drives(env)[:2]:
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                if "/data/" in p:
                    with open(p, "r+b") as fh:
                        fh.seek(4096)
                        fh.write(b"\0" * 65536)
                    damaged += 1
    assert damaged >= 2
    assert s3.get_object(Bucket="durable", Key="k")["Body"].read() == body
    r = s3.get_object(Bucket="durable", Key="k", Range="bytes=100-200000")["Body"].read()
    assert r == body[100:200001]
    # The admin API shows the pool's drives, and a heal covers them.
    rc, out = admin(env["main"], "info")
    assert rc == 0, out
    info = json.loads(out)
    (pool,) = info["pools"]
    assert pool["pool"] == "capacity" and len(pool["sets"][0]["drives"]) == 6
    assert pool["sets"][0]["parity"] == 2
    # The pool's drives and sets are in the metrics, by pool.
    token = json.loads(env["main"].admin("metrics", "token"))["token"]
    req = urllib.request.Request(f"{env['main'].endpoint}/_strata/metrics",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        text = r.read().decode()
    online = [line for line in text.splitlines()
              if line.startswith("strata_drive_online{") and 'pool="capacity"' in line and line.endswith(" 1")]
    assert len(online) == 6, text
    assert 'strata_erasure_set_write_quorum{pool="capacity",set="0"} 4' in text, text
    assert 'strata_erasure_set_drives{pool="standard",set="0"} 4' in text
    rc, out = admin(env["main"], "heal")
    assert rc == 0, out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert lines[-1]["summary"]["repaired"] >= 2, lines[-1]
    # Healed: the damaged shards are whole again.
    for d in pool_drives(env)[:2]:
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                if "/data/" in p:
                    assert read_if_there(p)[4096:4096 + 65536] != b"\0" * 65536, p


def test_lifecycle_moves_fast_to_capacity_to_cold(env, s3):
    remote = make_client(env["remote"])
    s3.create_bucket(Bucket="aging")
    body = os.urandom(1024 * 1024 + 7)
    s3.put_object(Bucket="aging", Key="logs/a", Body=body, Metadata={"k": "v"})
    before = s3.head_object(Bucket="aging", Key="logs/a")
    home0 = data_bytes(home_drives(env))
    s3.put_bucket_lifecycle_configuration(Bucket="aging", LifecycleConfiguration={"Rules": [{
        "ID": "age", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
        "Transitions": [{"Days": 1, "StorageClass": "STANDARD_IA"}, {"Days": 4, "StorageClass": "COLD"}]}]})
    assert eventually(lambda: storage_class(s3, "aging", "logs/a") == "STANDARD_IA")
    assert s3.get_object(Bucket="aging", Key="logs/a")["Body"].read() == body
    assert eventually(lambda: data_bytes(home_drives(env)) < home0 - len(body))
    assert eventually(lambda: storage_class(s3, "aging", "logs/a") == "COLD")
    got = s3.get_object(Bucket="aging", Key="logs/a")
    assert got["StorageClass"] == "COLD" and got["Body"].read() == body
    assert s3.get_object(Bucket="aging", Key="logs/a", Range="bytes=500000-600000")["Body"].read() == \
        body[500000:600001]
    after = s3.head_object(Bucket="aging", Key="logs/a")
    for field in ("ETag", "ContentLength", "Metadata", "LastModified"):
        assert after[field] == before[field], field
    assert len(remote.list_objects_v2(Bucket="cold").get("Contents", [])) == 1
    # A lifecycle never moves data back to a warmer place.
    time.sleep(2 * DAY)
    assert storage_class(s3, "aging", "logs/a") == "COLD"
    # A transition to the namespace pool's class is refused.
    bad = {"Rules": [{"ID": "x", "Status": "Enabled", "Filter": {}, "Transitions": [
        {"Days": 1, "StorageClass": "STANDARD"}]}]}
    assert outcome(lambda: s3.put_bucket_lifecycle_configuration(Bucket="aging", LifecycleConfiguration=bad)) \
        == "InvalidStorageClass"


def test_pools_are_checked_at_every_start(env, tmp_path):
    rc, out = admin(env["main"], "tier", "add", "capacity", "--tier-endpoint", env["remote"].endpoint,
                    "--bucket", "cold", "--credentials-file", str(env["creds"]))
    assert rc != 0 and "pool" in out, out

    root = tmp_path / "srv"
    first = Objd(root, drives=4, extra=pool_args(root))
    c = make_client(first)
    c.create_bucket(Bucket="kept")
    c.put_object(Bucket="kept", Key="k", Body=b"in the pool", StorageClass="CAPACITY")
    first.stop()

    def start(*extra):
        return subprocess.run([objd_bin(), "server", f"{root}/d{{1...4}}", "--address", "127.0.0.1:0", *extra],
                              env={**os.environ, "OBJD_ACCESS_KEY": ACCESS_KEY, "OBJD_SECRET_KEY": SECRET_KEY},
                              capture_output=True, text=True, timeout=30)
    # Without the pool, or with other drives under its name: refused.
    out = start()
    assert out.returncode != 0 and "--pool capacity=" in out.stderr, out.stderr
    out = start("--pool", f"capacity={tmp_path}/other/o{{1...6}}")
    assert out.returncode != 0 and "holds its format" in out.stderr, out.stderr
    assert not list((tmp_path / "other").rglob("format.json")), "nothing written to the drives refused"
    foreign = Objd(tmp_path / "foreign", drives=6)
    foreign.stop()
    out = start("--pool", f"capacity={tmp_path}/foreign/d{{1...6}}")
    assert out.returncode != 0 and "belong to another pool" in out.stderr, out.stderr
    # The same pool again: the object reads back.
    again = Objd(root, drives=4, extra=pool_args(root))
    try:
        got = make_client(again).get_object(Bucket="kept", Key="k")
        assert got["Body"].read() == b"in the pool" and got["StorageClass"] == "STANDARD_IA"
    finally:
        again.stop()
