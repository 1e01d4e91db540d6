"""Answers applications were seen to depend on, each as S3 gives it:
object attributes, checksum and part headers, conditional writes and
304s, multipart retries and part races, presigned URL lifetimes, bucket
re-creation, delete markers, Object Lock settings, Expect: 100-continue,
CORS headers and the log lines of refused requests. boto3 where it shows
the answer, raw HTTP where it hides the wire."""

import base64
import hashlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY, Objd, outcome

MIB = 1 << 20


def client(server):
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, signature_version="s3v4")
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, config=config)


def raw(url, method="GET", headers=None, data=None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact")
    s = Objd(root / "drives", env={"OBJD_LOG": "objd=debug", "OBJD_LOG_FORMAT": "json"}, log=root / "objd.log")
    s.log_path = root / "objd.log"
    yield s
    s.stop()


@pytest.fixture(scope="module")
def s3(server):
    c = client(server)
    c.create_bucket(Bucket="exact")
    return c


def multipart(s3, key, parts, algorithm="SHA256"):
    up = s3.create_multipart_upload(Bucket="exact", Key=key, ChecksumAlgorithm=algorithm)
    done = []
    for n, body in enumerate(parts, 1):
        p = s3.upload_part(Bucket="exact", Key=key, UploadId=up["UploadId"], PartNumber=n, Body=body,
                           ChecksumAlgorithm=algorithm)
        done.append({"PartNumber": n, "ETag": p["ETag"], f"Checksum{algorithm}": p[f"Checksum{algorithm}"]})
    return up["UploadId"], done


def test_object_attributes_are_all_answered_and_parts_page(s3):
    s3.put_object(Bucket="exact", Key="simple", Body=b"simple body", ChecksumAlgorithm="CRC32")
    a = s3.get_object_attributes(Bucket="exact", Key="simple",
                                 ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    # S3 answers this ETag unquoted; objd quotes it as everywhere else.
    assert a["ETag"].strip('"') == hashlib.md5(b"simple body").hexdigest()
    assert a["ObjectSize"] == 11 and a["StorageClass"] == "STANDARD"
    assert "ChecksumCRC32" in a["Checksum"] and "ObjectParts" not in a
    upload, parts = multipart(s3, "multi", [b"a" * (5 * MIB), b"b" * (5 * MIB), b"c" * 10])
    r = s3.complete_multipart_upload(Bucket="exact", Key="multi", UploadId=upload, MultipartUpload={"Parts": parts})
    assert r["ChecksumType"] == "COMPOSITE" and r["ChecksumSHA256"].endswith("-3")
    attrs = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    a = s3.get_object_attributes(Bucket="exact", Key="multi", ObjectAttributes=attrs, MaxParts=2)
    assert a["ObjectSize"] == 10 * MIB + 10 and a["ETag"].strip('"').endswith("-3")
    page = a["ObjectParts"]
    assert (page["TotalPartsCount"], page["MaxParts"], page["IsTruncated"]) == (3, 2, True)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2] and page["NextPartNumberMarker"] == 2
    rest = s3.get_object_attributes(Bucket="exact", Key="multi", ObjectAttributes=attrs, MaxParts=2,
                                    PartNumberMarker=2)["ObjectParts"]
    assert [(p["PartNumber"], p["Size"]) for p in rest["Parts"]] == [(3, 10)] and rest["IsTruncated"] is False
    # A version by id, in a versioned bucket.
    s3.create_bucket(Bucket="exact-versions")
    s3.put_bucket_versioning(Bucket="exact-versions", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="exact-versions", Key="v", Body=b"one")["VersionId"]
    s3.put_object(Bucket="exact-versions", Key="v", Body=b"second")
    a = s3.get_object_attributes(Bucket="exact-versions", Key="v", VersionId=first, ObjectAttributes=attrs)
    assert (a["VersionId"], a["ObjectSize"]) == (first, 3)


def test_checksum_part_and_tag_headers(s3):
    upload, parts = multipart(s3, "headers", [b"x" * (5 * MIB), b"y"])
    s3.complete_multipart_upload(Bucket="exact", Key="headers", UploadId=upload, MultipartUpload={"Parts": parts})
    for call in (s3.head_object, s3.get_object):
        r = call(Bucket="exact", Key="headers", ChecksumMode="ENABLED")
        assert r["ChecksumType"] == "COMPOSITE" and "ChecksumSHA256" in r
        r = call(Bucket="exact", Key="headers", PartNumber=2)
        assert (r["PartsCount"], r["ContentLength"]) == (2, 1)
    s3.put_object_tagging(Bucket="exact", Key="headers", Tagging={"TagSet": [{"Key": "a", "Value": "1"},
                                                                            {"Key": "b", "Value": "2"}]})
    assert s3.get_object(Bucket="exact", Key="headers")["TagCount"] == 2
    head = s3.head_object(Bucket="exact", Key="headers")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    s3.put_object(Bucket="exact", Key="untagged", Body=b"u")
    head = s3.head_object(Bucket="exact", Key="untagged")
    assert "x-amz-tagging-count" not in head["ResponseMetadata"]["HTTPHeaders"]


def test_conditional_writes_and_not_modified_answers(s3):
    etag = s3.put_object(Bucket="exact", Key="cond", Body=b"v1")["ETag"]
    # If-None-Match with an ETag: refused while the object has it.
    assert outcome(lambda: s3.put_object(Bucket="exact", Key="cond", Body=b"x", IfNoneMatch=etag)) \
        == "PreconditionFailed"
    assert outcome(lambda: s3.put_object(Bucket="exact", Key="cond", Body=b"x", IfNoneMatch="*")) \
        == "PreconditionFailed"
    etag2 = s3.put_object(Bucket="exact", Key="cond", Body=b"v2", IfNoneMatch='"0123"', IfMatch=etag)["ETag"]
    assert outcome(lambda: s3.put_object(Bucket="exact", Key="cond", Body=b"x", IfMatch=etag)) \
        == "PreconditionFailed"
    upload, parts = multipart(s3, "cond", [b"m"])
    assert outcome(lambda: s3.complete_multipart_upload(Bucket="exact", Key="cond", UploadId=upload,
                                                        MultipartUpload={"Parts": parts}, IfNoneMatch=etag2)) \
        == "PreconditionFailed"
    s3.complete_multipart_upload(Bucket="exact", Key="cond", UploadId=upload, MultipartUpload={"Parts": parts},
                                 IfMatch=etag2)
    assert s3.get_object(Bucket="exact", Key="cond")["Body"].read() == b"m"
    # 304s say which version the client has.
    head = s3.head_object(Bucket="exact", Key="cond")
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as e:
            call(Bucket="exact", Key="cond", IfNoneMatch=head["ETag"])
        h = e.value.response["ResponseMetadata"]["HTTPHeaders"]
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
        assert h["etag"] == head["ETag"]
        assert h["last-modified"] == head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]


