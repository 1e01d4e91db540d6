"""objd driven by boto3, as Python applications use S3."""

import hashlib
import os
import urllib.request

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from conftest import make_client


def error_code(exc):
    return exc.value.response["Error"]["Code"]


def test_bucket_and_object_round_trip(s3):
    s3.create_bucket(Bucket="py-bucket")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["py-bucket"]
    s3.put_object(Bucket="py-bucket", Key="hello.txt", Body=b"hello", ContentType="text/plain", Metadata={"a": "b"})
    obj = s3.get_object(Bucket="py-bucket", Key="hello.txt")
    assert obj["Body"].read() == b"hello"
    assert obj["ContentType"] == "text/plain"
    assert obj["Metadata"] == {"a": "b"}
    assert obj["ETag"] == '"%s"' % hashlib.md5(b"hello").hexdigest()
    part = s3.get_object(Bucket="py-bucket", Key="hello.txt", Range="bytes=1-3")
    assert part["Body"].read() == b"ell"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="py-bucket", Key="nope")
    assert error_code(e) == "NoSuchKey"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # As S3's us-east-1: creating a bucket one owns again succeeds;
    # naming another region answers BucketAlreadyOwnedByYou.
    s3.create_bucket(Bucket="py-bucket")
    assert s3.get_object(Bucket="py-bucket", Key="hello.txt")["Body"].read() == b"hello"
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="py-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_code(e) == "BucketAlreadyOwnedByYou"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_multipart_upload_and_download_of_a_large_file(s3, tmp_path):
    s3.create_bucket(Bucket="py-large")
    src = tmp_path / "large.bin"
    data = os.urandom(23 * 1024 * 1024 + 123)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
    s3.upload_file(str(src), "py-large", "dir/large.bin", Config=cfg)
    head = s3.head_object(Bucket="py-large", Key="dir/large.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')
    dst = tmp_path / "back.bin"
    s3.download_file("py-large", "dir/large.bin", str(dst), Config=cfg)
    assert dst.read_bytes() == data


def test_paginated_listing_and_batch_delete(s3):
    s3.create_bucket(Bucket="py-list")
    keys = [f"p/{i:03d}" for i in range(250)] + ["q/x", "q/y/z"]
    for k in keys:
        s3.put_object(Bucket="py-list", Key=k, Body=k.encode())
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="py-list", PaginationConfig={"PageSize": 40})
    seen = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert seen == sorted(keys)
    top = s3.list_objects_v2(Bucket="py-list", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["p/", "q/"]
    v1 = s3.list_objects(Bucket="py-list", Prefix="q/", Delimiter="/")
    assert [o["Key"] for o in v1["Contents"]] == ["q/x"]
    assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["q/y/"]
    resp = s3.delete_objects(Bucket="py-list", Delete={"Objects": [{"Key": k} for k in keys[:200]]})
    assert len(resp["Deleted"]) == 200
    left = s3.list_objects_v2(Bucket="py-list")
    assert left["KeyCount"] == 52


def test_presigned_get_and_put_with_plain_http(objd, s3):
    # boto3 presigns with SigV2 by default and with SigV4 when asked: both work.
    v4 = make_client(objd, signature_version="s3v4")
    s3.create_bucket(Bucket="py-presign")
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": "py-presign", "Key": "p.txt"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"presigned body", method="PUT")
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    for client in (s3, v4):
        url = client.generate_presigned_url("get_object", Params={"Bucket": "py-presign", "Key": "p.txt"}, ExpiresIn=300)
        with urllib.request.urlopen(url) as r:
            assert r.read() == b"presigned body"
    expired = v4.generate_presigned_url("get_object", Params={"Bucket": "py-presign", "Key": "p.txt"}, ExpiresIn=1)
    import time

    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(expired)
    assert e.value.code == 403
    assert b"AccessDenied" in e.value.read()


def test_malformed_xml_is_refused_and_changes_nothing(objd, s3):
    s3.create_bucket(Bucket="py-xml")
    s3.put_object(Bucket="py-xml", Key="keep", Body=b"x")
    url = objd.endpoint + "/py-xml?delete"
    body = b"<Delete><Object><Key>keep</Key></Object"
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body)
    req.headers["Content-MD5"] = __import__("base64").b64encode(hashlib.md5(body).digest()).decode()
    creds = botocore.credentials.Credentials(s3._request_signer._credentials.access_key,
                                             s3._request_signer._credentials.secret_key)
    botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=body, method="POST", headers=dict(prepared.headers))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r)
    assert e.value.code == 400
    assert b"MalformedXML" in e.value.read()
    assert s3.get_object(Bucket="py-xml", Key="keep")["Body"].read() == b"x"


def test_empty_upload_with_expect_continue_does_not_poison_the_connection(objd, s3):
    """botocore sends `Expect: 100-continue` with an empty file body; the
    next request on that connection must still get its answer."""
    import io

    one_conn = make_client(objd, max_pool_connections=1, read_timeout=10, retries={"max_attempts": 1})
    one_conn.create_bucket(Bucket="py-expect")
    for i in range(3):
        one_conn.put_object(Bucket="py-expect", Key=f"empty-{i}", Body=io.BytesIO(b""))
        r = one_conn.put_object(Bucket="py-expect", Key=f"full-{i}", Body=io.BytesIO(b"x" * 100_000))
        assert r["ETag"] == '"%s"' % hashlib.md5(b"x" * 100_000).hexdigest()
    assert one_conn.get_object(Bucket="py-expect", Key="empty-2")["ContentLength"] == 0


