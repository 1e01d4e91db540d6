"""Browser uploads (POST object with an HTML form): a form signed with
boto3's generate_presigned_post, sent by hand and by a real browser
(Debian's chromium, headless, submitting a form a local web server
serves), with the policy's conditions enforced and refused as S3 refuses
them."""

import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from conftest import ACCESS_KEY, SECRET_KEY, Objd


def client(server, signed=True):
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    if not signed:
        config = Config(signature_version=UNSIGNED, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, config=config)


def post_form(url, fields, filename, content, file_type="text/plain"):
    """POSTs a multipart form as a browser does (fields in order, the file
    last); the status, headers and body of the answer, redirects not
    followed."""
    boundary = "----form" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {file_type}\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(url, data=b"".join(parts), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(req) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def error_of(body):
    text = body.decode()
    code = text.split("<Code>")[1].split("</Code>")[0]
    message = text.split("<Message>")[1].split("</Message>")[0] if "<Message>" in text else ""
    return code, message


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Objd(tmp_path_factory.mktemp("post") / "drives")
    c = client(s)
    c.create_bucket(Bucket="uploads")
    yield s
    s.stop()


def signed_form(server, key="incoming/${filename}", fields=None, conditions=None, expires=300):
    fields = dict(fields or {})
    conditions = list(conditions or [])
    conditions += [["starts-with", "$key", "incoming/"], ["content-length-range", 1, 1000]]
    conditions += [{k: v} for k, v in fields.items()]
    return client(server).generate_presigned_post("uploads", key, Fields=fields, Conditions=conditions,
                                                  ExpiresIn=expires)


def test_a_signed_form_stores_the_file_under_its_name_with_the_form_s_fields(server):
    form = signed_form(server, fields={"acl": "public-read", "x-amz-meta-owner": "web",
                                       "Content-Type": "text/plain", "success_action_status": "201"})
    status, _, body = post_form(form["url"], form["fields"], "hello.txt", b"hello from a form")
    assert status == 201, body
    text = body.decode()
    assert "<Key>incoming/hello.txt</Key>" in text and "<Bucket>uploads</Bucket>" in text
    s3 = client(server)
    got = s3.get_object(Bucket="uploads", Key="incoming/hello.txt")
    assert got["Body"].read() == b"hello from a form"
    assert got["Metadata"] == {"owner": "web"} and got["ContentType"] == "text/plain"
    assert f"<ETag>{got['ETag']}</ETag>" in text
    # acl=public-read in the form made it readable by anyone.
    with urllib.request.urlopen(f"{server.endpoint}/uploads/incoming/hello.txt") as r:
        assert r.read() == b"hello from a form"

    # Without success_action_status: 204, as S3.
    form = signed_form(server)
    status, _, _ = post_form(form["url"], form["fields"], "second.bin", b"x" * 10)
    assert status == 204
    assert s3.head_object(Bucket="uploads", Key="incoming/second.bin")["ContentLength"] == 10


def test_a_redirect_carries_bucket_key_and_etag(server):
    form = signed_form(server, fields={"success_action_redirect": "http://example.com/done?from=form"})
    status, headers, _ = post_form(form["url"], form["fields"], "r.txt", b"redirected")
    assert status == 303
    location = urllib.parse.urlparse(headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert location.netloc == "example.com" and query["from"] == ["form"]
    assert query["bucket"] == ["uploads"] and query["key"] == ["incoming/r.txt"]
    assert query["etag"][0].strip('"') == client(server).head_object(
        Bucket="uploads", Key="incoming/r.txt")["ETag"].strip('"')


def test_policy_violations_are_refused_as_s3_refuses_them_and_store_nothing(server):
    s3 = client(server)
    form = signed_form(server)
    # content-length-range.
    status, _, body = post_form(form["url"], form["fields"], "big.bin", b"x" * 1001)
    assert (status, error_of(body)[0]) == (400, "EntityTooLarge")
    status, _, body = post_form(form["url"], form["fields"], "empty.bin", b"")
    assert (status, error_of(body)[0]) == (400, "EntityTooSmall")
    # A key outside the signed prefix.
    fields = dict(form["fields"], key="elsewhere/${filename}")
    status, _, body = post_form(form["url"], fields, "k.txt", b"x")
    code, message = error_of(body)
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith("Invalid according to Policy: Policy Condition failed")
    # A field the policy does not name.
    fields = dict(form["fields"], **{"x-amz-meta-extra": "1"})
    status, _, body = post_form(form["url"], fields, "k.txt", b"x")
    assert (status, error_of(body)) == (403, ("AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-extra"))
    # A policy changed after signing.
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    policy["conditions"] = [c for c in policy["conditions"] if not (isinstance(c, list) and c[0] == "content-length-range")]
    fields = dict(form["fields"], policy=base64.b64encode(json.dumps(policy).encode()).decode())
    status, _, body = post_form(form["url"], fields, "k.txt", b"x" * 2000)
    assert (status, error_of(body)[0]) == (403, "SignatureDoesNotMatch")
    # A policy that is not one.
    fields = dict(form["fields"], policy="bm90IGpzb24=")
    status, _, body = post_form(form["url"], fields, "k.txt", b"x")
    assert status in (400, 403) and error_of(body)[0] in ("InvalidPolicyDocument", "SignatureDoesNotMatch")
    # An expired one.
    short = signed_form(server, expires=1)
    time.sleep(2)
    status, _, body = post_form(short["url"], short["fields"], "late.txt", b"x")
    assert (status, error_of(body)) == (403, ("AccessDenied", "Invalid according to Policy: Policy expired."))
    listed = s3.list_objects_v2(Bucket="uploads", Prefix="")
    names = {o["Key"] for o in listed.get("Contents", [])}
    assert not names & {"incoming/big.bin", "incoming/empty.bin", "elsewhere/k.txt", "incoming/k.txt",
                        "incoming/late.txt"}


def test_unsigned_forms_need_a_bucket_that_takes_anonymous_writes(server):
    s3 = client(server)
    s3.create_bucket(Bucket="dropzone")
    url = f"{server.endpoint}/dropzone"
    status, _, body = post_form(url, {"key": "anon.txt"}, "anon.txt", b"anonymous")
    assert (status, error_of(body)[0]) == (403, "AccessDenied")
    s3.put_bucket_acl(Bucket="dropzone", ACL="public-read-write")
    status, _, _ = post_form(url, {"key": "drop/${filename}"}, "anon.txt", b"anonymous")
    assert status == 204
    assert s3.get_object(Bucket="dropzone", Key="drop/anon.txt")["Body"].read() == b"anonymous"


def test_a_form_signed_by_a_session_is_authorized_for_the_key_it_stores(server, tmp_path):
    policy = tmp_path / "incoming.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::uploads/incoming/*"}]}))
    server.admin("policy", "add", "incoming-only", str(policy))
    user = json.loads(server.admin("user", "add", "poster"))
    server.admin("policy", "attach", "incoming-only", "--user", "poster")
    sts = boto3.client("sts", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id=user["access_key"], aws_secret_access_key=user["secret_key"])
    c = sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/any", RoleSessionName="web",
                        DurationSeconds=900)["Credentials"]
    session = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                           aws_session_token=c["SessionToken"], config=Config(s3={"addressing_style": "path"}))
    # The session token travels as a form field.
    form = session.generate_presigned_post("uploads", "incoming/${filename}",
                                           Conditions=[["starts-with", "$key", "incoming/"]])
    assert "x-amz-security-token" in form["fields"]
    status, _, body = post_form(form["url"], form["fields"], "by-session.txt", b"s")
    assert status == 204, body
    assert client(server).get_object(Bucket="uploads", Key="incoming/by-session.txt")["Body"].read() == b"s"
    # A form its policy allows but the signer's rights do not: the key
    # decides, as for a PutObject of it.
    form = session.generate_presigned_post("uploads", "other/${filename}",
                                           Conditions=[["starts-with", "$key", "other/"]])
    status, _, body = post_form(form["url"], form["fields"], "nope.txt", b"n")
    assert (status, error_of(body)[0]) == (403, "AccessDenied")
    assert outcome_of_head(server, "other/nope.txt") == 404


