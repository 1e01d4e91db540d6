"""objd's metrics as Prometheus sees them: `promtool check metrics` finds
nothing to fault in the text, and a real Prometheus server (Debian's
`prometheus`) scraping a test objd with the bearer token answers a PromQL
query with exactly the number of requests made."""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import free_port, make_client


def fetch(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def test_prometheus_scrapes_and_counts_the_requests(objd, tmp_path):
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing (Debian package prometheus)")
    token = json.loads(objd.admin("metrics", "token"))["token"]
    s3 = make_client(objd)
    s3.create_bucket(Bucket="scraped")
    for i in range(5):
        s3.put_object(Bucket="scraped", Key=f"k{i}", Body=b"x" * 100)
    text = fetch(f"{objd.endpoint}/_strata/metrics", token)
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr

    (tmp_path / "token").write_text(token)
    target = urllib.parse.urlparse(objd.endpoint).netloc
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: strata
    metrics_path: /_strata/metrics
    authorization:
      credentials_file: {tmp_path}/token
    static_configs:
      - targets: ["{target}"]
""")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path}/prometheus.yml",
                             f"--storage.tsdb.path={tmp_path}/tsdb", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        query = urllib.parse.quote('sum(strata_s3_requests_total{api="PutObject",status="2xx"})')
        value, deadline = None, time.time() + 60
        while time.time() < deadline:
            try:
                answer = json.loads(fetch(f"http://127.0.0.1:{port}/api/v1/query?query={query}"))
                result = answer["data"]["result"]
                value = result[0]["value"][1] if result else None
            except OSError:
                value = None
            if value == "5":
                break
            time.sleep(0.5)
        assert value == "5", (tmp_path / "prometheus.log").read_text()[-2000:]
        up = json.loads(fetch(f"http://127.0.0.1:{port}/api/v1/query?query=up"))["data"]["result"]
        assert [r["value"][1] for r in up] == ["1"]
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        log.close()
