"""objd serving HTTPS itself from a certificate directory laid out like a
Kubernetes Secret volume (files behind a `..data` symlink that is swapped
atomically): boto3 under steady load sees no failed request while the
certificate is rotated, a broken pair is refused while the old one keeps
serving, and SNI picks per-host certificates."""

import os
import pathlib
import subprocess
import threading
import time

import boto3
from botocore.config import Config

from conftest import ACCESS_KEY, SECRET_KEY, Ca, Objd, objd_bin

def served_serial(port, sni, ca):
    out = subprocess.run(
        f"openssl s_client -connect 127.0.0.1:{port} -servername {sni} -CAfile {ca} "
        "-verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial",
        shell=True, capture_output=True, text=True,
    ).stdout.strip()
    return out.removeprefix("serial=") or None


class SecretVolume:
    """public.crt and private.key as symlinks through `..data`, the way the
    kubelet projects a Secret, with an atomic swap to a new version."""

    def __init__(self, dir):
        self.dir = dir
        self.version = 0
        dir.mkdir()
        for name in ("public.crt", "private.key"):
            (dir / name).symlink_to(f"..data/{name}")

    def publish(self, files):
        self.version += 1
        target = self.dir / f"..v{self.version}"
        target.mkdir()
        for name, data in files.items():
            (target / name).write_bytes(data)
        tmp = self.dir / "..data_tmp"
        tmp.symlink_to(target.name)
        os.replace(tmp, self.dir / "..data")


def wait_for_serial(port, sni, ca, serial, seconds=15):
    deadline = time.monotonic() + seconds
    while served_serial(port, sni, ca) != serial:
        assert time.monotonic() < deadline, f"{serial} not served for {sni}"
        time.sleep(0.2)


