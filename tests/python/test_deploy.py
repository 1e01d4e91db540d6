"""Every kustomization under deploy/ builds with `kubectl kustomize`, and
every resulting manifest validates against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields fail) for the oldest and the
newest Kubernetes versions the manifests target. cert-manager's Issuer and
Certificate are custom resources without a bundled schema: they are
skipped by name, with that reason, and any other kind without a schema
fails the test (a typo in an apiVersion would otherwise pass silently)."""

import os
import pathlib
import subprocess

import pytest
import yaml

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"
KUSTOMIZATIONS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))
# Custom resources kubernetes-validate has no schema for, and why.
SKIPPED = {
    ("cert-manager.io/v1", "Certificate"): "cert-manager CRD",
    ("cert-manager.io/v1", "Issuer"): "cert-manager CRD",
    # Prometheus Operator CRDs: checked by test_monitoring.py (promtool,
    # the ports and paths they name).
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "Prometheus Operator CRD",
    ("monitoring.coreos.com/v1", "PodMonitor"): "Prometheus Operator CRD",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "Prometheus Operator CRD",
    # external-snapshotter CRD: its fields are checked below.
    ("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass"): "external-snapshotter CRD",
}
VERSIONS = ["1.29", "1.37"]


def is_component(path):
    return yaml.safe_load((path / "kustomization.yaml").read_text()).get("kind") == "Component"


def build(path, tmp=None):
    """The manifests of a kustomization; a Component (which builds to
    nothing alone) is built on top of base/ in a throwaway overlay."""
    if is_component(path):
        overlay = tmp / "overlay"
        overlay.mkdir(exist_ok=True)
        (overlay / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    # Kustomize takes relative paths only.
                    "resources": [os.path.relpath(DEPLOY / "base", overlay)],
                    "components": [os.path.relpath(path, overlay)],
                }
            )
        )
        path = overlay
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(DEPLOY)))
@pytest.mark.parametrize("version", VERSIONS)
def test_kustomization_builds_and_validates(path, version, tmp_path):
    docs = build(path, tmp_path)
    assert docs, f"{path} builds to nothing"
    checked = 0
    for i, doc in enumerate(docs):
        key = (doc["apiVersion"], doc["kind"])
        if key in SKIPPED:
            continue
        f = tmp_path / f"{i}.yaml"
        f.write_text(yaml.safe_dump(doc))
        out = subprocess.run(
            ["kubernetes-validate", "--strict", "--quiet", "-k", version, str(f)],
            capture_output=True,
            text=True,
        )
        text = out.stdout + out.stderr
        assert out.returncode == 0 and "WARN" not in text and "ERROR" not in text, (
            f"{doc['kind']}/{doc['metadata']['name']}: {text}"
        )
        checked += 1
    # Something was validated, unless every document is a custom resource
    # checked by its own test.
    assert checked > 0 or all((d["apiVersion"], d["kind"]) in SKIPPED for d in docs)