def test_multipart_part_lists_retries_and_reuploads(s3):
    up = s3.create_multipart_upload(Bucket="exact", Key="mp")["UploadId"]
    p1 = s3.upload_part(Bucket="exact", Key="mp", UploadId=up, PartNumber=1, Body=b"1" * (5 * MIB))["ETag"]
    p2 = s3.upload_part(Bucket="exact", Key="mp", UploadId=up, PartNumber=2, Body=b"2")["ETag"]
    # Uploaded again: the later upload is the part.
    p2b = s3.upload_part(Bucket="exact", Key="mp", UploadId=up, PartNumber=2, Body=b"2b")["ETag"]
    listed = s3.list_parts(Bucket="exact", Key="mp", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(1, p1), (2, p2b)]

    def complete(parts):
        return lambda: s3.complete_multipart_upload(Bucket="exact", Key="mp", UploadId=up,
                                                    MultipartUpload={"Parts": parts})

    assert outcome(complete([{"PartNumber": 2, "ETag": p2b}, {"PartNumber": 1, "ETag": p1}])) == "InvalidPartOrder"
    assert outcome(complete([{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}])) == "InvalidPart"
    assert outcome(complete([{"PartNumber": 1, "ETag": p1}, {"PartNumber": 3, "ETag": p2b}])) == "InvalidPart"
    assert outcome(complete([{"PartNumber": 1, "ETag": p1}, {"PartNumber": 1, "ETag": p1}])) == "InvalidPartOrder"
    assert outcome(complete([{"PartNumber": 1, "ETag": p2b}])) == "InvalidPart"
    good = [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2b}]
    first = complete(good)()
    # Asked again (the answer was lost): the same result.
    again = complete(good)()
    for k in ("ETag", "Bucket", "Key", "Location"):
        assert again[k] == first[k], k
    assert s3.get_object(Bucket="exact", Key="mp")["Body"].read() == b"1" * (5 * MIB) + b"2b"
    assert outcome(lambda: s3.complete_multipart_upload(
        Bucket="exact", Key="mp", UploadId="0" * 32, MultipartUpload={"Parts": good})) == "NoSuchUpload"


