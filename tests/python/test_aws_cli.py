"""objd driven by the aws command-line tool, as an operator would."""

import filecmp
import json
import os
import subprocess
import sys

from conftest import make_tree

# The aws CLI as installed by pip, run by the interpreter running the tests.
AWS = [sys.executable, "-m", "awscli"]


def aws(objd, *args, check=True):
    cmd = [*AWS, "--endpoint-url", objd.endpoint, "--no-progress" if args[0] == "s3" and args[1] in ("cp", "sync") else None, *args]
    cmd = [c for c in cmd if c is not None]
    r = subprocess.run(cmd, env=objd.client_env(), capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {r.stderr}")
    return r


def test_sync_a_tree_up_and_back(objd, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    aws(objd, "s3", "mb", "s3://cli-sync")
    aws(objd, "s3", "sync", str(src), "s3://cli-sync/tree")
    listing = aws(objd, "s3", "ls", "--recursive", "s3://cli-sync/tree/").stdout
    for rel in files:
        assert f"tree/{rel}" in listing, rel
    dst = tmp_path / "dst"
    aws(objd, "s3", "sync", "s3://cli-sync/tree", str(dst))
    for rel in files:
        assert filecmp.cmp(src / rel, dst / rel, shallow=False), rel
    # A second sync has nothing to do.
    again = aws(objd, "s3", "sync", str(src), "s3://cli-sync/tree").stdout
    assert again.strip() == ""
    # s3api: head-object and list-objects-v2 with a delimiter.
    head = json.loads(aws(objd, "s3api", "head-object", "--bucket", "cli-sync", "--key", "tree/big/large.bin").stdout)
    assert head["ContentLength"] == 20 * 1024 * 1024
    out = json.loads(
        aws(objd, "s3api", "list-objects-v2", "--bucket", "cli-sync", "--prefix", "tree/", "--delimiter", "/").stdout
    )
    assert sorted(p["Prefix"] for p in out["CommonPrefixes"]) == ["tree/big/", "tree/nested/"]
    # Removing everything, then the bucket.
    aws(objd, "s3", "rm", "--recursive", "s3://cli-sync/tree")
    aws(objd, "s3", "rb", "s3://cli-sync")
    r = aws(objd, "s3", "ls", "s3://cli-sync", check=False)
    assert r.returncode != 0 and "NoSuchBucket" in r.stderr


def test_errors_surface_with_s3_codes(objd):
    r = aws(objd, "s3api", "get-object", "--bucket", "no-such-bucket", "--key", "k", "/dev/null", check=False)
    assert r.returncode != 0 and "NoSuchBucket" in r.stderr
    aws(objd, "s3", "mb", "s3://cli-err")
    r = aws(objd, "s3api", "head-object", "--bucket", "cli-err", "--key", "missing", check=False)
    assert r.returncode != 0 and "404" in r.stderr
    env = objd.client_env()
    env["AWS_SECRET_ACCESS_KEY"] = "wrong-secret"
    r = subprocess.run(
        [*AWS, "--endpoint-url", objd.endpoint, "s3", "ls", "s3://cli-err"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "SignatureDoesNotMatch" in r.stderr