def test_the_demo_has_what_an_admin_needs():
    kinds = {(d["kind"], d["metadata"]["name"]) for d in build(DEPLOY / "overlays" / "demo")}
    for want in [
        ("StatefulSet", "objd"),
        ("Service", "objd"),
        ("Service", "objd-headless"),
        ("Ingress", "objd"),
        ("Certificate", "strata-tls"),
        ("CSIDriver", "csi.strata.dev"),
        ("Deployment", "strata-csi-controller"),
        ("DaemonSet", "strata-csi-node"),
        ("StorageClass", "strata"),
        ("PersistentVolumeClaim", "strata-demo-data"),
        ("Pod", "strata-demo-writer"),
        ("Secret", "strata-csi-node-publish"),
    ]:
        assert want in kinds, want
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in build(DEPLOY / "overlays" / "demo")}
    ingress = by_name[("Ingress", "objd")]["metadata"]["annotations"]
    assert ingress["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert ingress["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    for sc in [d for (k, _), d in by_name.items() if k == "StorageClass"]:
        assert sc["allowVolumeExpansion"] is True
    node = by_name[("DaemonSet", "strata-csi-node")]["spec"]["template"]["spec"]
    plugin = next(c for c in node["containers"] if c["name"] == "csi-driver")
    assert plugin["securityContext"]["privileged"] is True
    kubelet = next(m for m in plugin["volumeMounts"] if m["mountPath"] == "/var/lib/kubelet")
    assert kubelet["mountPropagation"] == "Bidirectional"
    # Credentials reach the programs as files or environment, never args.
    for d in by_name.values():
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            assert not any("secret" in a.lower() for a in c.get("args", [])), c["name"]


def test_the_cluster_overlay_survives_a_node_and_coordinates_through_etcd():
    docs = build(DEPLOY / "overlays" / "cluster")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    objd = by_name[("StatefulSet", "objd")]["spec"]
    etcd = by_name[("StatefulSet", "etcd")]["spec"]
    assert objd["replicas"] == 4 and etcd["replicas"] == 3
    # Drives as URLs of every replica through the headless Service.
    pod = objd["template"]["spec"]
    c = next(c for c in pod["containers"] if c["name"] == "objd")
    assert any(a.startswith("https://objd-{0...3}.objd-headless.") for a in c["args"]), c["args"]
    # TLS on objd's port and between nodes, from a cert-manager certificate
    # good for client authentication too, mounted where --certs-dir reads.
    certs = c["args"][c["args"].index("--certs-dir") + 1]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == certs)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cert = by_name[("Certificate", "objd-internode")]["spec"]
    assert volume["secret"]["secretName"] == cert["secretName"]
    assert {i["path"] for i in volume["secret"]["items"]} == {"public.crt", "private.key", "ca.crt"}
    assert {"server auth", "client auth"} <= set(cert["usages"])
    assert "*.objd-headless.strata-system.svc.cluster.local" in cert["dnsNames"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"
    ingress = by_name[("Ingress", "objd")]["metadata"]["annotations"]
    assert ingress["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    for kind, name in (("Deployment", "strata-csi-controller"), ("DaemonSet", "strata-csi-node")):
        csi = next(x for x in by_name[(kind, name)]["spec"]["template"]["spec"]["containers"]
                   if x["name"] == "csi-driver")
        csi_env = {e["name"]: e.get("value") for e in csi["env"]}
        assert csi_env["STRATA_ENDPOINT"].startswith("https://"), name
        assert csi_env["STRATA_CA_FILE"].startswith("/etc/strata/ca/"), name
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["OBJD_ETCD"].count("etcd-headless") == 3
    assert c["readinessProbe"]["httpGet"]["path"] == "/_strata/health/ready"
    assert "tcpSocket" not in c["readinessProbe"]
    # A PVC per drive, one pod per Kubernetes node, one node down at a time.
    assert len(objd["volumeClaimTemplates"]) == 4
    for spec in (pod, etcd["template"]["spec"]):
        rule = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert rule["topologyKey"] == "kubernetes.io/hostname"
    for name in ("objd", "etcd"):
        assert by_name[("PodDisruptionBudget", name)]["spec"]["maxUnavailable"] == 1
    assert by_name[("Service", "objd-headless")]["spec"]["publishNotReadyAddresses"] is True


def test_encryption_keys_reach_objd_as_files_and_volumes_can_be_sealed():
    demo = {(d["kind"], d["metadata"]["name"]): d for d in build(DEPLOY / "overlays" / "demo")}
    objd = demo[("StatefulSet", "objd")]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in objd["containers"][0]["env"]}
    mounts = {m["name"]: m["mountPath"] for m in objd["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in objd["volumes"]}
    assert env["OBJD_KMS_ROOT_KEY_FILE"]["value"].startswith(mounts["kms-root-key"] + "/")
    assert volumes["kms-root-key"]["secret"]["secretName"] == "strata-kms-root-key"
    assert ("Secret", "strata-kms-root-key") in demo
    assert demo[("StorageClass", "strata-encrypted")]["parameters"]["encryption"] == "AES256"

    vault = {(d["kind"], d["metadata"]["name"]): d for d in build(DEPLOY / "overlays" / "vault")}
    objd = vault[("StatefulSet", "objd")]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in objd["containers"][0]["env"]}
    mounts = {m["name"]: m["mountPath"] for m in objd["containers"][0]["volumeMounts"]}
    assert "OBJD_KMS_ROOT_KEY_FILE" not in env and "kms-root-key" not in mounts
    assert env["OBJD_KMS_VAULT_ENDPOINT"]["value"].startswith("https://")
    assert env["OBJD_KMS_VAULT_APPROLE_SECRET_ID_FILE"]["value"].startswith(mounts["vault-approle"] + "/")
    assert env["OBJD_KMS_VAULT_APPROLE_ROLE_ID"]["valueFrom"]["secretKeyRef"]["name"] == "strata-vault-approle"
    assert not any("value" in e and "secret" in e["value"].lower() and not e["value"].startswith("/")
                   for e in env.values())


def test_snapshots_and_volume_attributes_are_wired(tmp_path):
    base = {(d["kind"], d["metadata"]["name"]): d for d in build(DEPLOY / "base")}
    controller = base[("Deployment", "strata-csi-controller")]["spec"]["template"]["spec"]
    sidecars = {c["name"]: c for c in controller["containers"]}
    assert "--csi-address=/csi/csi.sock" in sidecars["csi-snapshotter"]["args"]
    rules = base[("ClusterRole", "strata-csi-controller")]["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    for want in [
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"),
        ("snapshot.storage.k8s.io", "volumesnapshotcontents/status"),
        ("snapshot.storage.k8s.io", "volumesnapshotclasses"),
        ("snapshot.storage.k8s.io", "volumesnapshots"),
        ("storage.k8s.io", "volumeattributesclasses"),
    ]:
        assert want in granted, want
    driver = base[("CSIDriver", "csi.strata.dev")]["metadata"]["name"]
    (cls,) = build(DEPLOY / "snapshots")
    assert cls["kind"] == "VolumeSnapshotClass" and cls["driver"] == driver
    assert cls["deletionPolicy"] in ("Delete", "Retain")
    secret = cls["parameters"]["csi.storage.k8s.io/snapshotter-secret-name"]
    assert secret == "strata-csi-provisioner"
    # The component turns the resizer into the modifier as well, and
    # touches nothing else.
    with_attrs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in build(DEPLOY / "components" / "volume-attributes", tmp_path)
    }
    spec = with_attrs[("Deployment", "strata-csi-controller")]["spec"]["template"]["spec"]
    changed = {c["name"]: c for c in spec["containers"]}
    assert "--feature-gates=VolumeAttributesClass=true" in changed["csi-resizer"]["args"]
    for name, c in changed.items():
        if name != "csi-resizer":
            assert c == sidecars[name], name


def test_the_remote_tier_component_registers_a_tier_without_secrets_in_manifests(tmp_path):
    docs = {(d["kind"], d["metadata"]["name"]): d for d in build(DEPLOY / "components" / "remote-tier", tmp_path)}
    job = docs[("Job", "strata-tier-add-cold")]["spec"]["template"]["spec"]
    (c,) = job["containers"]
    assert c["args"][:4] == ["admin", "tier", "add", "cold"]
    creds = c["args"][c["args"].index("--credentials-file") + 1]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v["secret"]["secretName"] for v in job["volumes"]}
    assert volumes[mounts[str(pathlib.PurePosixPath(creds).parent)]] == "strata-remote-tier"
    env = {e["name"]: e for e in c["env"]}
    assert "value" not in env.get("OBJD_SECRET_KEY", {}) and env["OBJD_SECRET_KEY_FILE"]["value"].startswith(
        "/etc/strata/root/")
    # The StorageClass asks for the tier by the name the Job gives it, with
    # parameters the CSI driver takes.
    sc = docs[("StorageClass", "strata-tiered")]
    assert sc["provisioner"] == "csi.strata.dev"
    assert sc["parameters"]["tierClass"].lower() == "cold" and int(sc["parameters"]["tierAfterDays"]) > 0


