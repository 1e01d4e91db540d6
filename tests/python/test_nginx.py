"""S3 through a real reverse proxy: Debian's nginx terminates TLS and
re-encrypts to objd's own HTTPS listener, configured from the annotations
of the Ingress in deploy/overlays/cluster (each ingress-nginx annotation is
turned into the nginx directive ingress-nginx makes of it; an annotation
this test does not know fails it, so what the Ingress asks for is what
was tested). Through it: SigV4 uploads with aws-chunked bodies and
trailing checksums (botocore sends them over HTTPS), presigned GET and PUT
URLs, and a 5 GiB multipart upload whose ETag proves every part arrived
whole."""

import base64
import hashlib
import os
import pathlib
import shutil
import ssl
import subprocess
import time
import urllib.request

import boto3
import pytest
import yaml
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from conftest import ACCESS_KEY, SECRET_KEY, Ca, Objd, free_port

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"
PREFIX = "nginx.ingress.kubernetes.io/"
GIB = 1 << 30
PART = 64 << 20


def ingress_annotations():
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "overlays" / "cluster")],
                         capture_output=True, text=True, check=True).stdout
    (ing,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Ingress"]
    return ing["metadata"]["annotations"]


def directives(annotations, ca_file):
    """The nginx directives ingress-nginx makes of the annotations, and
    whether the upstream is HTTPS."""
    out, https = [], False
    for key, value in sorted(annotations.items()):
        name = key.removeprefix(PREFIX)
        if name == "proxy-body-size":
            out.append(f"client_max_body_size {value};")
        elif name == "proxy-request-buffering":
            out.append(f"proxy_request_buffering {value};")
        elif name == "proxy-buffering":
            out.append(f"proxy_buffering {value};")
        elif name in ("proxy-read-timeout", "proxy-send-timeout"):
            out.append(f"{name.replace('-', '_')} {value}s;")
        elif name == "proxy-http-version":
            out.append(f"proxy_http_version {value};")
        elif name == "backend-protocol":
            https = value == "HTTPS"
        elif name == "proxy-ssl-verify":
            out.append(f"proxy_ssl_verify {value};")
        elif name == "proxy-ssl-secret":
            # The Secret's ca.crt, as ingress-nginx mounts it.
            out.append(f"proxy_ssl_trusted_certificate {ca_file};")
        elif name == "proxy-ssl-name":
            out.append(f"proxy_ssl_name {value};")
        elif name == "proxy-ssl-server-name":
            out.append(f"proxy_ssl_server_name {value};")
        else:
            pytest.fail(f"the test does not know what {key} makes nginx do")
    return out, https


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    if not shutil.which("nginx"):
        pytest.fail("nginx is missing (Debian package nginx)")
    tmp = tmp_path_factory.mktemp("nginx")
    ca = Ca(tmp / "ca")
    annotations = ingress_annotations()
    backend_name = annotations[PREFIX + "proxy-ssl-name"]
    ca.issue(tmp / "objd-certs", f"DNS:{backend_name},IP:127.0.0.1")
    ca.issue(tmp / "edge", "DNS:s3.strata.example.com,IP:127.0.0.1")
    server = Objd(tmp / "drives", drives=4, extra=["--certs-dir", str(tmp / "objd-certs"), "--parity", "EC:1"])
    upstream = server.endpoint.removeprefix("https://")
    lines, https = directives(annotations, ca.pem)
    assert https, "the Ingress of overlays/cluster re-encrypts to objd"
    port = free_port()
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (tmp / d).mkdir()
    conf = tmp / "nginx.conf"
    directives_text = "\n      ".join(lines)
    conf.write_text(f"""
user root;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  log_format s3 '$request_method $uri $status ce=$http_content_encoding trailer=$http_x_amz_trailer';
  access_log {tmp}/logs/access.log s3;
  upstream objd {{ server {upstream}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {tmp}/edge/public.crt;
    ssl_certificate_key {tmp}/edge/private.key;
    location / {{
      {directives_text}
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_pass https://objd;
    }}
  }}
}}
""")
    check = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(tmp)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"],
                             stderr=subprocess.STDOUT, stdout=open(tmp / "logs" / "nginx.out", "w"))
    endpoint = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    ctx = ssl.create_default_context(cafile=str(ca.pem))
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/_strata/health/live", context=ctx, timeout=2)
            break
        except Exception:  # noqa: BLE001 - retried until nginx answers
            assert time.monotonic() < deadline, (tmp / "logs" / "error.log").read_text()
            time.sleep(0.1)
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY, region_name="us-east-1", verify=str(ca.pem),
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                    read_timeout=300, signature_version="s3v4"))
    yield s3, endpoint, ctx, tmp
    nginx.terminate()
    nginx.wait()
    server.stop()


def access_log(tmp):
    return (tmp / "logs" / "access.log").read_text()


def test_chunked_uploads_with_trailers_and_presigned_urls_through_nginx(proxied):
    s3, endpoint, ctx, tmp = proxied
    s3.create_bucket(Bucket="proxied")
    body = os.urandom(3 << 20)
    s3.put_object(Bucket="proxied", Key="trailed", Body=body, ChecksumAlgorithm="SHA256")
    got = s3.get_object(Bucket="proxied", Key="trailed", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    log = access_log(tmp)
    assert any(l.startswith("PUT /proxied/trailed 200") and "aws-chunked" in l and
               "x-amz-checksum-sha256" in l for l in log.splitlines()), log
    # Presigned URLs: the signature covers the Host nginx passes on.
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "proxied", "Key": "presigned"},
                                        ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"by a presigned PUT", method="PUT")
    assert urllib.request.urlopen(req, context=ctx).status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "proxied", "Key": "presigned"},
                                        ExpiresIn=300)
    assert urllib.request.urlopen(get_url, context=ctx).read() == b"by a presigned PUT"
    tampered = get_url.replace("presigned", "other", 1)
    try:
        urllib.request.urlopen(tampered, context=ctx)
        raise AssertionError("a tampered presigned URL worked")
    except urllib.error.HTTPError as e:
        assert e.code == 403


def test_a_5_gib_multipart_upload_through_nginx(proxied, tmp_path):
    s3, _, _, tmp = proxied
    s3.create_bucket(Bucket="large")
    # A sparse file: 5 GiB of zeros without 5 GiB of disk.
    src = tmp_path / "five-gib"
    with open(src, "wb") as f:
        f.truncate(5 * GIB)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)
    s3.upload_file(str(src), "large", "five-gib", Config=config)
    head = s3.head_object(Bucket="large", Key="five-gib")
    assert head["ContentLength"] == 5 * GIB
    parts = 5 * GIB // PART
    part_md5 = hashlib.md5(bytes(PART)).digest()
    want = hashlib.md5(part_md5 * parts).hexdigest() + f"-{parts}"
    assert head["ETag"].strip('"') == want, "every part arrived whole"
    tail = s3.get_object(Bucket="large", Key="five-gib", Range=f"bytes={5 * GIB - 4096}-")["Body"].read()
    assert tail == bytes(4096)
    log = access_log(tmp)
    uploads = [l for l in log.splitlines() if l.startswith("PUT /large/five-gib 200")]
    assert len(uploads) == parts, f"{len(uploads)} part uploads logged"
    assert all("aws-chunked" in l for l in uploads), "parts streamed as aws-chunked with trailers"