def outcome_of_head(server, key):
    try:
        client(server).head_object(Bucket="uploads", Key=key)
        return 200
    except Exception as e:  # botocore ClientError
        return int(e.response["ResponseMetadata"]["HTTPStatusCode"])


def test_a_real_browser_submits_a_signed_form(server, tmp_path):
    done = {}
    port_holder = {}
    form = {}

    class Site(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = urllib.parse.urlparse(self.path)
            if path.path == "/done":
                done.update(urllib.parse.parse_qs(path.query))
                page = f"<html><body><p id=result>{path.query}</p></body></html>"
            else:
                inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in form["fields"].items())
                page = f"""<html><body>
<form id="f" method="post" action="{form['url']}" enctype="multipart/form-data">
{inputs}<input type="file" name="file"></form>
<script>
const dt = new DataTransfer();
dt.items.add(new File(["uploaded by chromium"], "from-browser.txt", {{type: "text/plain"}}));
document.querySelector('input[type=file]').files = dt.files;
document.getElementById('f').submit();
</script></body></html>"""
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    port_holder["port"] = site.server_address[1]
    # The redirect target is a field of the form, so the policy names it.
    redirect = f"http://127.0.0.1:{port_holder['port']}/done"
    form.update(signed_form(server, fields={"acl": "private", "success_action_redirect": redirect}))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        profile = tmp_path / "profile"
        out = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
             f"http://127.0.0.1:{port_holder['port']}/form"],
            capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(tmp_path)))
        deadline = time.time() + 30
        while not done and time.time() < deadline:
            time.sleep(0.2)
    finally:
        site.shutdown()
    assert done, f"the browser never came back from the upload: {out.stdout[-2000:]} {out.stderr[-2000:]}"
    assert done["bucket"] == ["uploads"] and done["key"] == ["incoming/from-browser.txt"]
    got = client(server).get_object(Bucket="uploads", Key="incoming/from-browser.txt")
    assert got["Body"].read() == b"uploaded by chromium"
    assert done["etag"][0].strip('"') == got["ETag"].strip('"')
