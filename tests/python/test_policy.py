"""Bucket policies and anonymous access: nothing is readable without
credentials unless a bucket policy grants it, and only what it grants."""

import json
import subprocess
import urllib.error
import urllib.request

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError
from conftest import make_client


def error_code(exc):
    return exc.value.response["Error"]["Code"]


def anonymous_get(objd, path):
    try:
        with urllib.request.urlopen(f"{objd.endpoint}/{path}") as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_anonymous_access_follows_the_bucket_policy(objd, s3):
    s3.create_bucket(Bucket="site")
    s3.put_object(Bucket="site", Key="public/index.html", Body=b"<h1>hello</h1>")
    s3.put_object(Bucket="site", Key="public/secret-draft.html", Body=b"draft")
    s3.put_object(Bucket="site", Key="private/keys.txt", Body=b"do not share")
    anon = make_client(objd, signature_version=UNSIGNED, retries={"max_attempts": 1})

    # Without a policy, anonymous requests get nothing.
    status, body = anonymous_get(objd, "site/public/index.html")
    assert status == 403 and b"AccessDenied" in body
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket="site")
    assert error_code(e) == "NoSuchBucketPolicy"

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/public/*"},
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::site"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::site/public/secret-*"},
        ],
    }
    s3.put_bucket_policy(Bucket="site", Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket="site")["Policy"]) == policy
    assert s3.get_bucket_policy_status(Bucket="site")["PolicyStatus"]["IsPublic"] is True

    status, body = anonymous_get(objd, "site/public/index.html")
    assert (status, body) == (200, b"<h1>hello</h1>")
    assert anonymous_get(objd, "site/public/secret-draft.html")[0] == 403
    assert anonymous_get(objd, "site/private/keys.txt")[0] == 403
    listed = anon.list_objects_v2(Bucket="site")
    assert len(listed["Contents"]) == 3
    # Granted reads do not grant writes, deletes or other buckets.
    with pytest.raises(ClientError) as e:
        anon.put_object(Bucket="site", Key="public/defaced.html", Body=b"x")
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        anon.delete_object(Bucket="site", Key="public/index.html")
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        anon.delete_objects(Bucket="site", Delete={"Objects": [{"Key": "public/index.html"}]})
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        anon.list_buckets()
    assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        anon.get_bucket_policy(Bucket="site")
    assert error_code(e) == "AccessDenied"
    assert s3.get_object(Bucket="site", Key="public/index.html")["Body"].read() == b"<h1>hello</h1>"

    # Policies objd could not enforce exactly (here: a condition key it does
    # not know) are refused, and change nothing.
    for bad in (
        "{not json",
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}]}),
        json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::site/*",
                        "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
                    }
                ]
            }
        ),
    ):
        with pytest.raises(ClientError) as e:
            s3.put_bucket_policy(Bucket="site", Policy=bad)
        assert error_code(e) == "MalformedPolicy"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert json.loads(s3.get_bucket_policy(Bucket="site")["Policy"]) == policy

    # Deleting the policy closes the bucket again.
    s3.delete_bucket_policy(Bucket="site")
    assert anonymous_get(objd, "site/public/index.html")[0] == 403


def test_aws_cli_sets_a_policy_and_curl_reads_anonymously(objd, tmp_path):
    import sys

    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::downloads/*"]}],
            }
        )
    )
    aws = [sys.executable, "-m", "awscli", "--endpoint-url", objd.endpoint]
    env = objd.client_env()
    run = lambda *a: subprocess.run([*aws, *a], env=env, capture_output=True, text=True, check=True)  # noqa: E731
    run("s3", "mb", "s3://downloads")
    src = tmp_path / "release.tar"
    src.write_bytes(b"release bytes" * 1000)
    run("s3", "cp", str(src), "s3://downloads/v1/release.tar")
    run("s3api", "put-bucket-policy", "--bucket", "downloads", "--policy", f"file://{policy}")
    out = tmp_path / "fetched.tar"
    r = subprocess.run(["curl", "-sS", "-f", "-o", str(out), f"{objd.endpoint}/downloads/v1/release.tar"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == src.read_bytes()
