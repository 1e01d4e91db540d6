"""Deny by default, operation by operation: every S3 operation below is
sent by each kind of caller, and each gets the answer S3 gives it:
anonymous callers, bad signatures, expired presigned URLs, expired
temporary credentials and disabled users are refused with their own error
codes; a user without a grant gets AccessDenied; a user with one
succeeds; a service account narrowed to reads reads and is refused the
rest."""

import json
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY, Objd, outcome

BUCKET = "matrix"

# (operation, parameters, reads?) in an order that leaves what later
# operations need: every call of a row sees the same state.
OPERATIONS = [
    ("list_objects_v2", {"Bucket": BUCKET}, True),
    ("list_objects", {"Bucket": BUCKET}, True),
    ("list_object_versions", {"Bucket": BUCKET}, True),
    ("list_multipart_uploads", {"Bucket": BUCKET}, True),
    ("head_bucket", {"Bucket": BUCKET}, True),
    ("get_bucket_location", {"Bucket": BUCKET}, True),
    ("get_bucket_versioning", {"Bucket": BUCKET}, True),
    ("get_object", {"Bucket": BUCKET, "Key": "doc.txt"}, True),
    ("head_object", {"Bucket": BUCKET, "Key": "doc.txt"}, True),
    ("get_object_tagging", {"Bucket": BUCKET, "Key": "doc.txt"}, True),
    ("put_object", {"Bucket": BUCKET, "Key": "new.txt", "Body": b"new"}, False),
    ("copy_object", {"Bucket": BUCKET, "Key": "copy.txt", "CopySource": f"{BUCKET}/doc.txt"}, False),
    ("put_object_tagging", {"Bucket": BUCKET, "Key": "doc.txt",
                            "Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}, False),
    ("delete_object_tagging", {"Bucket": BUCKET, "Key": "doc.txt"}, False),
    ("create_multipart_upload", {"Bucket": BUCKET, "Key": "big.bin"}, False),
    ("put_bucket_versioning", {"Bucket": BUCKET, "VersioningConfiguration": {"Status": "Enabled"}}, False),
    ("put_bucket_tagging", {"Bucket": BUCKET, "Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}, False),
    ("put_bucket_cors", {"Bucket": BUCKET, "CORSConfiguration": {"CORSRules": [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}}, False),
    ("delete_objects", {"Bucket": BUCKET, "Delete": {"Objects": [{"Key": "gone.txt"}]}}, False),
    ("delete_object", {"Bucket": BUCKET, "Key": "gone.txt"}, False),
    ("create_bucket", {"Bucket": "matrix-new"}, False),
]


def s3(server, key=None, secret=None, token=None):
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    if key is None:
        config = Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token, config=config)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Objd(tmp_path_factory.mktemp("matrix") / "drives", extra=["--sts-min-duration", "1"])
    yield s
    s.stop()


def test_every_operation_by_every_kind_of_caller(server, tmp_path):
    root = s3(server, ACCESS_KEY, SECRET_KEY)

    def reset():
        # The same state before every row.
        for b in ("matrix-new",):
            try:
                root.delete_bucket(Bucket=b)
            except ClientError:
                pass
        try:
            root.create_bucket(Bucket=BUCKET)
        except ClientError:
            pass
        root.put_object(Bucket=BUCKET, Key="doc.txt", Body=b"doc")
        root.put_object(Bucket=BUCKET, Key="gone.txt", Body=b"gone")

    def policy(name, doc):
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(doc))
        server.admin("policy", "add", name, str(f))

    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    reads = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation",
        "s3:GetBucketVersioning", "s3:GetObject", "s3:GetObjectTagging"]}]}
    policy("everything", everything)
    policy("reads", reads)
    nobody = json.loads(server.admin("user", "add", "nobody"))
    allowed = json.loads(server.admin("user", "add", "allowed"))
    server.admin("policy", "attach", "everything", "--user", "allowed")
    disabled = json.loads(server.admin("user", "add", "disabled"))
    server.admin("policy", "attach", "everything", "--user", "disabled")
    server.admin("user", "disable", "disabled")
    f = tmp_path / "narrow.json"
    f.write_text(json.dumps(reads))
    narrow = json.loads(server.admin("svcacct", "add", "allowed", "--policy", str(f)))
    sts = boto3.client("sts", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id=allowed["access_key"], aws_secret_access_key=allowed["secret_key"],
                       config=Config(parameter_validation=False))
    expired = sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/x", RoleSessionName="matrix",
                              DurationSeconds=1)["Credentials"]
    time.sleep(max(0.0, expired["Expiration"].timestamp() - time.time()) + 1.1)

    callers = {
        "anonymous": (s3(server), lambda ok: "AccessDenied"),
        "bad signature": (s3(server, allowed["access_key"], "not-the-secret-key"),
                          lambda ok: "SignatureDoesNotMatch"),
        "expired session": (s3(server, expired["AccessKeyId"], expired["SecretAccessKey"], expired["SessionToken"]),
                            lambda ok: "ExpiredToken"),
        "user without grant": (s3(server, nobody["access_key"], nobody["secret_key"]), lambda ok: "AccessDenied"),
        "user with grant": (s3(server, allowed["access_key"], allowed["secret_key"]), lambda ok: "ok"),
        "disabled user": (s3(server, disabled["access_key"], disabled["secret_key"]), lambda ok: "InvalidAccessKeyId"),
        "narrowed service account": (s3(server, narrow["access_key"], narrow["secret_key"]),
                                     lambda ok: "ok" if ok else "AccessDenied"),
    }
    wrong = []
    for who, (client, expect) in callers.items():
        reset()
        for op, params, is_read in OPERATIONS:
            got = outcome(lambda: getattr(client, op)(**params))
            want = expect(is_read)
            # HEAD answers have no body: only the status tells.
            if op.startswith("head_") and want != "ok":
                want = {"SignatureDoesNotMatch": "403", "AccessDenied": "403", "InvalidAccessKeyId": "403",
                        "ExpiredToken": "400"}[want]
            if got != want:
                wrong.append(f"{who} {op}: {got}, expected {want}")
    # ListBuckets: users list what they may; the others are refused.
    for who, (client, expect) in callers.items():
        got = outcome(client.list_buckets)
        want = expect(True) if who != "narrowed service account" else "AccessDenied"
        if got != want:
            wrong.append(f"{who} list_buckets: {got}, expected {want}")
    assert not wrong, "\n".join(wrong)