def test_presigned_lifetimes_are_checked_as_s3_checks_them(server, s3):
    s3.put_object(Bucket="exact", Key="signed", Body=b"s")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "exact", "Key": "signed"}, ExpiresIn=604800)
    assert raw(url)[0] == 200
    for expires, message in [(604801, "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
                             (-1, "X-Amz-Expires must be non-negative")]:
        bad = url.replace("X-Amz-Expires=604800", f"X-Amz-Expires={expires}")
        status, _, body = raw(bad)
        assert status == 400, body
        assert b"<Code>AuthorizationQueryParametersError</Code>" in body and message.encode() in body
    for expires in (0, 1):
        short = s3.generate_presigned_url("get_object", Params={"Bucket": "exact", "Key": "signed"},
                                          ExpiresIn=expires)
        if expires:
            time.sleep(expires + 1)
        status, _, body = raw(short)
        assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body


def test_delete_markers_and_object_lock_settings(s3):
    s3.create_bucket(Bucket="exact-suspended")
    s3.put_bucket_versioning(Bucket="exact-suspended", VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket="exact-suspended", Key="d", Body=b"1")
    for _ in range(2):
        r = s3.delete_object(Bucket="exact-suspended", Key="d")
        assert (r["DeleteMarker"], r["VersionId"]) == (True, "null")
    for version, status in ((None, 404), ("null", 405)):
        kwargs = {"VersionId": version} if version else {}
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="exact-suspended", Key="d", **kwargs)
        h = e.value.response["ResponseMetadata"]["HTTPHeaders"]
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert (h["x-amz-delete-marker"], h["x-amz-version-id"]) == ("true", "null")
    listed = s3.list_object_versions(Bucket="exact-suspended")
    assert len(listed["DeleteMarkers"]) == 1 and "Versions" not in listed

    s3.create_bucket(Bucket="exact-locked", ObjectLockEnabledForBucket=True)

    def lock(rule):
        return outcome(lambda: s3.put_object_lock_configuration(
            Bucket="exact-locked",
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}}))

    assert lock({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}) == "MalformedXML"
    assert lock({"Mode": "GOVERNANCE"}) == "MalformedXML"
    assert lock({"Days": 1}) == "MalformedXML"
    assert lock({"Mode": "SOMETIMES", "Days": 1}) == "MalformedXML"
    assert lock({"Mode": "GOVERNANCE", "Days": 0}) == "InvalidArgument"
    assert lock({"Mode": "COMPLIANCE", "Years": -1}) == "InvalidArgument"
    assert lock({"Mode": "GOVERNANCE", "Days": 2}) == "ok"
    assert outcome(lambda: s3.put_object_retention(
        Bucket="exact", Key="simple", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": "2030-01-01T00:00:00Z"})) \
        == "InvalidRequest"


def test_creating_an_owned_bucket_again_answers_as_us_east_1(s3):
    s3.put_object(Bucket="exact", Key="kept", Body=b"k")
    s3.create_bucket(Bucket="exact")
    assert s3.get_object(Bucket="exact", Key="kept")["Body"].read() == b"k"
    assert outcome(lambda: s3.create_bucket(Bucket="exact", CreateBucketConfiguration={
        "LocationConstraint": "eu-central-1"})) == "BucketAlreadyOwnedByYou"


def test_a_refused_upload_with_expect_continue_is_refused_before_its_body(server):
    host, port = server.endpoint.replace("http://", "").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as c:
        c.sendall(b"PUT /exact/anonymous HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        answer = c.recv(4096)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b"100 Continue" not in answer and b"<Code>AccessDenied</Code>" in answer


def test_cors_headers_for_preflights_and_presigned_requests(server, s3):
    s3.create_bucket(Bucket="exact-web")
    s3.put_bucket_cors(Bucket="exact-web", CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT", "HEAD"],
         "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag", "x-amz-version-id"], "MaxAgeSeconds": 300},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})
    origin = {"Origin": "https://app.example.com"}
    status, h, _ = raw(f"{server.endpoint}/exact-web/f.txt", "OPTIONS", dict(origin, **{
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "Content-Type, X-Amz-Date, x-amz-meta-owner"}))
    assert status == 200
    assert h["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert h["Access-Control-Allow-Methods"] == "GET, PUT, HEAD"
    assert h["Access-Control-Allow-Headers"] == "content-type, x-amz-date, x-amz-meta-owner"
    assert h["Access-Control-Expose-Headers"] == "ETag, x-amz-version-id"
    assert h["Access-Control-Max-Age"] == "300"
    assert h["Access-Control-Allow-Credentials"] == "true"
    assert h["Vary"] == "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
    # Presigned PUT and GET from that origin carry the headers.
    put = s3.generate_presigned_url("put_object", Params={"Bucket": "exact-web", "Key": "f.txt"})
    status, h, _ = raw(put, "PUT", origin, data=b"from the browser")
    assert status == 200 and h["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert h["Access-Control-Expose-Headers"] == "ETag, x-amz-version-id"
    get = s3.generate_presigned_url("get_object", Params={"Bucket": "exact-web", "Key": "f.txt"})
    status, h, body = raw(get, "GET", {"Origin": "https://other.example.org"})
    assert (status, body) == (200, b"from the browser")
    assert h["Access-Control-Allow-Origin"] == "*" and "Access-Control-Allow-Credentials" not in h
    status, _, body = raw(f"{server.endpoint}/exact-web/f.txt", "OPTIONS", {
        "Origin": "https://other.example.org", "Access-Control-Request-Method": "PUT"})
    assert status == 403 and b"<Code>AccessForbidden</Code>" in body


def test_refused_requests_are_logged_at_debug_and_never_as_errors(server, s3):
    assert outcome(lambda: s3.get_object(Bucket="exact", Key="no-such-key")) == "NoSuchKey"

    def entries():
        out = []
        for line in server.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out

    deadline = time.time() + 5
    while time.time() < deadline:
        refused = [e for e in entries() if e.get("code") == "NoSuchKey"]
        if refused:
            break
        time.sleep(0.1)
    assert refused and {e["level"] for e in refused} == {"DEBUG"}, refused
    assert (refused[0]["message"], refused[0]["status"], refused[0]["key"]) == ("request refused", 404, "no-such-key")
    assert not [e for e in entries() if e["level"] == "ERROR"]
