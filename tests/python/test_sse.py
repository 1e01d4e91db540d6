"""Server-side encryption with boto3 against a real objd: SSE-S3, SSE-KMS
with the built-in KMS (keys created, rotated and disabled with `objd
admin kms`), SSE-C over HTTPS, bucket default encryption, multipart,
copies between modes, versions, and the errors S3 gives; then a scan of
every file on every drive for the plaintexts written, and of the server's
debug log for the keys it was given."""

import base64
import hashlib
import json
import os
import pathlib

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from boto3.s3.transfer import TransferConfig

from conftest import ACCESS_KEY, SECRET_KEY, Ca, Objd, outcome

MARKER = b"SSE-PLAINTEXT-MARKER-51c9 "
ROOT_KEY = base64.b64encode(bytes(range(32))).decode()


def marked(n):
    return (MARKER * (n // len(MARKER) + 1))[:n]


def client(server, ca=None):
    return boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", verify=str(ca) if ca else None,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One HTTPS objd with the built-in KMS (debug log kept), and one plain
    objd without a KMS."""
    tmp = tmp_path_factory.mktemp("sse")
    ca = Ca(tmp / "ca")
    ca.issue(tmp / "certs", "IP:127.0.0.1")
    keyfile = tmp / "root.key"
    keyfile.write_text(ROOT_KEY + "\n")
    log = tmp / "objd.log"
    server = Objd(tmp / "drives", drives=4, log=log, env={"OBJD_LOG": "debug"},
                  extra=["--certs-dir", str(tmp / "certs"), "--kms-root-key-file", str(keyfile)])
    plain = Objd(tmp / "plain", drives=4)
    try:
        yield {"server": server, "s3": client(server, ca.pem), "ca": ca.pem, "log": log,
               "plain": plain, "plain_s3": client(plain), "tmp": tmp}
    finally:
        server.stop()
        plain.stop()


def kms(env, *args):
    return env["server"].admin("--ca-file", str(env["ca"]), "kms", *args)


def test_sse_s3_round_trips_with_s3_headers_and_ranges(env):
    s3 = env["s3"]
    s3.create_bucket(Bucket="s3mode")
    data = marked(300_000)
    put = s3.put_object(Bucket="s3mode", Key="a", Body=data, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    head = s3.head_object(Bucket="s3mode", Key="a")
    assert head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == len(data)
    got = s3.get_object(Bucket="s3mode", Key="a")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == data
    # Ranges inside one package, across package boundaries, and the tail.
    for first, last in [(0, 0), (65_500, 65_520), (1000, 200_000), (len(data) - 10, len(data) - 1)]:
        r = s3.get_object(Bucket="s3mode", Key="a", Range=f"bytes={first}-{last}")
        assert r["Body"].read() == data[first:last + 1]
    empty = s3.put_object(Bucket="s3mode", Key="empty", Body=b"", ServerSideEncryption="AES256")
    assert empty["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert s3.get_object(Bucket="s3mode", Key="empty")["Body"].read() == b""
    listed = s3.list_objects_v2(Bucket="s3mode")["Contents"]
    assert {o["Key"]: o["Size"] for o in listed} == {"a": len(data), "empty": 0}


def test_sse_kms_keys_rotation_and_disabling(env):
    s3 = env["s3"]
    s3.create_bucket(Bucket="kmsmode")
    kms(env, "key", "create", "app")
    ctx = base64.b64encode(json.dumps({"team": "storage"}).encode()).decode()
    data = marked(100_000)
    put = s3.put_object(Bucket="kmsmode", Key="k1", Body=data, ServerSideEncryption="aws:kms",
                        SSEKMSKeyId="app", SSEKMSEncryptionContext=ctx, BucketKeyEnabled=True)
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "app"
    assert put["BucketKeyEnabled"] is True
    assert put["ETag"] != '"%s"' % hashlib.md5(data).hexdigest(), "SSE-KMS ETags are not the MD5"
    head = s3.head_object(Bucket="kmsmode", Key="k1")
    assert head["SSEKMSKeyId"] == "app" and head["ETag"] == put["ETag"]
    # An ARN names the key too; a key that does not exist is refused.
    arn = "arn:aws:kms:us-east-1:000000000000:key/app"
    s3.put_object(Bucket="kmsmode", Key="k2", Body=b"by arn", ServerSideEncryption="aws:kms", SSEKMSKeyId=arn)
    assert outcome(lambda: s3.put_object(Bucket="kmsmode", Key="x", Body=b"x", ServerSideEncryption="aws:kms",
                                         SSEKMSKeyId="nope")) == "KMS.NotFoundException"
    # Rotation: old objects still open, new ones use version 2.
    rotated = json.loads(kms(env, "key", "rotate", "app"))
    assert rotated["version"] == 2
    s3.put_object(Bucket="kmsmode", Key="k3", Body=b"after rotation", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="app")
    assert s3.get_object(Bucket="kmsmode", Key="k1")["Body"].read() == data
    assert s3.get_object(Bucket="kmsmode", Key="k3")["Body"].read() == b"after rotation"
    keys = {k["name"]: k for k in json.loads(kms(env, "key", "ls"))}
    assert keys["app"]["version"] == 2 and keys["app"]["enabled"]
    # A disabled key neither seals nor opens; enabled again, all is back.
    kms(env, "key", "disable", "app")
    assert outcome(lambda: s3.get_object(Bucket="kmsmode", Key="k1")) == "KMS.DisabledException"
    assert outcome(lambda: s3.put_object(Bucket="kmsmode", Key="x", Body=b"x", ServerSideEncryption="aws:kms",
                                         SSEKMSKeyId="app")) == "KMS.DisabledException"
    kms(env, "key", "enable", "app")
    assert s3.get_object(Bucket="kmsmode", Key="k2")["Body"].read() == b"by arn"
    status = json.loads(kms(env, "status"))
    assert status["backend"] == "builtin" and status["online"] and status["default_key"] == "strata-default"


def sse_c(key):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def test_sse_c_needs_the_same_key_for_every_read(env):
    s3 = env["s3"]
    s3.create_bucket(Bucket="cmode")
    key, other = os.urandom(32), os.urandom(32)
    data = marked(200_000)
    put = s3.put_object(Bucket="cmode", Key="c", Body=data, **sse_c(key))
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    assert put["SSECustomerAlgorithm"] == "AES256" and put["SSECustomerKeyMD5"] == md5
    assert "ServerSideEncryption" not in put
    got = s3.get_object(Bucket="cmode", Key="c", Range="bytes=70000-139999", **sse_c(key))
    assert got["Body"].read() == data[70000:140000] and got["SSECustomerKeyMD5"] == md5
    assert s3.head_object(Bucket="cmode", Key="c", **sse_c(key))["ContentLength"] == len(data)
    # No key, a wrong key, a key for a plain object: S3's answers.
    assert outcome(lambda: s3.get_object(Bucket="cmode", Key="c")) == "InvalidRequest"
    assert outcome(lambda: s3.head_object(Bucket="cmode", Key="c")) == "400"
    assert outcome(lambda: s3.get_object(Bucket="cmode", Key="c", **sse_c(other))) == "AccessDenied"
    # Error bodies carry no key material.
    for bad in [sse_c(other), {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": other[:16]}]:
        try:
            s3.get_object(Bucket="cmode", Key="c", **bad)
            raise AssertionError("read with a wrong key")
        except ClientError as e:
            body = json.dumps(e.response, default=str)
            for secret in [base64.b64encode(other).decode(), base64.b64encode(other[:16]).decode(), other.hex()]:
                assert secret not in body
    assert outcome(lambda: s3.head_object(Bucket="cmode", Key="c", **sse_c(other))) == "403"
    s3.put_object(Bucket="cmode", Key="plain", Body=b"plain")
    assert outcome(lambda: s3.get_object(Bucket="cmode", Key="plain", **sse_c(key))) == "InvalidRequest"
    assert outcome(lambda: s3.put_object(Bucket="cmode", Key="x", Body=b"x", SSECustomerAlgorithm="AES128",
                                         SSECustomerKey=key)) == "InvalidEncryptionAlgorithmError"
    assert outcome(lambda: s3.put_object(Bucket="cmode", Key="x", Body=b"x", SSECustomerAlgorithm="AES256",
                                         SSECustomerKey=key[:16])) == "InvalidArgument"
    assert outcome(lambda: s3.put_object(Bucket="cmode", Key="x", Body=b"x", ServerSideEncryption="AES256",
                                         **sse_c(key))) == "InvalidArgument"
    # Copies between modes: SSE-C to SSE-S3, and back under another key.
    assert outcome(lambda: s3.copy_object(Bucket="cmode", Key="c2", CopySource="cmode/c")) == "InvalidRequest"
    s3.copy_object(Bucket="cmode", Key="s3copy", CopySource="cmode/c", ServerSideEncryption="AES256",
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key)
    assert s3.get_object(Bucket="cmode", Key="s3copy")["Body"].read() == data
    s3.copy_object(Bucket="cmode", Key="back", CopySource="cmode/s3copy", **sse_c(other))
    assert s3.get_object(Bucket="cmode", Key="back", **sse_c(other))["Body"].read() == data
    # Re-encrypting an object in place is a change S3 allows.
    s3.copy_object(Bucket="cmode", Key="c", CopySource="cmode/c", ServerSideEncryption="AES256",
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key)
    assert s3.head_object(Bucket="cmode", Key="c")["ServerSideEncryption"] == "AES256"


def test_multipart_uploads_encrypt_every_part(env, tmp_path):
    s3 = env["s3"]
    s3.create_bucket(Bucket="mpu")
    src = tmp_path / "big.bin"
    data = marked(13 * 1024 * 1024)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=2)
    s3.upload_file(str(src), "mpu", "kms.bin", Config=cfg,
                   ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "app"})
    head = s3.head_object(Bucket="mpu", Key="kms.bin")
    assert head["ServerSideEncryption"] == "aws:kms" and head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')
    out = tmp_path / "back.bin"
    s3.download_file("mpu", "kms.bin", str(out), Config=cfg)
    assert out.read_bytes() == data
    a = (5 << 20) - 7
    assert s3.get_object(Bucket="mpu", Key="kms.bin", Range=f"bytes={a}-{a + 99}")["Body"].read() == data[a:a + 100]
    assert s3.get_object(Bucket="mpu", Key="kms.bin", PartNumber=3)["Body"].read() == data[10 << 20:]
    # SSE-C: every UploadPart needs the key.
    key = os.urandom(32)
    up = s3.create_multipart_upload(Bucket="mpu", Key="c.bin", **sse_c(key))
    assert up["SSECustomerAlgorithm"] == "AES256"
    uid = up["UploadId"]
    assert outcome(lambda: s3.upload_part(Bucket="mpu", Key="c.bin", UploadId=uid, PartNumber=1,
                                          Body=data[:5 << 20])) == "InvalidRequest"
    p1 = s3.upload_part(Bucket="mpu", Key="c.bin", UploadId=uid, PartNumber=1, Body=data[:5 << 20], **sse_c(key))
    p2 = s3.upload_part_copy(Bucket="mpu", Key="c.bin", UploadId=uid, PartNumber=2,
                             CopySource="mpu/kms.bin", CopySourceRange="bytes=0-99", **sse_c(key))
    parts = [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]
    s3.complete_multipart_upload(Bucket="mpu", Key="c.bin", UploadId=uid, MultipartUpload={"Parts": parts})
    got = s3.get_object(Bucket="mpu", Key="c.bin", **sse_c(key))["Body"].read()
    assert got == data[:5 << 20] + data[:100]


def test_bucket_default_encryption_applies_to_writes_naming_none(env):
    s3 = env["s3"]
    s3.create_bucket(Bucket="dflt")
    assert outcome(lambda: s3.get_bucket_encryption(Bucket="dflt")) == "ServerSideEncryptionConfigurationNotFoundError"
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "app"},
            "BucketKeyEnabled": True}
    s3.put_bucket_encryption(Bucket="dflt", ServerSideEncryptionConfiguration={"Rules": [rule]})
    got = s3.get_bucket_encryption(Bucket="dflt")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert got["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "app"}
    put = s3.put_object(Bucket="dflt", Key="d", Body=marked(5000))
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "app"
    # A request's own choice wins over the default.
    assert s3.put_object(Bucket="dflt", Key="e", Body=b"e", ServerSideEncryption="AES256")["ServerSideEncryption"] == "AES256"
    bad = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "missing"}}
    assert outcome(lambda: s3.put_bucket_encryption(
        Bucket="dflt", ServerSideEncryptionConfiguration={"Rules": [bad]})) == "KMS.NotFoundException"
    s3.delete_bucket_encryption(Bucket="dflt")
    assert "ServerSideEncryption" not in s3.put_object(Bucket="dflt", Key="f", Body=b"f")
    assert s3.get_object(Bucket="dflt", Key="d")["Body"].read() == marked(5000)


def test_versions_keep_their_own_encryption(env):
    s3 = env["s3"]
    s3.create_bucket(Bucket="vers")
    s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
    key = os.urandom(32)
    v1 = s3.put_object(Bucket="vers", Key="k", Body=b"one", ServerSideEncryption="AES256")["VersionId"]
    v2 = s3.put_object(Bucket="vers", Key="k", Body=b"two", **sse_c(key))["VersionId"]
    v3 = s3.put_object(Bucket="vers", Key="k", Body=b"three")["VersionId"]
    assert s3.get_object(Bucket="vers", Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket="vers", Key="k", VersionId=v2, **sse_c(key))["Body"].read() == b"two"
    assert outcome(lambda: s3.get_object(Bucket="vers", Key="k", VersionId=v2)) == "InvalidRequest"
    assert s3.get_object(Bucket="vers", Key="k", VersionId=v3)["Body"].read() == b"three"


def test_without_kms_or_tls_encryption_is_refused_not_skipped(env):
    s3 = env["plain_s3"]
    s3.create_bucket(Bucket="nokms")
    assert outcome(lambda: s3.put_object(Bucket="nokms", Key="a", Body=b"a",
                                         ServerSideEncryption="AES256")) == "NotImplemented"
    assert outcome(lambda: s3.put_object(Bucket="nokms", Key="a", Body=b"a", **sse_c(os.urandom(32)))) == "InvalidRequest"
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    assert outcome(lambda: s3.put_bucket_encryption(
        Bucket="nokms", ServerSideEncryptionConfiguration={"Rules": [rule]})) == "NotImplemented"
    assert s3.list_objects_v2(Bucket="nokms")["KeyCount"] == 0, "nothing was stored"


def test_sse_kms_needs_the_callers_kms_grants(env):
    server, s3 = env["server"], env["s3"]
    s3.create_bucket(Bucket="kmsiam")
    s3.put_object(Bucket="kmsiam", Key="sealed", Body=b"sealed", ServerSideEncryption="aws:kms", SSEKMSKeyId="app")

    def policy(name, statements):
        f = env["tmp"] / f"{name}.json"
        f.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}))
        server.admin("--ca-file", str(env["ca"]), "policy", "add", name, str(f))

    s3_all = {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::kmsiam*"}
    policy("kmsiam-s3", [s3_all])
    policy("kmsiam-app", [{"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                           "Resource": "arn:aws:kms:::key/app"}])
    user = json.loads(server.admin("--ca-file", str(env["ca"]), "user", "add", "kmsuser"))
    server.admin("--ca-file", str(env["ca"]), "policy", "attach", "kmsiam-s3", "--user", "kmsuser")
    u = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=user["access_key"],
                     aws_secret_access_key=user["secret_key"], region_name="us-east-1", verify=str(env["ca"]),
                     config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    kms_put = lambda key: u.put_object(Bucket="kmsiam", Key="k", Body=b"k", ServerSideEncryption="aws:kms",
                                       SSEKMSKeyId=key)
    # S3 rights alone: SSE-S3 and plain objects, not a KMS key.
    assert outcome(lambda: kms_put("app")) == "AccessDenied"
    assert outcome(lambda: u.get_object(Bucket="kmsiam", Key="sealed")) == "AccessDenied"
    assert outcome(lambda: u.put_object(Bucket="kmsiam", Key="s", Body=b"s", ServerSideEncryption="AES256")) == "ok"
    server.admin("--ca-file", str(env["ca"]), "policy", "attach", "kmsiam-app", "--user", "kmsuser")
    assert outcome(lambda: kms_put("app")) == "ok"
    assert u.get_object(Bucket="kmsiam", Key="sealed")["Body"].read() == b"sealed"
    # The grant names one key only.
    kms(env, "key", "create", "other")
    assert outcome(lambda: kms_put("other")) == "AccessDenied"


def test_no_plaintext_on_drives_and_no_key_in_the_log(env):
    """Runs last in this module: every object written above used the
    marker, except on purpose the plain ones, which are removed first."""
    s3 = env["s3"]
    for bucket, key in [("cmode", "plain"), ("dflt", "f")]:
        s3.delete_object(Bucket=bucket, Key=key)
    customer = os.urandom(32)
    s3.put_object(Bucket="cmode", Key="last", Body=marked(50_000), **sse_c(customer))
    needle = MARKER.strip()
    found = []
    for p in pathlib.Path(env["server"].root).rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            found.append(str(p))
    assert found == [], "plaintext on the drives"
    # The scan finds plaintext where there is some (the plain server).
    env["plain_s3"].put_object(Bucket="nokms", Key="m", Body=marked(1000))
    assert any(needle in p.read_bytes() for p in pathlib.Path(env["plain"].root).rglob("*") if p.is_file())
    # Logged at debug level: the S3 library's request dumps would show
    # the headers (they carry the SSE-C key) were they not held back.
    log = pathlib.Path(env["log"]).read_text(errors="replace")
    assert "serving S3" in log
    for secret in [base64.b64encode(customer).decode(), ROOT_KEY, customer.hex()]:
        assert secret not in log