def test_a_refused_upload_that_expected_continue_does_not_poison_the_connection(objd):
    """A PUT with `Expect: 100-continue` answered before its body is read
    (here refused: anonymous): the client may send the body anyway (botocore
    does when its wait for `100 Continue` ends), and those bytes must never
    be read as the start of the next request (where `xGET` made the next
    signed request fail with SignatureDoesNotMatch). objd closes such a
    connection after its answer."""
    import socket
    import urllib.parse

    host, port = urllib.parse.urlparse(objd.endpoint).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"PUT /nobody/k HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            assert chunk, "no answer"
            head += chunk
        status_line, _, rest = head.partition(b"\r\n")
        assert b" 403 " in status_line, head
        headers = rest.split(b"\r\n\r\n")[0].lower()
        assert b"connection: close" in headers, head
        # The body arrives late, then another request: nothing may answer it
        # as a request of its own.
        try:
            conn.sendall(b"xxxxGET /_strata/health/live HTTP/1.1\r\nHost: h\r\n\r\n")
            later = b""
            while chunk := conn.recv(4096):
                later += chunk
        except (BrokenPipeError, ConnectionResetError):
            later = b""
        assert b"HTTP/1.1" not in later.split(b"\r\n\r\n", 1)[-1], later


def test_versioned_overwrite_and_restore(objd, s3, tmp_path):
    s3.create_bucket(Bucket="py-versions")
    s3.put_bucket_versioning(Bucket="py-versions", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="py-versions")["Status"] == "Enabled"
    ids = [s3.put_object(Bucket="py-versions", Key="config.json", Body=f'{{"rev": {i}}}'.encode())["VersionId"] for i in range(3)]
    assert len(set(ids)) == 3
    # An accidental delete only adds a marker.
    marker = s3.delete_object(Bucket="py-versions", Key="config.json")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="py-versions", Key="config.json")
    assert error_code(e) == "NoSuchKey"
    pages = s3.get_paginator("list_object_versions").paginate(Bucket="py-versions", PaginationConfig={"PageSize": 2})
    versions, markers = [], []
    for p in pages:
        versions += p.get("Versions", [])
        markers += p.get("DeleteMarkers", [])
    assert sorted(v["VersionId"] for v in versions) == sorted(ids)
    assert [m["VersionId"] for m in markers] == [marker["VersionId"]]
    assert markers[0]["IsLatest"] is True
    # Restore revision 1 by copying that version over the key.
    s3.copy_object(Bucket="py-versions", Key="config.json", CopySource={"Bucket": "py-versions", "Key": "config.json", "VersionId": ids[1]})
    assert s3.get_object(Bucket="py-versions", Key="config.json")["Body"].read() == b'{"rev": 1}'
    assert s3.get_object(Bucket="py-versions", Key="config.json", VersionId=ids[0])["Body"].read() == b'{"rev": 0}'
    # Permanently deleting every version empties the bucket.
    for p in s3.get_paginator("list_object_versions").paginate(Bucket="py-versions"):
        for v in p.get("Versions", []) + p.get("DeleteMarkers", []):
            s3.delete_object(Bucket="py-versions", Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket="py-versions")


def test_presigned_put_and_get_shared_with_curl(objd, s3, tmp_path):
    import subprocess

    v4 = make_client(objd, signature_version="s3v4")
    s3.create_bucket(Bucket="py-curl")
    body = tmp_path / "upload.bin"
    body.write_bytes(os.urandom(3 * 1024 * 1024 + 1))
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": "py-curl", "Key": "shared/up load.bin"}, ExpiresIn=300)
    r = subprocess.run(["curl", "-sS", "-f", "-T", str(body), put_url], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    get_url = v4.generate_presigned_url("get_object", Params={"Bucket": "py-curl", "Key": "shared/up load.bin"}, ExpiresIn=300)
    out = tmp_path / "download.bin"
    r = subprocess.run(["curl", "-sS", "-f", "-o", str(out), get_url], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == body.read_bytes()
    # The URL grants exactly one operation on one key.
    other = get_url.replace("up%20load.bin", "other.bin")
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", other], capture_output=True, text=True)
    assert r.stdout == "403"


def test_list_multipart_uploads_pages_through_markers(s3):
    s3.create_bucket(Bucket="py-uploads")
    started = set()
    for key in ["a", "b", "b", "b", "c/d"]:
        started.add((key, s3.create_multipart_upload(Bucket="py-uploads", Key=key)["UploadId"]))
    pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket="py-uploads", PaginationConfig={"PageSize": 2})
    seen = []
    for p in pages:
        assert len(p.get("Uploads", [])) <= 2
        seen += [(u["Key"], u["UploadId"]) for u in p.get("Uploads", [])]
    assert len(seen) == len(started) and set(seen) == started
    assert [k for k, _ in seen] == sorted(k for k, _ in seen)
    for key, upload_id in started:
        s3.abort_multipart_upload(Bucket="py-uploads", Key=key, UploadId=upload_id)
    assert s3.list_multipart_uploads(Bucket="py-uploads").get("Uploads", []) == []
