"""AssumeRoleWithWebIdentity against a real OpenID Connect provider (the
npm package oidc-provider, started here): users log in through the
provider's own pages (authorization code flow with PKCE), boto3 trades
their ID tokens for temporary credentials, and S3 requests get exactly the
policies the token or the role mapping names. Tokens for another client,
expired, unsigned, altered or signed with a retired key are refused."""

import base64
import hashlib
import json
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, ROOT, SECRET_KEY, Objd, free_port

REDIRECT = "http://127.0.0.1/callback"
ROLE = "arn:aws:iam::000000000000:role/anything"


class OidcProvider:
    """oidc-provider on 127.0.0.1; each start makes new signing keys."""

    def __init__(self, port):
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            ["node", str(ROOT / "tests" / "oidc" / "provider.mjs"), str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"oidc-provider did not start: {line!r}")

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def id_token(self, user, client="strata"):
        """Logs `user` in through the provider's pages; the ID token."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        callback = {}

        class StopAtCallback(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, req, fp, code, msg, headers, newurl):
                if newurl.startswith(REDIRECT):
                    callback["url"] = newurl
                    return None
                return super().redirect_request(req, fp, code, msg, headers, newurl)

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), StopAtCallback())
        query = urllib.parse.urlencode({
            "client_id": client, "response_type": "code", "scope": "openid strata",
            "redirect_uri": REDIRECT, "code_challenge": challenge, "code_challenge_method": "S256",
            "state": secrets.token_hex(8), "nonce": secrets.token_hex(8)})
        page = opener.open(f"{self.issuer}/auth?{query}").read().decode()
        for prompt, fields in (("login", {"login": user, "password": "any"}), ("consent", {})):
            action = re.search(r'action="([^"]+)"', page).group(1)
            form = urllib.parse.urlencode({"prompt": prompt, **fields}).encode()
            try:
                page = opener.open(urllib.parse.urljoin(self.issuer, action), form).read().decode()
            except urllib.error.HTTPError:
                if "url" in callback:
                    break
                raise
        code = urllib.parse.parse_qs(urllib.parse.urlparse(callback["url"]).query)["code"][0]
        discovery = json.load(urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration"))
        form = urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": client}).encode()
        return json.load(urllib.request.urlopen(discovery["token_endpoint"], form))["id_token"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    server = Objd(tmp_path_factory.mktemp("oidc") / "drives")
    idp = OidcProvider(free_port())
    try:
        yield server, idp
    finally:
        idp.stop()
        server.stop()


def client(server, service, creds=None):
    kwargs = {}
    if creds:
        kwargs = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    else:
        kwargs = dict(config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    if service == "s3" and creds:
        kwargs["config"] = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", **kwargs)


def code(exc):
    return exc.value.response["Error"]["Code"]


def test_web_identity_tokens_become_scoped_sessions(setup, tmp_path):
    server, idp = setup
    root = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))
    root.create_bucket(Bucket="idp-data")
    root.put_object(Bucket="idp-data", Key="report.txt", Body=b"quarterly")
    for name, actions in (("readers", ["s3:GetObject", "s3:ListBucket"]), ("writers", ["s3:PutObject"])):
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": actions,
            "Resource": ["arn:aws:s3:::idp-data", "arn:aws:s3:::idp-data/*"]}]}))
        server.admin("policy", "add", name, str(f))
    server.admin("idp", "add-openid", "test-idp", "--issuer", idp.issuer,
          "--client-id", "strata", "--client-id", "short-lived", "--role", "ops=writers")
    listed = json.loads(server.admin("iam"))["identity_providers"]
    assert [p["name"] for p in listed] == ["test-idp"]

    sts = client(server, "sts")

    def assume(token, role=ROLE, **extra):
        return sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="web", WebIdentityToken=token, **extra)

    # alice's token names `readers`: she reads and cannot write.
    alice_token = idp.id_token("alice")
    r = assume(alice_token, DurationSeconds=900)
    assert r["SubjectFromWebIdentityToken"] == "alice"
    assert r["Audience"] == "strata" and r["Provider"] == idp.issuer
    assert r["AssumedRoleUser"]["Arn"].endswith(":assumed-role/alice/web")
    alice = client(server, "s3", r["Credentials"])
    assert alice.get_object(Bucket="idp-data", Key="report.txt")["Body"].read() == b"quarterly"
    with pytest.raises(ClientError) as e:
        alice.put_object(Bucket="idp-data", Key="by-alice", Body=b"x")
    assert code(e) == "AccessDenied"
    assert client(server, "sts", r["Credentials"]).get_caller_identity()["Arn"].endswith(":assumed-role/alice/web")

    # bob's claim is a list: readers and writers.
    bob = client(server, "s3", assume(idp.id_token("bob"))["Credentials"])
    bob.put_object(Bucket="idp-data", Key="by-bob", Body=b"bob")
    assert bob.get_object(Bucket="idp-data", Key="by-bob")["Body"].read() == b"bob"

    # carol's token names no policy: refused, unless the role maps one.
    carol_token = idp.id_token("carol")
    with pytest.raises(ClientError) as e:
        assume(carol_token)
    assert code(e) == "AccessDenied"
    carol = client(server, "s3", assume(carol_token, role="arn:aws:iam::000000000000:role/ops")["Credentials"])
    carol.put_object(Bucket="idp-data", Key="by-carol", Body=b"c")
    with pytest.raises(ClientError) as e:
        carol.get_object(Bucket="idp-data", Key="report.txt")
    assert code(e) == "AccessDenied"

    # A token for a client this deployment does not serve.
    with pytest.raises(ClientError) as e:
        assume(idp.id_token("alice", client="other-app"))
    assert code(e) == "InvalidIdentityToken"
    # Unsigned, or with its claims altered after signing.
    header, payload, _ = alice_token.split(".")
    unb64 = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    b64 = lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()
    unsigned = b64({**unb64(header), "alg": "none"}) + "." + payload + "."
    widened = header + "." + b64({**unb64(payload), "policy": "writers"}) + "." + alice_token.split(".")[2]
    for bad in (unsigned, widened, "not-a-jwt"):
        with pytest.raises(ClientError) as e:
            assume(bad)
        assert code(e) == "InvalidIdentityToken", bad
    # Expired: the provider gives this client 2-second tokens.
    short = idp.id_token("alice", client="short-lived")
    assert assume(short)["Credentials"]["AccessKeyId"].startswith("ASIA")
    time.sleep(unb64(short.split(".")[1])["exp"] - time.time() + 1)
    with pytest.raises(ClientError) as e:
        assume(short)
    assert code(e) == "ExpiredTokenException"


def test_rotated_provider_keys_are_fetched_and_retired_ones_refused(setup):
    server, idp = setup
    sts = client(server, "sts")
    old = idp.id_token("alice")
    sts.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="before", WebIdentityToken=old)
    # A restart makes new signing keys: the provider rotated.
    idp.stop()
    setup[1].__init__(idp.port)
    new = idp.id_token("alice")
    # objd fetches keys again for a key id it lacks (at most every 5 s).
    time.sleep(6)
    r = sts.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="after", WebIdentityToken=new)
    assert r["SubjectFromWebIdentityToken"] == "alice"
    with pytest.raises(ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="old", WebIdentityToken=old)
    assert code(e) == "InvalidIdentityToken"
