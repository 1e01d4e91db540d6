"""objd driven by rclone (Debian's package) as a backup or data-sync job
runs it: configured through the environment, credentials never on the
command line."""

import json
import subprocess

from conftest import ACCESS_KEY, SECRET_KEY, make_client, make_tree, same_tree


def rclone(objd, tmp_path, *args, check=True):
    env = dict(
        objd.client_env(),
        RCLONE_CONFIG=str(tmp_path / "rclone.conf"),
        RCLONE_CONFIG_STRATA_TYPE="s3",
        RCLONE_CONFIG_STRATA_PROVIDER="Other",
        RCLONE_CONFIG_STRATA_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_STRATA_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_STRATA_ENDPOINT=objd.endpoint,
        RCLONE_CONFIG_STRATA_REGION="us-east-1",
        RCLONE_CONFIG_STRATA_FORCE_PATH_STYLE="true",
    )
    # rclone's S3 SDK cannot combine a custom CA bundle with its own HTTP
    # transport, and the server here is plain HTTP anyway.
    env.pop("AWS_CA_BUNDLE", None)
    r = subprocess.run(["rclone", *args], env=env, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"rclone {' '.join(args)} failed: {r.stdout}\n{r.stderr}")
    return r


def test_rclone_sync_check_move_and_versions(objd, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    rc = lambda *a, **k: rclone(objd, tmp_path, *a, **k)  # noqa: E731
    rc("mkdir", "strata:rc-bucket")
    # Files over 5 MiB go up as multipart uploads in 5 MiB chunks.
    rc("sync", str(src), "strata:rc-bucket/tree", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M")
    head = make_client(objd).head_object(Bucket="rc-bucket", Key="tree/big/large.bin")
    assert head["ETag"].endswith('-4"'), head["ETag"]
    # rclone check compares sizes and MD5s of every file.
    rc("check", str(src), "strata:rc-bucket/tree")
    listed = json.loads(rc("lsjson", "-R", "--files-only", "strata:rc-bucket/tree").stdout)
    assert sorted(e["Path"] for e in listed) == sorted(files)
    # Nothing to transfer the second time.
    again = rc("sync", str(src), "strata:rc-bucket/tree", "-v")
    assert "Copied" not in again.stderr
    dst = tmp_path / "dst"
    rc("sync", "strata:rc-bucket/tree", str(dst))
    assert same_tree(src, dst)

    # Server-side copy and move.
    rc("copyto", "strata:rc-bucket/tree/a.txt", "strata:rc-bucket/copy/a.txt")
    rc("moveto", "strata:rc-bucket/copy/a.txt", "strata:rc-bucket/moved/a.txt")
    assert rc("cat", "strata:rc-bucket/moved/a.txt").stdout == files["a.txt"].decode()
    assert rc("lsf", "strata:rc-bucket/copy", check=False).stdout.strip() == ""

    # Versioning: an overwrite keeps the old version, which rclone lists.
    rc("backend", "versioning", "strata:rc-bucket", "Enabled")
    note = tmp_path / "note.txt"
    note.write_text("first")
    rc("copyto", str(note), "strata:rc-bucket/notes/note.txt")
    note.write_text("second, longer")
    rc("copyto", str(note), "strata:rc-bucket/notes/note.txt")
    versions = rc("lsf", "--s3-versions", "strata:rc-bucket/notes").stdout.split()
    assert "note.txt" in versions
    old = [v for v in versions if v.startswith("note-v")]
    assert len(old) == 1, versions
    # Copying the directory with its versions restores the old content.
    restored = tmp_path / "restored"
    rc("copy", "--s3-versions", "strata:rc-bucket/notes", str(restored))
    assert (restored / old[0]).read_text() == "first"
    assert (restored / "note.txt").read_text() == "second, longer"
    assert rc("cat", "strata:rc-bucket/notes/note.txt").stdout == "second, longer"

    # Cleaning up: purge removes every object (and version) and the bucket.
    rc("purge", "strata:rc-bucket/tree")
    assert rc("lsf", "strata:rc-bucket/tree", check=False).stdout.strip() == ""
