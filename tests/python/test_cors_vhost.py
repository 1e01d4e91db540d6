"""Browser access (CORS preflight and response headers from a bucket's CORS
rules) and virtual-host-style addressing with --domain."""

import socket
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from conftest import Objd, make_client


def request(url, method="GET", headers=None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_cors_rules_drive_preflight_and_responses(objd, s3):
    s3.create_bucket(Bucket="web")
    s3.put_object(Bucket="web", Key="app.js", Body=b"console.log(1)")
    s3.put_bucket_policy(
        Bucket="web",
        Policy='{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::web/*"}]}',
    )
    url = f"{objd.endpoint}/web/app.js"
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type, x-amz-meta-a"}
    # No rules: browsers are refused.
    status, _, body = request(url, "OPTIONS", preflight)
    assert status == 403 and b"CORSResponse" in body
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket="web")
    assert e.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"

    s3.put_bucket_cors(
        Bucket="web",
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": ["https://*.example.com"],
                    "AllowedMethods": ["GET", "PUT"],
                    "AllowedHeaders": ["content-type", "x-amz-*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 600,
                }
            ]
        },
    )
    rules = s3.get_bucket_cors(Bucket="web")["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://*.example.com"] and rules[0]["MaxAgeSeconds"] == 600

    status, headers, _ = request(url, "OPTIONS", preflight)
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert "PUT" in headers["access-control-allow-methods"]
    assert headers["access-control-max-age"] == "600"
    # Other origins, methods or headers are refused.
    for bad in (
        dict(preflight, Origin="https://evil.test"),
        dict(preflight, **{"Access-Control-Request-Method": "DELETE"}),
        dict(preflight, **{"Access-Control-Request-Headers": "authorization"}),
    ):
        assert request(url, "OPTIONS", bad)[0] == 403

    # The actual (anonymous, policy-allowed) GET carries the CORS headers.
    status, headers, body = request(url, "GET", {"Origin": "https://app.example.com"})
    assert status == 200 and body == b"console.log(1)"
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-expose-headers"] == "ETag"
    status, headers, _ = request(url, "GET", {"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in headers

    bad_rule = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket="web", CORSConfiguration=bad_rule)
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    s3.delete_bucket_cors(Bucket="web")
    assert request(url, "OPTIONS", preflight)[0] == 403


@pytest.fixture
def vhost_objd(tmp_path, monkeypatch):
    server = Objd(tmp_path / "drives", drives=4, extra=["--domain", "s3.strata.test"])
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        # *.s3.strata.test is this test's server.
        if isinstance(host, str) and host.endswith("s3.strata.test"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    yield server
    server.stop()


def test_virtual_host_style_addressing(vhost_objd):
    port = vhost_objd.endpoint.rsplit(":", 1)[1]

    class Named:
        endpoint = f"http://s3.strata.test:{port}"

    vhost = make_client(Named, s3={"addressing_style": "virtual"}, retries={"max_attempts": 1})
    path = make_client(vhost_objd, retries={"max_attempts": 1})
    vhost.create_bucket(Bucket="vbucket")
    vhost.put_object(Bucket="vbucket", Key="dir/file.txt", Body=b"via vhost")
    # The same object through path-style on the IP address.
    assert path.get_object(Bucket="vbucket", Key="dir/file.txt")["Body"].read() == b"via vhost"
    keys = [o["Key"] for o in vhost.list_objects_v2(Bucket="vbucket")["Contents"]]
    assert keys == ["dir/file.txt"]
    # Path-style on the domain name itself also works.
    named_path = make_client(Named, retries={"max_attempts": 1})
    assert named_path.get_object(Bucket="vbucket", Key="dir/file.txt")["Body"].read() == b"via vhost"
