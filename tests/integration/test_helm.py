"""The Helm chart, with the real helm binary, kubernetes-validate and promtool."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, subprocess_env

CHART = ROOT / "helm" / "acme-http01-exporter"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
FULLNAME = "rel-acme-http01-exporter"
KUBE_VERSION = "1.29.0"


def required(name: str, *candidates: Path) -> str:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI (scripts/test.sh installs it)")
    pytest.skip(f"{name} not installed (run scripts/test.sh)")


def helm() -> str:
    return required(
        "helm", Path(os.environ.get("HELM", "/nonexistent")), ROOT / ".tools" / "helm" / "helm"
    )


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    home = ROOT / ".tools" / "helm-home"
    env = dict(
        os.environ,
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    proc = subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def render(values: Path | None = None, *sets: str) -> list[dict[str, Any]]:
    args = ["template", "rel", str(CHART), "--namespace", "monitoring"]
    if values is not None:
        args += ["-f", str(values)]
    for item in sets:
        args += ["--set", item]
    return [d for d in yaml.safe_load_all(run_helm(*args).stdout) if d]


def kinds(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = kinds(docs).get(kind, [])
    assert len(found) == 1, (kind, [d["kind"] for d in docs])
    return found[0]


def values(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


# -------------------------------------------------------------------- whole chart


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict(values_file: Path) -> None:
    proc = run_helm("lint", "--strict", str(CHART), "-f", str(values_file))
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_rendered_manifests_pass_kubernetes_validate(values_file: Path, tmp_path: Path) -> None:
    validate = required("kubernetes-validate", Path(sys.executable).parent / "kubernetes-validate")
    out = tmp_path / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(render(values_file)))
    proc = subprocess.run(
        [validate, "-k", KUBE_VERSION, "--strict", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout


def test_chart_files_are_the_canonical_bytes() -> None:
    assert (CHART / "files" / "rules.yaml").read_bytes() == (
        ROOT / "grafana" / "rules.yaml"
    ).read_bytes()
    assert (CHART / "files" / "dashboard.json").read_bytes() == (
        ROOT / "grafana" / "dashboard.json"
    ).read_bytes()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("shards=0", "minimum: got 0, want 1"),
        ("log.level=loud", "log/level"),
        ("replicaz=2", "additional properties 'replicaz' not allowed"),
        ("prometheusRule.alerts.AcmeHttp01ExporterDown.severity=page", "severity"),
        ("service.port=0", "service/port"),
    ],
)
def test_schema_rejects_bad_values(setting: str, message: str) -> None:
    proc = run_helm("template", "rel", str(CHART), "--set", setting, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


# ----------------------------------------------------------------------- toggles


def test_default_install_is_minimal_and_locked_down() -> None:
    docs = render(values("default"))
    assert sorted(kinds(docs)) == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/acme-http01-exporter/acme-http01-exporter:0.1.0"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["args"][:2] == [
        "--config.file=/etc/acme-http01-exporter/config.yml",
        "--web.listen-address=:9469",
    ]
    assert not any(a.startswith("--shard") for a in container["args"])
    assert "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"]
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 9469


def test_config_change_rolls_the_pods() -> None:
    def checksum(*sets: str) -> str:
        deployment = one(render(values("default"), *sets), "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum() != checksum("config.interval=10m")


@pytest.mark.parametrize("name", ["default", "monitoring", "sharded"])
def test_embedded_config_passes_the_exporters_config_check(name: str, tmp_path: Path) -> None:
    configmap = next(
        d
        for d in render(values(name))
        if d["kind"] == "ConfigMap" and "config.yml" in d.get("data", {})
    )
    path = tmp_path / "config.yml"
    path.write_text(configmap["data"]["config.yml"])
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.file", str(path), "--config.check"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{path}: OK")


def test_monitoring_resources() -> None:
    docs = render(values("monitoring"))
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert endpoint["relabelings"] == [{"targetLabel": "perspective", "replacement": "eu-west"}]

    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert "AcmeHttp01AAAAMismatch" not in alerts  # disabled in the values
    assert len(alerts) == 9 and len([r for r in rules if "record" in r]) == 5
    assert alerts["AcmeHttp01ExporterDown"]["labels"]["severity"] == "critical"
    assert alerts["AcmeHttp01ValidationFailing"]["labels"]["severity"] == "critical"
    assert alerts["AcmeHttp01ExporterDown"]["expr"] == f'up{{job="{FULLNAME}"}} == 0'
    assert alerts["AcmeHttp01ExporterAbsent"]["expr"] == f'absent(up{{job="{FULLNAME}"}})'
    assert FULLNAME in alerts["AcmeHttp01ExporterAbsent"]["annotations"]["description"]
    for alert in alerts.values():
        assert alert["annotations"]["dashboard_url"].startswith(
            "https://grafana.internal.example.net/d/acme-http01/"
        )

    dashboard = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")
    )
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Certificates"}
    assert dashboard["data"]["acme-http01-exporter.json"] == (
        ROOT / "grafana" / "dashboard.json"
    ).read_text().rstrip("\n")

    policy = one(docs, "NetworkPolicy")
    egress_ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 80, 443]
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--perspective=eu-west" in container["args"]


def test_prometheusrule_passes_promtool(tmp_path: Path) -> None:
    promtool = required("promtool")
    rule = one(render(values("monitoring")), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sharded_statefulset() -> None:
    docs = render(values("sharded"))
    found = kinds(docs)
    assert "Deployment" not in found
    statefulset = one(docs, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == f"{FULLNAME}-headless"
    services = {s["metadata"]["name"]: s for s in found["Service"]}
    assert services[f"{FULLNAME}-headless"]["spec"]["clusterIP"] == "None"
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert "--shard.count=3" in container["args"]
    assert "--shard.index=$(POD_NAME)" in container["args"]
    assert container["env"] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]


def test_existing_configmap_and_secret() -> None:
    docs = render(values("existing-config"))
    assert "ConfigMap" not in kinds(docs)
    template = one(docs, "Deployment")["spec"]["template"]
    assert template["spec"]["volumes"] == [
        {"name": "config", "configMap": {"name": "my-acme-http01-config"}}
    ]
    assert "checksum/config" not in (template["metadata"].get("annotations") or {})
    docs = render(None, "existingSecret=acme-config")
    assert "ConfigMap" not in kinds(docs)
    volume = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    assert volume == {"name": "config", "secret": {"secretName": "acme-config"}}


def test_notes() -> None:
    proc = run_helm(
        "install",
        "rel",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        "mon",
        "-f",
        str(values("default")),
    )
    assert f"port-forward svc/{FULLNAME} 9469:9469" in proc.stdout
    assert "http://127.0.0.1:9469/metrics" in proc.stdout
