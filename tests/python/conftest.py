"""Harness for the Python client tests: starts the real objd binary on
127.0.0.1:0 over temporary drives, the way a user runs it."""

import os
import pathlib
import subprocess

import pytest

ACCESS_KEY = "strata-py-admin"
SECRET_KEY = "strata-py-secret-key"
ROOT = pathlib.Path(__file__).resolve().parents[2]


def objd_bin():
    path = os.environ.get("STRATA_OBJD") or str(ROOT / "target" / "debug" / "objd")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing: run `cargo build -p objd` first")
    return path


class Objd:
    def __init__(self, root, drives=6, extra=()):
        self.root = root
        self.drives = drives
        self.extra = list(extra)
        env = dict(os.environ, OBJD_ACCESS_KEY=ACCESS_KEY, OBJD_SECRET_KEY=SECRET_KEY, OBJD_LOG="warn")
        self.proc = subprocess.Popen(
            [objd_bin(), "server", f"{root}/d{{1...{drives}}}", "--address", "127.0.0.1:0", *self.extra],
            env=env,
            stdout=subprocess.PIPE,
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
