"""Remote tiers (`objd admin tier`): added only when a probe works through
them, against a second objd and a real SeaweedFS S3 gateway; listed and
verified without ever showing a secret; wrong or revoked credentials,
missing buckets and unreachable endpoints refused with what to fix; kept
across a restart."""

import json
import subprocess

import pytest
from conftest import ACCESS_KEY, SECRET_KEY, Objd, Seaweed, free_port, make_client, objd_bin


def admin(server, *args):
    """`objd admin ARGS` against `server`: exit status and output."""
    out = subprocess.run([objd_bin(), "admin", "--endpoint", server.endpoint, *args],
                         env={"OBJD_ACCESS_KEY": ACCESS_KEY, "OBJD_SECRET_KEY": SECRET_KEY, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


def credentials(tmp_path, key, secret, name="creds"):
    f = tmp_path / name
    f.write_text(f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    return str(f)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiers")
    main = Objd(root / "main", log=root / "main.log")
    remote = Objd(root / "remote")
    seaweed = Seaweed(root / "seaweed")
    make_client(remote).create_bucket(Bucket="cold")
    seaweed.client().create_bucket(Bucket="colder")
    yield main, remote, seaweed, root
    for s in (main, remote, seaweed):
        s.stop()


def test_tiers_are_added_verified_listed_and_removed_without_showing_secrets(servers, tmp_path):
    main, remote, seaweed, root = servers
    creds = credentials(tmp_path, ACCESS_KEY, SECRET_KEY)
    rc, out = admin(main, "tier", "add", "warm", "--tier-endpoint", remote.endpoint, "--bucket", "cold",
                    "--prefix", "strata/", "--credentials-file", creds)
    assert rc == 0, out
    added = json.loads(out)
    assert added["name"] == "warm" and added["bucket"] == "cold" and added["prefix"] == "strata/"
    weed_creds = credentials(tmp_path, Seaweed.ACCESS_KEY, Seaweed.SECRET_KEY, "weed")
    rc, out = admin(main, "tier", "add", "glacier", "--tier-endpoint", seaweed.endpoint, "--bucket", "colder",
                    "--credentials-file", weed_creds)
    assert rc == 0, out
    rc, out = admin(main, "tier", "ls")
    assert rc == 0, out
    listed = {t["name"]: t for t in json.loads(out)}
    assert set(listed) == {"warm", "glacier"} and listed["glacier"]["endpoint"] == seaweed.endpoint
    for name in ("warm", "glacier"):
        rc, out = admin(main, "tier", "verify", name)
        assert rc == 0 and json.loads(out)["name"] == name, out
    # The probes left nothing behind.
    assert "Contents" not in make_client(remote).list_objects_v2(Bucket="cold")
    assert "Contents" not in seaweed.client().list_objects_v2(Bucket="colder")
    # A name is taken once.
    rc, out = admin(main, "tier", "add", "warm", "--tier-endpoint", remote.endpoint, "--bucket", "cold",
                    "--credentials-file", creds)
    assert rc != 0 and "TierExists" in out
    # Secrets appear in no answer and no log line.
    assert SECRET_KEY not in admin(main, "tier", "ls")[1]
    assert Seaweed.SECRET_KEY not in admin(main, "tier", "ls")[1]
    log = (root / "main.log").read_text()
    assert SECRET_KEY not in log and Seaweed.SECRET_KEY not in log
    # Removed: gone from the list, and verifying it says so.
    rc, out = admin(main, "tier", "remove", "glacier")
    assert rc == 0, out
    assert [t["name"] for t in json.loads(admin(main, "tier", "ls")[1])] == ["warm"]
    rc, out = admin(main, "tier", "verify", "glacier")
    assert rc != 0 and "NoSuchTier" in out


def test_tiers_that_cannot_work_are_refused_with_what_to_fix(servers, tmp_path):
    main, remote, seaweed, _ = servers
    good = credentials(tmp_path, Seaweed.ACCESS_KEY, Seaweed.SECRET_KEY, "good")
    cases = [
        ("bad-secret", seaweed.endpoint, "colder", credentials(tmp_path, Seaweed.ACCESS_KEY, "wrong-secret", "bad"),
         "check the credentials given for the tier"),
        # (SeaweedFS makes a missing bucket on the first write: objd does not.)
        ("no-bucket", remote.endpoint, "no-such-bucket", credentials(tmp_path, ACCESS_KEY, SECRET_KEY, "objd"),
         "bucket does not exist there"),
        ("down", f"http://127.0.0.1:{free_port()}", "colder", good, "unreachable"),
        ("Bad_Name", seaweed.endpoint, "colder", good, "a-z, 0-9 and -"),
    ]
    for name, endpoint, bucket, creds, says in cases:
        rc, out = admin(main, "tier", "add", name, "--tier-endpoint", endpoint, "--bucket", bucket,
                        "--credentials-file", creds)
        assert rc != 0 and says in out, (name, out)
    listed = [t["name"] for t in json.loads(admin(main, "tier", "ls")[1])]
    assert not set(listed) & {c[0] for c in cases}

    # Credentials revoked after the tier was added: verify says so, the
    # tier stays until an operator changes it.
    user = json.loads(remote.admin("user", "add", "tier-writer"))
    policy = tmp_path / "cold.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::cold", "arn:aws:s3:::cold/*"]}]}))
    remote.admin("policy", "add", "cold-rw", str(policy))
    remote.admin("policy", "attach", "cold-rw", "--user", "tier-writer")
    creds = credentials(tmp_path, user["access_key"], user["secret_key"], "user")
    rc, out = admin(main, "tier", "add", "revoked", "--tier-endpoint", remote.endpoint, "--bucket", "cold",
                    "--credentials-file", creds)
    assert rc == 0, out
    remote.admin("user", "remove", "tier-writer")
    rc, out = admin(main, "tier", "verify", "revoked")
    assert rc != 0 and "InvalidAccessKeyId" in out and "check the credentials given for the tier" in out, out
    assert "revoked" in [t["name"] for t in json.loads(admin(main, "tier", "ls")[1])]


def test_tiers_outlive_a_restart(servers, tmp_path):
    main, remote, _, root = servers
    creds = credentials(tmp_path, ACCESS_KEY, SECRET_KEY)
    rc, out = admin(main, "tier", "add", "durable", "--tier-endpoint", remote.endpoint, "--bucket", "cold",
                    "--credentials-file", creds)
    assert rc == 0, out
    main.stop()
    again = Objd(root / "main", log=root / "main-again.log")
    try:
        rc, out = admin(again, "tier", "verify", "durable")
        assert rc == 0, out
    finally:
        again.stop()