def test_https_with_live_rotation_under_load(tmp_path):
    ca = Ca(tmp_path / "ca")
    issued = tmp_path / "issued"
    first = ca.issue(issued / "1", "IP:127.0.0.1,DNS:localhost")
    vol = SecretVolume(tmp_path / "certs")
    read = lambda d: {n: (d / n).read_bytes() for n in ("public.crt", "private.key")}
    vol.publish(read(issued / "1"))
    # A per-host certificate chosen by SNI, for virtual-host-style names.
    vhost = ca.issue(tmp_path / "certs" / "s3.example.test", "DNS:s3.example.test,DNS:*.s3.example.test")
    server = Objd(tmp_path / "drives", drives=4, extra=["--certs-dir", str(tmp_path / "certs"), "--metrics-public"])
    try:
        assert server.endpoint.startswith("https://127.0.0.1:")
        port = int(server.endpoint.rsplit(":", 1)[1])
        assert served_serial(port, "localhost", ca.pem) == first
        assert served_serial(port, "bucket.s3.example.test", ca.pem) == vhost
        # Plain HTTP on the TLS port gets no S3 answer.
        plain = subprocess.run(["curl", "-s", "-m", "5", f"http://127.0.0.1:{port}/"], capture_output=True)
        assert b"ListAllMyBucketsResult" not in plain.stdout

        s3 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1", verify=str(ca.pem),
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        s3.create_bucket(Bucket="rot")
        stop = threading.Event()
        done, failures = [0], []

        def load(worker):
            # A fresh connection now and then, so new handshakes happen
            # throughout the rotation.
            n = 0
            while not stop.is_set():
                c = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                                 aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                                 verify=str(ca.pem), config=Config(s3={"addressing_style": "path"},
                                                                   retries={"max_attempts": 1}))
                for _ in range(5):
                    key, body = f"w{worker}/{n}", os.urandom(1000 + n)
                    try:
                        c.put_object(Bucket="rot", Key=key, Body=body)
                        assert c.get_object(Bucket="rot", Key=key)["Body"].read() == body
                        done[0] += 1
                    except Exception as e:  # noqa: BLE001 - every failure counts
                        failures.append(repr(e))
                    n += 1

        workers = [threading.Thread(target=load, args=(i,)) for i in range(3)]
        for w in workers:
            w.start()
        time.sleep(1)
        # A new certificate: served within a few seconds.
        second = ca.issue(issued / "2", "IP:127.0.0.1,DNS:localhost")
        vol.publish(read(issued / "2"))
        wait_for_serial(port, "localhost", ca.pem, second)
        # A key that does not go with its certificate is refused: the
        # previous pair keeps serving.
        ca.issue(issued / "3", "IP:127.0.0.1,DNS:localhost")
        vol.publish({"public.crt": (issued / "3" / "public.crt").read_bytes(),
                     "private.key": (issued / "1" / "private.key").read_bytes()})
        time.sleep(5)
        assert served_serial(port, "localhost", ca.pem) == second
        # Mended: the next good pair is taken.
        fourth = ca.issue(issued / "4", "IP:127.0.0.1,DNS:localhost")
        vol.publish(read(issued / "4"))
        wait_for_serial(port, "localhost", ca.pem, fourth)
        time.sleep(1)
        stop.set()
        for w in workers:
            w.join()
        assert failures == [], failures[:3]
        assert done[0] > 30, done[0]
        # The metrics tell when the served certificates expire (for the
        # certificate-expiry alert): the rotated-in one, and the SNI one.
        import urllib.request, ssl
        text = urllib.request.urlopen(f"{server.endpoint}/_strata/metrics",
                                      context=ssl.create_default_context(cafile=str(ca.pem))).read().decode()
        def expiry(sni):
            line = next(l for l in text.splitlines()
                        if l.startswith(f'strata_tls_certificate_expiry_timestamp_seconds{{sni="{sni}"}} '))
            return int(float(line.split()[1]))
        def enddate(crt):
            out = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-enddate"],
                                 capture_output=True, text=True, check=True).stdout
            t = time.strptime(out.strip().removeprefix("notAfter="), "%b %d %H:%M:%S %Y GMT")
            import calendar
            return calendar.timegm(t)
        assert expiry("default") == enddate(issued / "4" / "public.crt")
        assert expiry("s3.example.test") == enddate(tmp_path / "certs" / "s3.example.test" / "public.crt")
    finally:
        server.stop()


def test_plain_http_beside_https_during_a_migration(tmp_path):
    ca = Ca(tmp_path / "ca")
    ca.issue(tmp_path / "certs", "IP:127.0.0.1")
    server = Objd(tmp_path / "drives", drives=4,
                  extra=["--certs-dir", str(tmp_path / "certs"), "--http-address", "127.0.0.1:0"])
    try:
        line = server.proc.stdout.readline().strip()
        assert line.startswith("objd also listening on http://127.0.0.1:"), line
        plain_endpoint = line.removeprefix("objd also listening on ")
        client = lambda endpoint, **kw: boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            **kw)
        tls, plain = client(server.endpoint, verify=str(ca.pem)), client(plain_endpoint)
        tls.create_bucket(Bucket="moving")
        plain.put_object(Bucket="moving", Key="old-client", Body=b"over http")
        assert tls.get_object(Bucket="moving", Key="old-client")["Body"].read() == b"over http"
        # Customer keys never travel in the clear.
        import botocore.exceptions
        try:
            plain.put_object(Bucket="moving", Key="sealed", Body=b"x", SSECustomerAlgorithm="AES256",
                             SSECustomerKey="k" * 32)
            raise AssertionError("SSE-C accepted over plain HTTP")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidRequest"
    finally:
        server.stop()
    refused = subprocess.run([objd_bin(), "server", f"{tmp_path}/d{{1...4}}", "--address", "127.0.0.1:0",
                              "--http-address", "127.0.0.1:0"],
                             env={**os.environ, "OBJD_ACCESS_KEY": ACCESS_KEY, "OBJD_SECRET_KEY": SECRET_KEY},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "needs --certs-dir" in refused.stderr, refused.stderr
