"""Checksums sent in aws-chunked trailers, as current SDKs send them: the
value arrives after the body, and objd checks it before the object is
committed."""

import base64
import urllib.request
import zlib

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from conftest import ACCESS_KEY, SECRET_KEY


def chunked(body, trailer_name, trailer_value, chunk=64 * 1024):
    out = b""
    for i in range(0, len(body), chunk):
        part = body[i : i + chunk]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    out += b"0\r\n"
    if trailer_value is not None:
        out += f"{trailer_name}:{trailer_value}\r\n".encode()
    out += b"\r\n"
    return out


def put_with_trailer(objd, key, body, trailer_value, trailer_name="x-amz-checksum-crc32"):
    url = f"{objd.endpoint}/trailers/{key}"
    headers = {
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": trailer_name,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(body)),
    }
    data = chunked(body, trailer_name, trailer_value)
    req = AWSRequest(method="PUT", url=url, headers=headers, data=data)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    prepared = urllib.request.Request(url, data=data, method="PUT", headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(prepared) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_trailing_checksums_are_checked_before_commit(objd, s3):
    s3.create_bucket(Bucket="trailers")
    body = bytes(range(256)) * 1000
    status, _, headers = put_with_trailer(objd, "good", body, crc32_b64(body))
    assert status == 200
    head = s3.head_object(Bucket="trailers", Key="good", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(body)
    assert s3.get_object(Bucket="trailers", Key="good")["Body"].read() == body

    status, err, _ = put_with_trailer(objd, "bad", body, crc32_b64(b"something else"))
    assert status == 400 and b"<Code>BadDigest</Code>" in err
    status, err, _ = put_with_trailer(objd, "missing", body, None)
    assert status == 400 and b"<Code>InvalidRequest</Code>" in err
    # An overwrite whose trailer does not match leaves the old object.
    status, _, _ = put_with_trailer(objd, "good", b"replacement", crc32_b64(b"not it"))
    assert status == 400
    assert s3.get_object(Bucket="trailers", Key="good")["Body"].read() == body
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="trailers").get("Contents", [])]
    assert listed == ["good"]


# CRC32C and CRC64NVME need botocore's optional CRT extension; the Rust
# SDK tests cover them.
@pytest.mark.parametrize("algo", ["CRC32", "SHA1", "SHA256"])
def test_boto3_checksum_algorithms_round_trip(s3, algo):
    try:
        s3.create_bucket(Bucket="algos")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    body = b"checksummed " * 5000
    put = s3.put_object(Bucket="algos", Key=algo, Body=body, ChecksumAlgorithm=algo)
    assert put[f"Checksum{algo}"]
    got = s3.get_object(Bucket="algos", Key=algo, ChecksumMode="ENABLED")
    assert got[f"Checksum{algo}"] == put[f"Checksum{algo}"]
    assert got["Body"].read() == body
