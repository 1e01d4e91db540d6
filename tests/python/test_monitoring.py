"""deploy/monitoring as Prometheus and Grafana would take it: the alert
rules pass `promtool check rules` and their unit tests (`promtool test
rules`, deploy/monitoring/rules/tests.yaml); every PromQL expression of the
rules and of the Grafana dashboard parses (promtool), and names only series
a real objd serves (scraped from one with TLS and an audit log, so every
family is there); the dashboard is well-formed dashboard JSON; the
ServiceMonitor and PodMonitor point at the port, path and token objd uses.

No Grafana server is packaged for this machine, so the dashboard is checked
by its structure and its queries rather than loaded into Grafana."""

import json
import pathlib
import re
import shutil
import ssl
import subprocess
import urllib.request

import boto3
import pytest
import yaml

from conftest import ACCESS_KEY, SECRET_KEY, Ca, Objd

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"
MONITORING = DEPLOY / "monitoring"


def build(path):
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def promtool(*args, cwd=None):
    if not shutil.which("promtool"):
        pytest.fail("promtool is missing (Debian package prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd)


def dashboard():
    cm = one(build(MONITORING / "rules"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    return json.loads(cm["data"]["strata.json"])


def dashboard_exprs(d):
    """Every query of the dashboard, with Grafana's variables filled in."""
    fill = {"$__rate_interval": "5m", "$job": "objd", "$instance": ".*"}
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            e = t["expr"]
            for k, v in fill.items():
                e = e.replace(k, v)
            assert "$" not in e, f"unfilled variable in {t['expr']}"
            out.append((p["title"], e))
    return out


def rule_exprs():
    rule = one(build(MONITORING / "rules"), "PrometheusRule")
    return [(r["alert"], r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"]]


def test_alert_rules_check_and_pass_their_unit_tests(tmp_path):
    rule = one(build(MONITORING / "rules"), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    check = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    shutil.copy(MONITORING / "rules" / "tests.yaml", tmp_path / "tests.yaml")
    test = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert test.returncode == 0 and "SUCCESS" in test.stdout, test.stdout + test.stderr
    # Every alert has a unit test.
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "rules" / "tests.yaml").read_text()))
    alerts = {a for a, _ in rule_exprs()}
    assert alerts <= tested, f"alerts without a test: {alerts - tested}"
    for g in rule["spec"]["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
            assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


def test_the_dashboard_is_well_formed():
    d = dashboard()
    for field in ("title", "uid", "schemaVersion", "panels", "templating"):
        assert field in d, field
    assert d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    names = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= names
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
    # Panels do not overlap.
    cells = set()
    for p in d["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
    titles = " ".join(p["title"] for p in d["panels"])
    for section in ("Cluster", "Requests", "Buckets", "Drives"):
        assert section in titles


@pytest.fixture(scope="module")
def served_series(tmp_path_factory):
    """Every sample name a real objd serves, with TLS and an audit log."""
    tmp = tmp_path_factory.mktemp("monitoring")
    ca = Ca(tmp / "ca")
    ca.issue(tmp / "certs", "IP:127.0.0.1")
    server = Objd(tmp / "drives", drives=4, extra=[
        "--certs-dir", str(tmp / "certs"), "--metrics-public", "--audit-file", str(tmp / "audit.log")])
    try:
        s3 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1", verify=str(ca.pem))
        s3.create_bucket(Bucket="measured")
        s3.put_object(Bucket="measured", Key="k", Body=b"x" * 100)
        server.admin("--ca-file", str(ca.pem), "quota", "measured", "1MiB")
        ctx = ssl.create_default_context(cafile=str(ca.pem))
        text = urllib.request.urlopen(f"{server.endpoint}/_strata/metrics", context=ctx).read().decode()
    finally:
        server.stop()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_query_parses_and_names_served_series(tmp_path, served_series):
    exprs = rule_exprs() + dashboard_exprs(dashboard())
    rules = {"groups": [{"name": "queries", "rules": [
        {"record": f"strata:query:{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    check = promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "strata_tls_certificate_expiry_timestamp_seconds" in served_series
    assert "strata_audit_queue_bytes" in served_series
    for where, e in exprs:
        for name in re.findall(r"\bstrata_[a-z0-9_]+", e):
            assert name in served_series, f"{where}: objd serves no {name}"


def test_scrape_configs_point_at_objd():
    base = build(DEPLOY / "base")
    services = {d["metadata"]["name"]: d for d in base if d["kind"] == "Service"}
    for path, kind, endpoints in [("service", "ServiceMonitor", "endpoints"),
                                  ("pod", "PodMonitor", "podMetricsEndpoints")]:
        m = one(build(MONITORING / path), kind)
        assert m["metadata"]["namespace"] == "strata-system"
        (e,) = m["spec"][endpoints]
        assert e["path"] == "/_strata/metrics"
        assert e["port"] == "s3"
        assert e["authorization"]["type"] == "Bearer"
        assert e["authorization"]["credentials"] == {"name": "strata-metrics-token", "key": "token"}
        selector = m["spec"]["selector"]["matchLabels"]
        if kind == "ServiceMonitor":
            # The client Service only: the headless one would scrape the
            # same pods twice.
            chosen = [n for n, s in services.items()
                      if selector.items() <= s["metadata"].get("labels", {}).items()]
            assert chosen == ["objd"], chosen
            assert any(p["name"] == "s3" for p in services["objd"]["spec"]["ports"])
        else:
            sts = one([d for d in base if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "objd"],
                      "StatefulSet")
            labels = sts["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items()
            ports = sts["spec"]["template"]["spec"]["containers"][0]["ports"]
            assert any(p["name"] == "s3" for p in ports)