def test_the_capacity_pool_component_gives_objd_a_pool_it_starts_with(tmp_path):
    docs = {(d["kind"], d["metadata"]["name"]): d for d in build(DEPLOY / "components" / "capacity-pool", tmp_path)}
    sts = docs[("StatefulSet", "objd")]["spec"]
    (c,) = [c for c in sts["template"]["spec"]["containers"] if c["name"] == "objd"]
    args = c["args"]
    pool = args[args.index("--pool") + 1]
    assert pool == "capacity=/data/h{1...4}"
    claims = {t["metadata"]["name"]: t["spec"]["storageClassName"] for t in sts["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    for i in range(1, 5):
        assert claims[f"h{i}"] == "strata-drive-capacity" and mounts[f"/data/h{i}"] == f"h{i}"
        assert claims[f"d{i}"] == "strata-drive-fast"
    assert docs[("StorageClass", "strata-drive-capacity")]["provisioner"] == "kubernetes.io/no-provisioner"
    sc = docs[("StorageClass", "strata-capacity")]
    assert sc["provisioner"] == "csi.strata.dev" and sc["parameters"]["storageClass"] == "CAPACITY"
    # objd takes the manifest's arguments as they are (drives moved under
    # a temporary directory), and writes CAPACITY objects to the pool.
    from conftest import ACCESS_KEY, SECRET_KEY, make_client, objd_bin

    local = [a.replace("/data/", f"{tmp_path}/data/") if "/data/" in a else a for a in args]
    local[local.index("--address") + 1] = "127.0.0.1:0"
    proc = subprocess.Popen([objd_bin(), *local], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OBJD_ACCESS_KEY": ACCESS_KEY, "OBJD_SECRET_KEY": SECRET_KEY,
                                 "OBJD_LOG": "warn"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("objd listening on "), line

        class Endpoint:
            endpoint = line.strip().split(" on ")[1]

        s3 = make_client(Endpoint())
        s3.create_bucket(Bucket="vol")
        s3.put_object(Bucket="vol", Key="k", Body=b"x" * 300_000, StorageClass="CAPACITY")
        assert s3.head_object(Bucket="vol", Key="k")["StorageClass"] == "STANDARD_IA"
        pool_files = [f for d in (tmp_path / "data").glob("h*") for f in d.rglob("*") if "/data/" in str(f.relative_to(tmp_path / "data"))]
        assert pool_files, "the object's data is on the pool's drives"
    finally:
        proc.kill()
        proc.wait()
