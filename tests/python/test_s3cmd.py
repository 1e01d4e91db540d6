"""objd driven by s3cmd (Debian's package), as an operator scripts it:
configuration in a file, never credentials on the command line."""

import os
import subprocess
import urllib.request

from conftest import ACCESS_KEY, SECRET_KEY, make_client, make_tree, same_tree


def s3cmd(objd, cfg, *args, check=True):
    r = subprocess.run(
        ["s3cmd", "-c", str(cfg), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"s3cmd {' '.join(args)} failed: {r.stdout}\n{r.stderr}")
    return r


def config(objd, tmp_path):
    host = objd.endpoint.removeprefix("http://")
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "\n".join(
            [
                "[default]",
                f"access_key = {ACCESS_KEY}",
                f"secret_key = {SECRET_KEY}",
                f"host_base = {host}",
                f"host_bucket = {host}",
                "use_https = False",
                "signature_v2 = False",
                "bucket_location = us-east-1",
                "multipart_chunk_size_mb = 5",
                "",
            ]
        )
    )
    os.chmod(cfg, 0o600)
    return cfg


def test_s3cmd_sync_multipart_copy_modify_and_signed_urls(objd, tmp_path):
    cfg = config(objd, tmp_path)
    src = tmp_path / "src"
    files = make_tree(src)
    s3cmd(objd, cfg, "mb", "s3://s3cmd-bucket")
    # The 20 MiB file goes up as a multipart upload in 5 MiB chunks.
    s3cmd(objd, cfg, "sync", f"{src}/", "s3://s3cmd-bucket/tree/")
    head = make_client(objd).head_object(Bucket="s3cmd-bucket", Key="tree/big/large.bin")
    assert head["ETag"].endswith('-4"'), head["ETag"]
    listing = s3cmd(objd, cfg, "ls", "--recursive", "s3://s3cmd-bucket/tree/").stdout
    for rel in files:
        assert f"s3://s3cmd-bucket/tree/{rel}" in listing, rel
    # Nothing to do the second time: s3cmd compares sizes and MD5 ETags
    # (for the multipart file, the MD5 it stored in metadata).
    again = s3cmd(objd, cfg, "sync", f"{src}/", "s3://s3cmd-bucket/tree/")
    assert "upload:" not in again.stdout
    dst = tmp_path / "dst"
    s3cmd(objd, cfg, "sync", "s3://s3cmd-bucket/tree/", f"{dst}/")
    assert same_tree(src, dst)

    # Server-side copy and move; modify rewrites metadata in place.
    s3cmd(objd, cfg, "cp", "s3://s3cmd-bucket/tree/a.txt", "s3://s3cmd-bucket/copies/a.txt")
    s3cmd(objd, cfg, "mv", "s3://s3cmd-bucket/copies/a.txt", "s3://s3cmd-bucket/moved/a.txt")
    listing = s3cmd(objd, cfg, "ls", "--recursive", "s3://s3cmd-bucket/").stdout
    assert "s3://s3cmd-bucket/moved/a.txt" in listing
    assert "s3://s3cmd-bucket/copies/a.txt" not in listing
    s3cmd(objd, cfg, "modify", "--add-header=Cache-Control:max-age=600", "s3://s3cmd-bucket/moved/a.txt")
    head = make_client(objd).head_object(Bucket="s3cmd-bucket", Key="moved/a.txt")
    assert head["CacheControl"] == "max-age=600"
    info = s3cmd(objd, cfg, "info", "s3://s3cmd-bucket/moved/a.txt").stdout
    assert "File size: 5" in info
    got = tmp_path / "moved.txt"
    s3cmd(objd, cfg, "get", "s3://s3cmd-bucket/moved/a.txt", str(got))
    assert got.read_bytes() == files["a.txt"]

    # A signed URL (SigV2 query string) fetched by a plain HTTP client.
    url = s3cmd(objd, cfg, "signurl", "s3://s3cmd-bucket/tree/nested/c d e.txt", "+300").stdout.strip()
    with urllib.request.urlopen(url) as r:
        assert r.read() == files["nested/c d e.txt"]

    # Recursive delete and bucket removal.
    s3cmd(objd, cfg, "del", "--recursive", "--force", "s3://s3cmd-bucket/")
    s3cmd(objd, cfg, "rb", "s3://s3cmd-bucket")
    r = s3cmd(objd, cfg, "ls", "s3://s3cmd-bucket", check=False)
    assert r.returncode != 0 and "NoSuchBucket" in r.stderr