def test_expired_presigned_urls_are_refused(server):
    root = s3(server, ACCESS_KEY, SECRET_KEY)
    try:
        root.create_bucket(Bucket=BUCKET)
    except ClientError:
        pass
    root.put_object(Bucket=BUCKET, Key="doc.txt", Body=b"doc")
    signer = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    urls = {(op, method): signer.generate_presigned_url(op, Params=params, ExpiresIn=1)
            for op, method, params in (
                ("get_object", "GET", {"Bucket": BUCKET, "Key": "doc.txt"}),
                ("put_object", "PUT", {"Bucket": BUCKET, "Key": "late.txt"}),
                ("delete_object", "DELETE", {"Bucket": BUCKET, "Key": "doc.txt"}),
                ("list_objects_v2", "GET", {"Bucket": BUCKET}))}
    time.sleep(2.1)
    for (op, method), url in urls.items():
        req = urllib.request.Request(url, method=method, data=b"x" if method == "PUT" else None)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req)
        body = e.value.read()
        assert e.value.code == 403 and b"AccessDenied" in body, (op, body)
    assert root.get_object(Bucket=BUCKET, Key="doc.txt")["Body"].read() == b"doc"
    with pytest.raises(ClientError):
        root.head_object(Bucket=BUCKET, Key="late.txt")
