"""The Helm chart, with the real helm binary, kubernetes-validate and promtool."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, subprocess_env
from tests.integration.kubeapi import KubeAPI
from tests.integration.kubeapi import kube_api as kube_api_fixture  # noqa: F401
from tests.integration.procs import ExporterProcess, LabProcess, value, write_config
from tests.integration.procs import parse as parse_samples

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


def containers(docs: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    pod = one(docs, kind)["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"]}


def values(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def kubernetes_validate(docs: list[dict[str, Any]], tmp_path: Path) -> str:
    """kubernetes-validate --strict on the rendered objects; its report. It has the schemas
    of Kubernetes' own kinds only: Prometheus Operator's kinds are reported as unknown
    (WARN) and checked by the tests' own assertions."""
    validate = required("kubernetes-validate", Path(sys.executable).parent / "kubernetes-validate")
    out = tmp_path / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    proc = subprocess.run(
        [validate, "-k", KUBE_VERSION, "--strict", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout
    return proc.stdout


# -------------------------------------------------------------------- whole chart


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict(values_file: Path) -> None:
    proc = run_helm("lint", "--strict", str(CHART), "-f", str(values_file))
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_rendered_manifests_pass_kubernetes_validate(values_file: Path, tmp_path: Path) -> None:
    kubernetes_validate(render(values_file), tmp_path)


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
        (
            "prometheusRule.alerts.AcmeHttp01RenewalAtRisk.severity=page",
            "at '/prometheusRule/alerts/AcmeHttp01RenewalAtRisk/severity'",
        ),
        ("prometheusRule.runbookBaseUrl=wiki/runbook", "at '/prometheusRule/runbookBaseUrl'"),
        ("prometheusRule.dashboardBaseUrl=grafana.example.net", "/prometheusRule/dashboardBaseUrl"),
        ("service.port=0", "service/port"),
        ("unbound.port=53", "at '/unbound/port': minimum: got 53, want 1,024"),
        ("unbound.port=9469", "at '/unbound/port': 'not' failed"),
        ("unbound.enabled=maybe", "at '/unbound/enabled': got string, want boolean"),
        ("unbound.msgCacheSize=lots", "at '/unbound/msgCacheSize'"),
        ("unbound.extraConfig={forward-zone}", "at '/unbound/extraConfig/0'"),
        ("image.digest=latest", "at '/image/digest'"),
        ("commonLabels.team=null", "at '/commonLabels/team': got null, want string"),
        ("extraEnv[0].value=x", "at '/extraEnv/0': missing property 'name'"),
        ("extraVolumeMounts[0].name=x", "at '/extraVolumeMounts/0': missing property 'mountPath'"),
        ("extraContainers[0].image=busybox", "at '/extraContainers/0': missing property 'name'"),
        ("hostNetwork=yes", "at '/hostNetwork': got string, want boolean"),
        ("dnsPolicy=Bogus", "at '/dnsPolicy'"),
        ("dnsConfig.nameserver=192.0.2.1", "at '/dnsConfig': additional properties"),
        ("webConfig.tlz=x", "at '/webConfig': additional properties 'tlz' not allowed"),
        ("webConfig.probes.mode=maybe", "at '/webConfig/probes/mode'"),
        ("webConfig.probes.basicAuth.username=kubelet", "'password' required"),
        ("webConfig.config.basic_auth_users.alice=secret", "basic_auth_users/alice"),
        (
            "webConfig.config.tls_server_config.client_auth_type=Always",
            "at '/webConfig/config/tls_server_config/client_auth_type'",
        ),
        (  # the exporter refuses it (Python's ssl cannot ask without verifying)
            "webConfig.config.tls_server_config.client_auth_type=RequireAnyClientCert",
            "at '/webConfig/config/tls_server_config/client_auth_type'",
        ),
        ("webConfig.config.tls_server_config.certfile=x", "additional properties 'certfile'"),
        ("webConfig.config.http_server_config.headers.Server=x", "additional properties 'Server'"),
        (
            "webConfig.config.http_server_config.headers.X-Frame-Options=allow",
            "/http_server_config/headers/X-Frame-Options",
        ),
        ("webConfig.config.basic_auth_users.bob=$2b$10$short", "basic_auth_users/bob"),
        ("serviceMonitor.basicAuth.usernameKey=", "at '/serviceMonitor/basicAuth/usernameKey'"),
        ("global=1", "at '/global': got number, want object"),
        ("global.imageRegistry=5000", "at '/global/imageRegistry': got number, want string"),
        ("podMonitor.interval=1m", "at '/podMonitor': additional properties 'interval'"),
        ("podMonitor.enabled=yes", "at '/podMonitor/enabled': got string, want boolean"),
        ("probe.targets[0]=", "at '/probe/targets/0'"),
        ("probe.interval=often", "at '/probe/interval'"),
        ("probe.module=http_2xx", "at '/probe': additional properties 'module'"),
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
    container = containers(docs)["exporter"]
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


@pytest.mark.parametrize("name", ["default", "monitoring", "sharded", "discovery"])
def test_embedded_config_passes_the_exporters_config_check(name: str, tmp_path: Path) -> None:
    configmap = next(
        d
        for d in render(values(name))
        if d["kind"] == "ConfigMap" and "config.yml" in d.get("data", {})
    )
    path = tmp_path / "config.yml"
    path.write_text(configmap["data"]["config.yml"])
    # With config.sources.kubernetes the check loads the client config, which the pod has
    # from its ServiceAccount: here a kubeconfig stands in for it (nothing connects).
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    env = subprocess_env()
    env.pop("KUBERNETES_SERVICE_HOST", None)
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.file", str(path), "--config.check"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(env, KUBECONFIG=str(kubeconfig)),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{path}: OK")
    if name == "discovery":
        assert "file source" in proc.stdout and "Kubernetes" in proc.stdout  # both read


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
    assert len(alerts) == len(canonical_alerts()) - 1
    assert len([r for r in rules if "record" in r]) == 5
    assert alerts["AcmeHttp01ExporterDown"]["labels"]["severity"] == "critical"  # overridden
    assert alerts["AcmeHttp01ValidationFailing"]["labels"]["severity"] == "warning"
    assert alerts["AcmeHttp01RenewalAtRisk"]["labels"]["severity"] == "critical"
    assert alerts["AcmeHttp01ExporterDown"]["expr"] == f'up{{job="{FULLNAME}"}} == 0'
    assert alerts["AcmeHttp01ExporterAbsent"]["expr"] == f'absent(up{{job="{FULLNAME}"}})'
    assert FULLNAME in alerts["AcmeHttp01ExporterAbsent"]["annotations"]["description"]
    for alert in alerts.values():  # dashboardBaseUrl is set (with a trailing slash)
        assert alert["annotations"]["dashboard_url"].startswith(
            "https://grafana.internal.example.net/d/acme-http01/acme-http01-exporter"
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
    # Unbound asks authoritative servers anywhere: port 53, UDP and TCP, to any address.
    dns_rule = next(r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 53)
    assert "to" not in dns_rule
    assert sorted(p["protocol"] for p in dns_rule["ports"]) == ["TCP", "UDP"]
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert "--perspective=eu-west" in containers(docs)["exporter"]["args"]


# ------------------------------------------------- ServiceMonitor, PodMonitor, Probe

OPERATOR_API = "monitoring.coreos.com/v1"


PROBE_ON = ["probe.enabled=true", "probe.targets={example.com,www.example.org}"]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["serviceMonitor.enabled=true"], ["ServiceMonitor"]),
        (["podMonitor.enabled=true"], ["PodMonitor"]),
        ([], []),
        (PROBE_ON, ["Probe"]),
        (["podMonitor.enabled=true", *PROBE_ON], ["PodMonitor", "Probe"]),
    ],
    ids=["servicemonitor", "podmonitor", "both-off", "probe", "podmonitor-and-probe"],
)
def test_monitor_options_render_and_validate(
    sets: list[str], expected: list[str], tmp_path: Path
) -> None:
    docs = render(values("default"), *sets)
    operator = sorted(d["kind"] for d in docs if d["apiVersion"] == OPERATOR_API)
    assert operator == expected
    report = kubernetes_validate(docs, tmp_path)
    for doc in docs:  # Kubernetes' kinds passed; only the operator's were not checked
        kind, name = doc["kind"], doc["metadata"]["name"]
        if doc["apiVersion"] == OPERATOR_API:
            assert f"Couldn't find schema for kind {kind} with api version {OPERATOR_API}" in report
        else:
            assert f"passed for resource {kind.lower()}/{name} " in report, (kind, report)
    # What the operator needs of each: the exporter's pods and port, the Service's address.
    deployment = one(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"] for c in pod_spec(docs)["containers"] for p in c.get("ports", [])}
    service = one(docs, "Service")
    for doc in docs:
        if doc["kind"] in ("ServiceMonitor", "PodMonitor"):
            spec = doc["spec"]
            assert spec["namespaceSelector"] == {"matchNames": ["monitoring"]}
            selected = (
                service["metadata"]["labels"] if doc["kind"] == "ServiceMonitor" else pod_labels
            )
            assert spec["selector"]["matchLabels"].items() <= selected.items()
            (endpoint,) = spec[
                "endpoints" if doc["kind"] == "ServiceMonitor" else "podMetricsEndpoints"
            ]
            named = (
                {p["name"] for p in service["spec"]["ports"]}
                if doc["kind"] == "ServiceMonitor"
                else ports
            )
            assert endpoint["port"] in named and endpoint["path"] == "/metrics"
        if doc["kind"] == "Probe":
            prober = doc["spec"]["prober"]
            port = service["spec"]["ports"][0]["port"]
            address = f"{service['metadata']['name']}.monitoring.svc:{port}"
            assert prober == {"url": address, "path": "/probe", "scheme": "http"}
            assert "module" not in doc["spec"]


@pytest.mark.parametrize("name", ["default", "web-tls", "web-existing-secret"])
def test_pod_monitor_scrapes_as_the_service_monitor(name: str) -> None:
    """The PodMonitor's endpoint is the ServiceMonitor's: scheme, TLS, basic auth,
    interval, relabelings, all from serviceMonitor.*; and the same job, the Service's name
    (the operator would name it <namespace>/<PodMonitor name>)."""
    settings = [
        "serviceMonitor.interval=2m",
        "serviceMonitor.honorLabels=true",
        "serviceMonitor.relabelings[0].targetLabel=perspective",
        "serviceMonitor.relabelings[0].replacement=eu",
        "serviceMonitor.additionalLabels.release=kube-prometheus-stack",
        "serviceMonitor.namespace=prometheus",
    ]
    by_service = one(
        render(values(name), *settings, "serviceMonitor.enabled=true"), "ServiceMonitor"
    )
    by_pod = one(
        render(values(name), *settings, "serviceMonitor.enabled=false", "podMonitor.enabled=true"),
        "PodMonitor",
    )
    (endpoint,) = by_pod["spec"]["podMetricsEndpoints"]
    job, *relabelings = endpoint["relabelings"]
    assert job == {"targetLabel": "job", "replacement": FULLNAME}
    assert [dict(endpoint, relabelings=relabelings)] == by_service["spec"]["endpoints"]
    assert by_pod["metadata"] == dict(by_service["metadata"])
    assert endpoint["interval"] == "2m" and endpoint["honorLabels"] is True
    assert relabelings == [{"targetLabel": "perspective", "replacement": "eu"}]
    assert by_pod["metadata"]["namespace"] == "prometheus"
    if name == "default":
        assert "scheme" not in endpoint and "basicAuth" not in endpoint
    else:
        assert endpoint["scheme"] == "https" and "tlsConfig" in endpoint
        assert endpoint["basicAuth"]["password"]["name"] in {
            "acme-http01-exporter-scrape",
            "acme-http01-scrape",
        }


@pytest.mark.parametrize("monitor", ["serviceMonitor", "podMonitor"])
def test_the_rules_select_the_job_either_monitor_gives(monitor: str) -> None:
    """The PrometheusRule's default selector names the job the scrape gets: the Service's
    name, which the operator gives a ServiceMonitor's targets and the chart gives the
    PodMonitor's (relabelled from the operator's <namespace>/<name>)."""
    docs = render(
        values("default"),
        "serviceMonitor.enabled=false",
        f"{monitor}.enabled=true",
        "prometheusRule.enabled=true",
    )
    if monitor == "serviceMonitor":
        job = one(docs, "Service")["metadata"]["name"]
    else:
        (endpoint,) = one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"]
        (job,) = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
    rules = [r for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    down = next(r for r in rules if r.get("alert") == "AcmeHttp01ExporterDown")
    assert f'up{{job="{job}"}}' in down["expr"]


def test_service_monitor_and_pod_monitor_are_alternatives() -> None:
    proc = run_helm(
        "template",
        "rel",
        str(CHART),
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "podMonitor.enabled=true",
        check=False,
    )
    assert proc.returncode != 0
    assert "serviceMonitor.enabled and podMonitor.enabled are alternatives" in proc.stderr


def test_probe_asks_the_exporters_probe_endpoint() -> None:
    docs = render(
        values("web-tls"),
        "config.domains={example.com,www.example.org}",
        *PROBE_ON,
        "probe.namespace=prometheus",
        "probe.additionalLabels.release=kube-prometheus-stack",
        "probe.labels.team=web",
        "probe.interval=10m",
        "probe.scrapeTimeout=25s",
        "service.port=9500",
    )
    probe = one(docs, "Probe")
    endpoint = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert probe["metadata"]["namespace"] == "prometheus"
    assert probe["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = probe["spec"]
    # The exporter's Service in the release's namespace, over HTTPS as the web config serves,
    # with the scrape's own TLS settings and basic auth.
    assert spec["prober"] == {
        "url": f"{FULLNAME}.monitoring.svc:9500",
        "path": "/probe",
        "scheme": "https",
    }
    assert spec["tlsConfig"] == endpoint["tlsConfig"]
    assert spec["basicAuth"] == endpoint["basicAuth"]
    assert spec["targets"] == {
        "staticConfig": {"static": ["example.com", "www.example.org"], "labels": {"team": "web"}}
    }
    assert (spec["interval"], spec["scrapeTimeout"]) == ("10m", "25s")
    assert "module" not in spec
    # Without TLS: plain HTTP, no TLS settings.
    plain = one(render(values("default"), *PROBE_ON), "Probe")["spec"]
    assert plain["prober"]["scheme"] == "http"
    assert "tlsConfig" not in plain and "basicAuth" not in plain


def test_probe_targets_are_names_the_exporter_accepts() -> None:
    """Each rendered target is one that the rendered config lets the exporter's /probe
    validate (the exporter's own lookup); the chart refuses a target it would answer 403."""
    from exporter.config import normalise_domain, parse

    def probe(*sets: str) -> list[dict[str, Any]]:
        return render(values("default"), "probe.enabled=true", *sets)

    docs = probe("probe.targets={example.com,WWW.Example.org.}")
    config = parse(exporter_config(docs), "chart")
    static = one(docs, "Probe")["spec"]["targets"]["staticConfig"]["static"]
    assert static == ["example.com", "WWW.Example.org."]
    assert all(config.domain(normalise_domain(t)) is not None for t in static)

    assert config.domain(normalise_domain("example.net")) is None
    proc = run_helm(
        "template",
        "rel",
        str(CHART),
        "-f",
        str(values("default")),
        "--set",
        "probe.enabled=true",
        "--set",
        "probe.targets={example.com,example.net}",
        check=False,
    )
    assert proc.returncode != 0
    assert "probe.targets: example.net is not one of config.domains" in proc.stderr
    # Unless the exporter validates any name, or its config is one the chart cannot read.
    docs = probe("probe.targets={example.net}", "config.probe.allow_any_target=true")
    assert parse(exporter_config(docs), "chart").probe.allow_any_target is True
    assert one(docs, "Probe")["spec"]["targets"]["staticConfig"]["static"] == ["example.net"]
    docs = probe("probe.targets={example.net}", "existingConfigMap=own-config")
    assert one(docs, "Probe")["spec"]["targets"]["staticConfig"]["static"] == ["example.net"]


def test_readme_kubernetes_samples_render(tmp_path: Path) -> None:
    """The README's my-values.yaml, and monitors.yaml over it, install as it says; so does
    its discovery-values.yaml, with the RBAC, the token and the mounts it describes."""
    readme = (ROOT / "README.md").read_text().split("\n## Kubernetes\n", 1)[1]
    samples = {}
    for block in re.findall(r"^```yaml\n(.*?)^```$", readme.split("\n## ", 1)[0], re.M | re.S):
        name = re.match(r"# (\S+\.yaml)", block)
        if name:
            samples[name[1]] = tmp_path / name[1]
            samples[name[1]].write_text(block)
    assert sorted(samples) == ["discovery-values.yaml", "monitors.yaml", "my-values.yaml"]
    docs = render(samples["my-values.yaml"])
    assert sorted(d["kind"] for d in docs if d["apiVersion"] == OPERATOR_API) == [
        "PrometheusRule",
        "ServiceMonitor",
    ]
    layered = ["-f", str(samples["my-values.yaml"]), "-f", str(samples["monitors.yaml"])]
    proc = run_helm("template", "rel", str(CHART), "--namespace", "monitoring", *layered)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    kubernetes_validate(docs, tmp_path)
    assert sorted(d["kind"] for d in docs if d["apiVersion"] == OPERATOR_API) == [
        "PodMonitor",
        "Probe",
        "PrometheusRule",
    ]
    assert one(docs, "PodMonitor")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert one(docs, "Probe")["spec"]["targets"]["staticConfig"]["static"] == [
        "example.com",
        "www.example.org",
    ]

    docs = render(samples["discovery-values.yaml"])
    kubernetes_validate(docs, tmp_path)
    found = rbac(docs)
    assert sorted(r["metadata"]["namespace"] for r in found["Role"]) == ["shop", "web"]
    assert all(
        granted(r) == KIND_RESOURCES["ingress"] | KIND_RESOURCES["certificate"]
        for r in found["Role"]
    )
    (cluster_role,) = found["ClusterRole"]
    assert granted(cluster_role) == CLUSTER_RESOURCES["certificate"]
    assert token_mounts(docs)["exporter"]
    mounted = {m["mountPath"] for m in containers(docs)["exporter"]["volumeMounts"]}
    patterns = exporter_config(docs)["sources"]["files"][0]["files"]
    assert {p.rsplit("/", 1)[0] for p in patterns} <= mounted


def test_probe_request_validates_with_the_real_exporter(
    lab_process: LabProcess, tmp_path: Path
) -> None:
    """The request Prometheus makes for the chart's Probe (the prober's path, ?target=) to an
    exporter running the chart's config validates the target: the lab's config rendered by
    the chart, the exporter started with it, the prober's URL pointed at it."""
    target = "healthy.example.com"
    overrides = tmp_path / "values.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "config": lab_process.config(),
                "unbound": {"enabled": False},  # the lab's own DNS server, as in its config
                "probe": {"enabled": True, "targets": [target]},
            }
        )
    )
    docs = render(overrides)
    spec = one(docs, "Probe")["spec"]
    config = write_config(tmp_path / "config.yml", exporter_config(docs))
    exporter = ExporterProcess("--config.file", str(config))
    try:
        (static,) = spec["targets"]["staticConfig"]["static"]
        assert spec["prober"]["scheme"] == "http"
        query = urllib.parse.urlencode({"target": static})
        status, body, _ = exporter.request(f"{spec['prober']['path']}?{query}")
        assert status == 200, body
        samples = parse_samples(body)
        assert value(samples, "acme_http01_validation_success", domain=target) == 1
        # A name the chart would refuse as a target is one the exporter refuses (403).
        status, body, _ = exporter.request(f"{spec['prober']['path']}?target=example.net")
        assert status == 403 and "not a configured domain" in body
    finally:
        exporter.stop()


def test_probe_needs_targets() -> None:
    proc = run_helm("template", "rel", str(CHART), "--set", "probe.enabled=true", check=False)
    assert proc.returncode != 0 and "probe.enabled needs probe.targets" in proc.stderr


# ------------------------------------------------------------------ PrometheusRule

CANONICAL_RULES = ROOT / "grafana" / "rules.yaml"
RULE_ON = "prometheusRule.enabled=true"
RUNBOOK_BASE = "https://wiki.example.net/acme-http01/runbook"
GRAFANA_BASE = "https://grafana.example.net/"


def canonical_alerts() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(CANONICAL_RULES.read_text())
    return {r["alert"]: r for g in document["groups"] for r in g["rules"] if "alert" in r}


def rendered_alerts(*sets: str) -> dict[str, dict[str, Any]]:
    rule = one(render(values("default"), RULE_ON, *sets), "PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize(
    "sets",
    [
        ("-f", str(values("monitoring"))),
        ("--set", RULE_ON),
        (
            "--set",
            RULE_ON,
            "--set",
            f"prometheusRule.runbookBaseUrl={RUNBOOK_BASE}",
            "--set",
            f"prometheusRule.dashboardBaseUrl={GRAFANA_BASE}",
        ),
    ],
    ids=["monitoring-values", "urls-unset", "urls-set"],
)
def test_prometheusrule_passes_promtool(sets: tuple[str, ...], tmp_path: Path) -> None:
    promtool = required("promtool")
    proc = run_helm("template", "rel", str(CHART), "--namespace", "monitoring", *sets)
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    rule = one(docs, "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheusrule_behaves_as_the_canonical_rules(tmp_path: Path) -> None:
    """The rendered rules, with the canonical job name, pass the repository's promtool unit
    tests: rendering (quoting, multi-line expressions, annotation templates) changes nothing."""
    promtool = required("promtool")
    rule = one(
        render(values("default"), RULE_ON, "prometheusRule.job=acme-http01-exporter"),
        "PrometheusRule",
    )
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    shutil.copy(ROOT / "grafana" / "rules_test.yaml", tmp_path / "rules_test.yaml")
    proc = subprocess.run(
        [promtool, "test", "rules", "rules_test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheusrule_links_default_to_the_projects_runbook() -> None:
    """By default the links are the file's: the runbook in the project's repository (the
    chart's home), at the alert's section; only the selector in the text changes."""
    canonical = canonical_alerts()
    alerts = rendered_alerts()
    assert set(alerts) == set(canonical)
    home = yaml.safe_load((CHART / "Chart.yaml").read_text())["home"]
    for name, alert in alerts.items():
        annotations = alert["annotations"]
        assert "dashboard_url" not in annotations, name  # no Grafana URL configured
        expected = {
            key: value.replace('job="acme-http01-exporter"', f'job="{FULLNAME}"')
            for key, value in canonical[name]["annotations"].items()
        }
        assert annotations == expected, name
        assert annotations["runbook_url"] == (
            f"{home}/blob/main/exporter/runbook.md#{name.lower()}"
        ), name
        assert alert["labels"]["severity"] == canonical[name]["labels"]["severity"], name


def rendered_rules(*sets: str) -> list[dict[str, Any]]:
    rule = one(render(values("default"), RULE_ON, *sets), "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


@pytest.mark.parametrize(
    ("sets", "selector"),
    [
        ((), f'job="{FULLNAME}"'),
        (("prometheusRule.job=acme",), 'job="acme"'),
        (
            (r'prometheusRule.selector=job="acme"\,namespace="monitoring"',),
            'job="acme",namespace="monitoring"',
        ),
    ],
    ids=["service-name", "job", "selector"],
)
def test_prometheusrule_selects_with_the_releases_selector(
    sets: tuple[str, ...], selector: str
) -> None:
    """Every expression, recording rules included, selects with the release's selector in
    place of the file's, wherever the file has it."""
    canonical = {
        r.get("alert") or r["record"]: r
        for g in yaml.safe_load(CANONICAL_RULES.read_text())["groups"]
        for r in g["rules"]
    }
    rendered = rendered_rules(*sets)
    assert len(rendered) == len(canonical)
    for rule in rendered:
        source = canonical[rule.get("alert") or rule["record"]]
        assert 'job="acme-http01-exporter"' not in rule["expr"], rule
        assert rule["expr"] == source["expr"].replace('job="acme-http01-exporter"', selector)
        assert rule["expr"].count(selector) == source["expr"].count('job="acme-http01-exporter"')


def test_prometheusrule_selector_must_be_label_matchers() -> None:
    proc = run_helm(
        "template", "rel", str(CHART), "--set-string", "prometheusRule.selector=job=x", check=False
    )
    assert proc.returncode != 0
    assert "at '/prometheusRule/selector'" in proc.stderr


def test_prometheusrule_runbook_and_dashboard_base_urls() -> None:
    alerts = rendered_alerts(
        f"prometheusRule.runbookBaseUrl={RUNBOOK_BASE}",
        f"prometheusRule.dashboardBaseUrl={GRAFANA_BASE}",
    )
    dashboard = "https://grafana.example.net/d/acme-http01/acme-http01-exporter"
    for name, alert in alerts.items():
        annotations = alert["annotations"]
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{name.lower()}"
        on_domain = f"{dashboard}?var-domain={{{{ $labels.domain }}}}"
        if "$labels.domain" in annotations["summary"]:
            assert annotations["dashboard_url"] == on_domain, name
        else:
            assert annotations["dashboard_url"] == dashboard, name
    assert "var-domain" in alerts["AcmeHttp01RenewalAtRisk"]["annotations"]["dashboard_url"]
    assert "var-domain" not in alerts["AcmeHttp01DomainsDropped"]["annotations"]["dashboard_url"]
    # Only one of them set.
    alerts = rendered_alerts(f"prometheusRule.runbookBaseUrl={RUNBOOK_BASE}")
    assert all("dashboard_url" not in a["annotations"] for a in alerts.values())
    alerts = rendered_alerts(f"prometheusRule.dashboardBaseUrl={GRAFANA_BASE}")
    canonical = canonical_alerts()
    for name, alert in alerts.items():
        assert alert["annotations"]["runbook_url"] == canonical[name]["annotations"]["runbook_url"]
        assert alert["annotations"]["dashboard_url"].startswith(dashboard)


def test_prometheusrule_severities_overridable_per_alert() -> None:
    """Every alert of the canonical file is listed in values.yaml and the schema, with the
    file's severity as the default, and each can be overridden or disabled."""
    canonical = canonical_alerts()
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]["alerts"]
    assert list(chart_values) == list(canonical)
    for name, settings in chart_values.items():
        assert settings == {"enabled": True, "severity": canonical[name]["labels"]["severity"]}
    schema = json.loads((CHART / "values.schema.json").read_text())
    alert_schema = schema["properties"]["prometheusRule"]["properties"]["alerts"]["properties"]
    assert list(alert_schema) == list(canonical)
    alerts = rendered_alerts(
        "prometheusRule.alerts.AcmeHttp01RenewalAtRisk.severity=warning",
        "prometheusRule.alerts.AcmeHttp01ValidationFailing.severity=critical",
        "prometheusRule.alerts.AcmeHttp01DomainsDropped.enabled=false",
    )
    assert alerts["AcmeHttp01RenewalAtRisk"]["labels"]["severity"] == "warning"
    assert alerts["AcmeHttp01ValidationFailing"]["labels"]["severity"] == "critical"
    assert "AcmeHttp01DomainsDropped" not in alerts


def test_sharded_statefulset() -> None:
    docs = render(values("sharded"))
    found = kinds(docs)
    assert "Deployment" not in found
    statefulset = one(docs, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == f"{FULLNAME}-headless"
    services = {s["metadata"]["name"]: s for s in found["Service"]}
    assert services[f"{FULLNAME}-headless"]["spec"]["clusterIP"] == "None"
    container = containers(docs, "StatefulSet")["exporter"]
    assert "--shard.count=3" in container["args"]
    assert "--shard.index=$(POD_NAME)" in container["args"]
    assert container["env"] == [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]


def test_existing_configmap_and_secret() -> None:
    docs = render(values("existing-config"))
    # Only Unbound's own ConfigMap: the exporter's config is the user's.
    assert [d["metadata"]["name"] for d in kinds(docs)["ConfigMap"]] == [f"{FULLNAME}-unbound"]
    template = one(docs, "Deployment")["spec"]["template"]
    assert template["spec"]["volumes"][0] == {
        "name": "config",
        "configMap": {"name": "my-acme-http01-config"},
    }
    annotations = template["metadata"].get("annotations") or {}
    assert "checksum/config" not in annotations and "checksum/unbound" in annotations
    docs = render(None, "existingSecret=acme-config", "unbound.enabled=false")
    assert "ConfigMap" not in kinds(docs)
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "config", "secret": {"secretName": "acme-config"}}]


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


# ----------------------------------------------------------------------- Unbound sidecar


def exporter_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    configmap = next(
        d for d in docs if d["kind"] == "ConfigMap" and "config.yml" in d.get("data", {})
    )
    loaded: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yml"])
    return loaded


def unbound_conf(docs: list[dict[str, Any]]) -> str:
    configmap = next(
        d for d in docs if d["kind"] == "ConfigMap" and "unbound.conf" in d.get("data", {})
    )
    return str(configmap["data"]["unbound.conf"])


def test_unbound_sidecar_renders_and_the_exporter_uses_it() -> None:
    docs = render(values("default"))
    found = containers(docs)
    assert list(found) == ["unbound", "exporter"]  # Unbound first: listening before lookups
    exporter, unbound = found["exporter"], found["unbound"]
    assert unbound["image"] == exporter["image"]  # one image, two containers
    assert unbound["command"] == ["/usr/sbin/unbound", "-d", "-c", "/etc/unbound/unbound.conf"]
    assert "args" not in unbound
    assert unbound["securityContext"] == exporter["securityContext"]
    assert unbound["securityContext"]["readOnlyRootFilesystem"] is True
    assert unbound["volumeMounts"] == [
        {"name": "unbound-config", "mountPath": "/etc/unbound", "readOnly": True},
        {"name": "unbound-run", "mountPath": "/run/unbound"},
    ]
    assert "port=5353" in unbound["livenessProbe"]["exec"]["command"][2]
    assert unbound["resources"]["limits"] == {"memory": "256Mi"}
    template = one(docs, "Deployment")["spec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["unbound-config"] == {
        "name": "unbound-config",
        "configMap": {"name": f"{FULLNAME}-unbound"},
    }
    assert volumes["unbound-run"] == {"name": "unbound-run", "emptyDir": {"sizeLimit": "1Mi"}}
    assert "checksum/unbound" in template["metadata"]["annotations"]
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == (
        "exporter"
    )

    assert exporter_config(docs)["resolver"] == {"nameservers": ["127.0.0.1"], "port": 5353}
    conf = unbound_conf(docs)
    for line in [
        "interface: 127.0.0.1",
        "port: 5353",
        'username: ""',
        'chroot: ""',
        'pidfile: "/run/unbound/unbound.pid"',
        'trust-anchor-file: "/usr/share/dns/root.key"',
        "ede: yes",
        "val-log-level: 2",
        "do-ip6: yes",
        "msg-cache-size: 16m",
        "rrset-cache-size: 32m",
    ]:
        assert f"\n    {line}\n" in conf, line
    # Recursive from the built-in root hints: no forwarding, no other root.
    for absent in ("forward-zone", "forward-addr", "root-hints", "stub-zone", "auto-trust-anchor"):
        assert absent not in conf


def test_unbound_settings_and_a_users_own_resolver() -> None:
    docs = render(values("unbound"))
    config = exporter_config(docs)
    assert config["resolver"] == {"nameservers": ["127.0.0.1"], "port": 5300, "timeout": "3s"}
    conf = unbound_conf(docs)
    assert "\n    port: 5300\n" in conf and "\n    verbosity: 2\n" in conf
    assert "\n    msg-cache-size: 32m\n    rrset-cache-size: 64m\n" in conf
    assert "\n    cache-max-ttl: 300\n    serve-expired: no\nremote-control:\n" in conf
    unbound = containers(docs)["unbound"]
    assert "port=5300" in unbound["livenessProbe"]["exec"]["command"][2]
    assert unbound["resources"]["limits"] == {"memory": "512Mi"}

    # Nameservers the user chose are kept as they are (Unbound then runs unused).
    docs = render(values("default"), "config.resolver.nameservers={192.0.2.53}")
    assert exporter_config(docs)["resolver"] == {"nameservers": ["192.0.2.53"]}


def test_unbound_disabled() -> None:
    docs = render(values("no-unbound"))
    assert list(containers(docs)) == ["exporter"]
    assert [d["metadata"]["name"] for d in kinds(docs)["ConfigMap"]] == [FULLNAME]
    assert "resolver" not in exporter_config(docs)
    template = one(docs, "Deployment")["spec"]["template"]
    assert [v["name"] for v in template["spec"]["volumes"]] == ["config"]
    assert "checksum/unbound" not in template["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/default-container" not in template["metadata"]["annotations"]


def test_unbound_sidecar_in_the_sharded_statefulset() -> None:
    docs = render(values("sharded"))
    assert list(containers(docs, "StatefulSet")) == ["unbound", "exporter"]
    assert exporter_config(docs)["resolver"]["port"] == 5353


def test_unbound_config_change_rolls_the_pods() -> None:
    def annotations(*sets: str) -> dict[str, str]:
        deployment = one(render(values("default"), *sets), "Deployment")
        found: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return found

    base = annotations()
    assert annotations("unbound.msgCacheSize=8m")["checksum/unbound"] != base["checksum/unbound"]
    changed = annotations("unbound.port=5300")
    assert changed["checksum/config"] != base["checksum/config"]  # the exporter's port too


def test_chart_unbound_conf_runs_in_a_real_unbound() -> None:
    """The chart's unbound.conf passes unbound-checkconf as rendered, and a real Unbound
    started from it, as the pod's user 65534 (when the tests run as root), answers the
    sidecar's liveness probe. Nothing leaves the host: the probe's name is answered by
    Unbound itself and every upstream address is forbidden."""
    checkconf = required("unbound-checkconf", Path("/usr/sbin/unbound-checkconf"))
    unbound = required("unbound", Path("/usr/sbin/unbound"))
    if not Path("/usr/share/dns/root.key").is_file() and not os.environ.get("CI"):
        pytest.skip("dns-root-data not installed (run scripts/test.sh)")
    from exporter.lab.ports import free_port

    as_pod_user: list[str] = []
    if os.geteuid() == 0 and shutil.which("setpriv"):
        as_pod_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    port = free_port()
    docs = render(values("default"), f"unbound.port={port}")
    with tempfile.TemporaryDirectory(prefix="chart-unbound-") as tmp:
        top = Path(tmp)
        top.chmod(0o755)  # readable by the pod's user
        run = top / "run"  # the emptyDir
        run.mkdir()
        run.chmod(0o777)
        conf = unbound_conf(docs).replace('"/run/unbound', f'"{run}')
        conf = conf.replace(
            "\nremote-control:",
            "\n    do-not-query-address: 0.0.0.0/0\n    do-not-query-address: ::/0"
            "\nremote-control:",
        )
        path = top / "unbound.conf"
        path.write_text(conf)
        path.chmod(0o644)
        check = subprocess.run([checkconf, str(path)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr

        probe = containers(docs)["unbound"]["livenessProbe"]["exec"]["command"]
        assert probe[:2] == ["python3", "-c"]
        server = subprocess.Popen(
            [*as_pod_user, unbound, "-d", "-c", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                proc = subprocess.run(
                    [sys.executable, "-c", probe[2]],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    env=subprocess_env(),
                )
                if proc.returncode == 0 or time.monotonic() > deadline:
                    break
                if server.poll() is not None:
                    break
                time.sleep(0.05)
            assert proc.returncode == 0, proc.stderr
            assert (run / "unbound.pid").read_text().strip() == str(server.pid)
        finally:
            server.terminate()
            output, _ = server.communicate(timeout=10)
    assert server.returncode == 0, output
    assert b"error" not in output.lower(), output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-f", str(values("default"))], "DNS: the exporter resolves through Unbound"),
        (
            ["-f", str(values("existing-config"))],
            'resolver: {nameservers: ["127.0.0.1"], port: 5353}',
        ),
        (["--set", "config.resolver.nameservers={192.0.2.53}"], "does not use the Unbound sidecar"),
        (["-f", str(values("no-unbound"))], None),
    ],
    ids=["default", "existing-config", "own-resolver", "disabled"],
)
def test_notes_name_the_resolver(args: list[str], expected: str | None) -> None:
    proc = run_helm("install", "rel", str(CHART), "--dry-run=client", "-n", "mon", *args)
    notes = proc.stdout[proc.stdout.index("NOTES:") :]
    if expected is None:
        assert "Unbound" not in notes
    else:
        assert expected in notes


# ------------------------------------------------------------------ operator values

DIGEST = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def pod_spec(docs: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, kind)["spec"]["template"]["spec"]
    return spec


def test_operator_values() -> None:
    docs = render(values("operator"))
    pod = pod_spec(docs)
    found = containers(docs)
    assert list(found) == ["unbound", "exporter", "log-shipper"]  # extras after the exporter
    image = f"ghcr.io/acme-http01-exporter/acme-http01-exporter@{DIGEST}"
    assert found["exporter"]["image"] == found["unbound"]["image"] == image
    # The tag stays the version label.
    assert one(docs, "Deployment")["metadata"]["labels"]["app.kubernetes.io/version"] == "0.1.0"
    assert found["exporter"]["env"] == [
        {"name": "HTTPS_PROXY", "value": ""},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    assert "env" not in found["unbound"]
    assert found["exporter"]["volumeMounts"][-1] == {
        "name": "extra-ca",
        "mountPath": "/etc/ssl/corporate",
        "readOnly": True,
    }
    assert pod["volumes"][-1] == {"name": "extra-ca", "configMap": {"name": "corporate-ca"}}
    assert found["log-shipper"]["image"] == "busybox:1.36"
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"  # the convention with hostNetwork
    assert pod["dnsConfig"] == {"options": [{"name": "ndots", "value": "1"}]}


def test_operator_values_absent_by_default() -> None:
    pod = pod_spec(render(values("default")))
    for key in ("hostNetwork", "dnsPolicy", "dnsConfig"):
        assert key not in pod, key
    exporter = {c["name"]: c for c in pod["containers"]}["exporter"]
    assert "env" not in exporter
    assert exporter["image"].endswith(":0.1.0") and "@" not in exporter["image"]
    assert [m["name"] for m in exporter["volumeMounts"]] == ["config"]


@pytest.mark.parametrize(
    ("sets", "image"),
    [
        ([], "ghcr.io/acme-http01-exporter/acme-http01-exporter:0.1.0"),
        (
            ["global.imageRegistry=registry.internal"],
            "registry.internal/acme-http01-exporter/acme-http01-exporter:0.1.0",
        ),
        (
            ["global.imageRegistry=mirror.internal:5000/"],
            "mirror.internal:5000/acme-http01-exporter/acme-http01-exporter:0.1.0",
        ),
        (
            ["global.imageRegistry=registry.internal", f"image.digest={DIGEST}"],
            f"registry.internal/acme-http01-exporter/acme-http01-exporter@{DIGEST}",
        ),
        (  # a Docker Hub name has no registry part: the registry goes in front
            ["global.imageRegistry=registry.internal", "image.repository=acme/exporter"],
            "registry.internal/acme/exporter:0.1.0",
        ),
        (
            ["global.imageRegistry=registry.internal", "image.repository=localhost/exporter"],
            "registry.internal/exporter:0.1.0",
        ),
    ],
    ids=["none", "registry", "with-port", "digest", "docker-hub-name", "localhost"],
)
def test_global_image_registry_replaces_the_registry(sets: list[str], image: str) -> None:
    found = containers(render(values("operator"), "image.digest=", *sets))
    assert found["exporter"]["image"] == found["unbound"]["image"] == image
    assert found["log-shipper"]["image"] == "busybox:1.36"  # the user's own containers: as given


def test_dns_policy() -> None:
    assert pod_spec(render(values("default"), "dnsPolicy=None"))["dnsPolicy"] == "None"
    pod = pod_spec(render(values("default"), "hostNetwork=true", "dnsPolicy=Default"))
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "Default"  # explicit wins
    pod = pod_spec(render(values("default"), "hostNetwork=true"))
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_extra_env_with_the_shards_pod_name() -> None:
    docs = render(values("sharded"), "extraEnv[0].name=TZ", "extraEnv[0].value=UTC")
    env = containers(docs, "StatefulSet")["exporter"]["env"]
    assert [e["name"] for e in env] == ["POD_NAME", "TZ"]


def test_common_labels_on_every_resource() -> None:
    labels = {"team": "platform", "tier": "observability"}
    for name in ("operator", "monitoring", "web-tls", "sharded", "discovery"):
        docs = render(values(name), "commonLabels.team=platform", "commonLabels.tier=observability")
        for doc in docs:
            found = doc["metadata"]["labels"]
            assert labels.items() <= found.items(), (name, doc["kind"], doc["metadata"]["name"])
            assert found["app.kubernetes.io/name"] == "acme-http01-exporter"
            if doc["kind"] in ("Deployment", "StatefulSet"):
                pod_labels = doc["spec"]["template"]["metadata"]["labels"]
                assert labels.items() <= pod_labels.items()
                # The selector is unchanged (it cannot change on an upgrade).
                assert "team" not in doc["spec"]["selector"]["matchLabels"]
    # A number-like label value stays a string (values("operator"): cost-center "4711").
    for doc in render(values("operator")):
        assert doc["metadata"]["labels"]["cost-center"] == "4711", doc["kind"]


# ------------------------------------------------------------------ web config

WEB_CONFIG_FILE = "/etc/acme-http01-exporter/web/web-config.yml"


def web_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"] == f"{FULLNAME}-web-config"
    loaded: dict[str, Any] = yaml.safe_load(
        base64.b64decode(secret["data"]["web-config.yml"]).decode()
    )
    return loaded


def probes(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    exporter = containers(docs)["exporter"]
    return exporter["livenessProbe"], exporter["readinessProbe"]


def test_no_web_config_by_default() -> None:
    docs = render(values("default"))
    assert "Secret" not in kinds(docs)
    assert not any(a.startswith("--web.config") for a in containers(docs)["exporter"]["args"])
    for probe in probes(docs):
        assert "scheme" not in probe["httpGet"] and "httpHeaders" not in probe["httpGet"]


def test_web_config_with_tls_and_basic_auth() -> None:
    source = yaml.safe_load(values("web-tls").read_text())["webConfig"]
    docs = render(values("web-tls"))
    config = web_config(docs)
    assert config == {
        "tls_server_config": {
            "min_version": "TLS12",
            "client_auth_type": "VerifyClientCertIfGiven",
            # Filled in from the mounted TLS Secret.
            "cert_file": "/etc/acme-http01-exporter/tls/tls.crt",
            "key_file": "/etc/acme-http01-exporter/tls/tls.key",
            "client_ca_file": "/etc/acme-http01-exporter/tls/ca.crt",
        },
        "basic_auth_users": source["config"]["basic_auth_users"],
        "http_server_config": source["config"]["http_server_config"],
    }
    exporter = containers(docs)["exporter"]
    assert f"--web.config.file={WEB_CONFIG_FILE}" in exporter["args"]
    assert exporter["volumeMounts"][0] == {
        "name": "config",
        "mountPath": "/etc/acme-http01-exporter",
        "readOnly": True,
    }
    volume = pod_spec(docs)["volumes"][0]
    assert volume == {
        "name": "config",
        "projected": {
            "sources": [
                {"configMap": {"name": FULLNAME}},  # every key, as without a web config
                {
                    "secret": {
                        "name": f"{FULLNAME}-web-config",
                        "items": [{"key": "web-config.yml", "path": "web/web-config.yml"}],
                    }
                },
                {
                    "secret": {
                        "name": "acme-http01-exporter-tls",
                        "items": [
                            {"key": "tls.crt", "path": "tls/tls.crt"},
                            {"key": "tls.key", "path": "tls/tls.key"},
                            {"key": "ca.crt", "path": "tls/ca.crt"},
                        ],
                    }
                },
            ]
        },
    }
    # The paths the web config names are the files the volume holds.
    mounted = {
        f"/etc/acme-http01-exporter/{item['path']}"
        for source_ in volume["projected"]["sources"]
        for item in next(iter(source_.values())).get("items", [])
    }
    tls = config["tls_server_config"]
    assert {WEB_CONFIG_FILE, tls["cert_file"], tls["key_file"], tls["client_ca_file"]} <= mounted

    # The probes: HTTPS, logged in as the probes' own user.
    credentials = source["probes"]["basicAuth"]
    expected_header = base64.b64encode(
        f"{credentials['username']}:{credentials['password']}".encode()
    ).decode()
    for probe, path in zip(probes(docs), ("/-/healthy", "/-/ready"), strict=True):
        assert probe["httpGet"] == {
            "path": path,
            "port": "http",
            "scheme": "HTTPS",
            "httpHeaders": [{"name": "Authorization", "value": f"Basic {expected_header}"}],
        }
    try:
        import bcrypt
    except ImportError:  # pragma: no cover - the exporter depends on it for basic auth
        bcrypt = None
    if bcrypt is not None:  # the probes' password is the one the web config accepts
        hashed = config["basic_auth_users"][credentials["username"]]
        assert bcrypt.checkpw(credentials["password"].encode(), hashed.encode())

    # The ServiceMonitor follows: HTTPS, the given TLS settings, basic auth from a Secret.
    endpoint = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "acme-http01-exporter-tls", "key": "ca.crt"}},
        "serverName": "rel-acme-http01-exporter.monitoring.svc",
    }
    assert endpoint["basicAuth"] == {
        "username": {"name": "acme-http01-exporter-scrape", "key": "username"},
        "password": {"name": "acme-http01-exporter-scrape", "key": "password"},
    }


def test_web_config_tls_alone_and_config_alone() -> None:
    # Only the TLS Secret: a web config naming its files, no client CA.
    docs = render(
        values("default"), "webConfig.tls.existingSecret=tls", "serviceMonitor.enabled=true"
    )
    assert web_config(docs) == {
        "tls_server_config": {
            "cert_file": "/etc/acme-http01-exporter/tls/tls.crt",
            "key_file": "/etc/acme-http01-exporter/tls/tls.key",
        }
    }
    tls_items = pod_spec(docs)["volumes"][0]["projected"]["sources"][2]["secret"]["items"]
    assert [i["key"] for i in tls_items] == ["tls.crt", "tls.key"]  # no ca.crt needed
    endpoint = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}  # the documented default
    assert "basicAuth" not in endpoint
    assert all(p["httpGet"]["scheme"] == "HTTPS" for p in probes(docs))

    # Only headers: a web config, plain HTTP everywhere.
    docs = render(
        values("default"),
        "webConfig.config.http_server_config.headers.X-Frame-Options=deny",
        "serviceMonitor.enabled=true",
    )
    assert web_config(docs) == {"http_server_config": {"headers": {"X-Frame-Options": "deny"}}}
    sources = pod_spec(docs)["volumes"][0]["projected"]["sources"]
    assert len(sources) == 2
    endpoint = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert "scheme" not in endpoint and "tlsConfig" not in endpoint
    assert all("scheme" not in p["httpGet"] for p in probes(docs))

    # Its own certificate paths (e.g. from extraVolumes) are kept.
    docs = render(
        values("default"),
        "webConfig.tls.existingSecret=tls",
        "webConfig.config.tls_server_config.client_auth_type=RequireAndVerifyClientCert",
        "webConfig.config.tls_server_config.client_ca_file=/etc/ssl/clients/ca.crt",
    )
    tls = web_config(docs)["tls_server_config"]
    assert tls["client_ca_file"] == "/etc/ssl/clients/ca.crt"
    tls_items = pod_spec(docs)["volumes"][0]["projected"]["sources"][2]["secret"]["items"]
    assert [i["key"] for i in tls_items] == ["tls.crt", "tls.key"]


def test_web_config_from_existing_secrets() -> None:
    docs = render(values("web-existing-secret"))
    assert "Secret" not in kinds(docs) and "ConfigMap" in kinds(docs)  # only Unbound's
    sources = pod_spec(docs)["volumes"][0]["projected"]["sources"]
    assert sources == [
        {"secret": {"name": "acme-http01-config"}},
        {
            "secret": {
                "name": "acme-http01-web-config",
                "items": [{"key": "web-config.yml", "path": "web/web-config.yml"}],
            }
        },
        {
            "secret": {
                "name": "acme-http01-exporter-tls",
                "items": [
                    {"key": "tls.crt", "path": "tls/tls.crt"},
                    {"key": "tls.key", "path": "tls/tls.key"},
                ],
            }
        },
    ]
    assert f"--web.config.file={WEB_CONFIG_FILE}" in containers(docs)["exporter"]["args"]
    for probe in probes(docs):  # probes.mode: tcp
        assert "httpGet" not in probe and probe["tcpSocket"] == {"port": "http"}
    endpoint = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["basicAuth"] == {
        "username": {"name": "acme-http01-scrape", "key": "user"},
        "password": {"name": "acme-http01-scrape", "key": "pass"},
    }
    # An existing web config with the config from a ConfigMap, without TLS: plain HTTP.
    docs = render(values("existing-config"), "webConfig.existingSecret=web")
    sources = pod_spec(docs)["volumes"][0]["projected"]["sources"]
    assert sources[0]["configMap"]["name"] == "my-acme-http01-config"
    assert all("scheme" not in p["httpGet"] for p in probes(docs))


HASH = "$2b$10$oqCrdC4t3tWIKZ4cGVelOeWUkCuct0YtqgvILOmZgtgWo6N2m8JUq"


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        # Basic auth the probes cannot pass: they only connect.
        ([f"webConfig.config.basic_auth_users.prometheus={HASH}"], "tcp"),
        # ... unless told to GET anyway (e.g. the exporter's web config is elsewhere).
        (
            [
                f"webConfig.config.basic_auth_users.prometheus={HASH}",
                "webConfig.probes.mode=http",
            ],
            "http",
        ),
        # A client certificate required: the kubelet has none.
        (
            [
                "webConfig.tls.existingSecret=tls",
                "webConfig.config.tls_server_config.client_auth_type=RequireAndVerifyClientCert",
            ],
            "tcp",
        ),
        # Optional client certificates: HTTPS GET.
        (
            [
                "webConfig.tls.existingSecret=tls",
                "webConfig.config.tls_server_config.client_auth_type=VerifyClientCertIfGiven",
            ],
            "https",
        ),
        (["webConfig.tls.existingSecret=tls", "webConfig.probes.mode=tcp"], "tcp"),
        (["webConfig.existingSecret=web"], "http"),  # the chart cannot know: it GETs
    ],
    ids=[
        "basic-auth",
        "basic-auth-forced-http",
        "require-verify-cert",
        "cert-if-given",
        "mode-tcp",
        "existing-secret",
    ],
)
def test_probes_follow_the_web_config(sets: list[str], expected: str) -> None:
    docs = render(values("default"), *sets)
    for probe, timing in zip(
        probes(docs), ({"periodSeconds": 20}, {"periodSeconds": 10}), strict=True
    ):
        assert timing.items() <= probe.items()  # the timing is kept
        if expected == "tcp":
            assert "httpGet" not in probe and probe["tcpSocket"] == {"port": "http"}
        else:
            assert probe["httpGet"].get("scheme", "HTTP") == expected.upper()
            assert "httpHeaders" not in probe["httpGet"]


def test_probes_of_the_users_own_kept() -> None:
    docs = render(
        values("default"),
        "webConfig.tls.existingSecret=tls",
        "webConfig.probes.basicAuth.username=kubelet",
        "webConfig.probes.basicAuth.password=pw",
        "livenessProbe.httpGet.httpHeaders[0].name=X-Probe",
        "livenessProbe.httpGet.httpHeaders[0].value=kubelet",
        "readinessProbe.httpGet=null",
        "readinessProbe.exec.command={/bin/true}",
    )
    liveness, readiness = probes(docs)
    authorization = "Basic " + base64.b64encode(b"kubelet:pw").decode()
    assert liveness["httpGet"]["httpHeaders"] == [
        {"name": "X-Probe", "value": "kubelet"},
        {"name": "Authorization", "value": authorization},
    ]
    assert readiness["exec"] == {"command": ["/bin/true"]} and "httpGet" not in readiness


def test_notes_follow_the_web_config() -> None:
    proc = run_helm(
        "install",
        "rel",
        str(CHART),
        "--dry-run=client",
        "-n",
        "monitoring",
        "-f",
        str(values("web-tls")),
    )
    notes = proc.stdout[proc.stdout.index("NOTES:") :]
    assert "https://127.0.0.1:9469/metrics" in notes
    assert f"--web.config.file={WEB_CONFIG_FILE}" in notes
    assert "serviceMonitor.basicAuth.secretName" not in notes  # it is set
    proc = run_helm(
        "install",
        "rel",
        str(CHART),
        "--dry-run=client",
        "-n",
        "monitoring",
        "-f",
        str(values("default")),
        "--set",
        f"webConfig.config.basic_auth_users.p={HASH}",
        "--set",
        "serviceMonitor.enabled=true",
    )
    notes = proc.stdout[proc.stdout.index("NOTES:") :]
    assert "http://127.0.0.1:9469/metrics" in notes
    assert "set serviceMonitor.basicAuth.secretName" in notes


# ------------------------------------------------------------------ as a subchart


@pytest.fixture
def umbrella(tmp_path: Path) -> Path:
    """An umbrella chart with this chart as a file:// dependency, twice: as itself and
    under an alias (as an Argo CD app of apps or a platform chart would)."""
    chart = tmp_path / "platform"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "platform",
                "version": "1.0.0",
                "dependencies": [
                    {
                        "name": "acme-http01-exporter",
                        "version": "0.1.0",
                        "repository": f"file://{CHART}",
                    },
                    {
                        "name": "acme-http01-exporter",
                        "alias": "acme-eu",
                        "version": "0.1.0",
                        "repository": f"file://{CHART}",
                        "condition": "acme-eu.enabled",
                    },
                ],
            }
        )
    )
    (chart / "values.yaml").write_text(
        "acme-http01-exporter:\n  config:\n    domains: [example.com]\nacme-eu:\n  enabled: false\n"
    )
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: platform\n"
        "data:\n"
        '  registry: {{ dig "imageRegistry" "none" (.Values.global | default dict) | quote }}\n'
    )
    run_helm("dependency", "build", str(chart))
    assert (chart / "charts" / "acme-http01-exporter-0.1.0.tgz").is_file()
    return chart


def render_umbrella(chart: Path, *args: str) -> list[dict[str, Any]]:
    proc = run_helm("template", "umb", str(chart), "--namespace", "monitoring", *args)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_as_a_subchart_without_globals(umbrella: Path) -> None:
    docs = render_umbrella(umbrella)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "umb-acme-http01-exporter") in names
    assert ("ConfigMap", "platform") in names
    assert not any(name.startswith("umb-acme-eu") for _, name in names)  # condition off
    assert exporter_config(docs)["domains"] == ["example.com"]


def test_as_a_subchart_with_globals_and_values(umbrella: Path, tmp_path: Path) -> None:
    overrides = tmp_path / "platform-values.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "global": {"imageRegistry": "registry.internal", "labels": {"a": "b"}},
                "acme-http01-exporter": {
                    "commonLabels": {"team": "platform"},
                    "image": {"digest": DIGEST},
                    "serviceMonitor": {"enabled": True},
                    "webConfig": {"tls": {"existingSecret": "exporter-tls"}},
                },
                "acme-eu": {
                    "enabled": True,
                    "perspective": "eu-west",
                    "config": {"domains": ["example.org"]},
                },
            }
        )
    )
    docs = render_umbrella(umbrella, "-f", str(overrides), "--set", "global.extra=1")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert by_name[("ConfigMap", "platform")]["data"]["registry"] == "registry.internal"
    deployment = by_name[("Deployment", "umb-acme-http01-exporter")]
    assert deployment["metadata"]["labels"]["team"] == "platform"
    exporter = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    # global.imageRegistry applies to the subchart's image.
    assert exporter["exporter"]["image"] == (
        f"registry.internal/acme-http01-exporter/acme-http01-exporter@{DIGEST}"
    )
    assert f"--web.config.file={WEB_CONFIG_FILE}" in exporter["exporter"]["args"]
    monitor = by_name[("ServiceMonitor", "umb-acme-http01-exporter")]
    assert monitor["spec"]["endpoints"][0]["scheme"] == "https"
    # The aliased copy: its own name, values and resources.
    aliased = by_name[("Deployment", "umb-acme-eu")]
    args = {c["name"]: c for c in aliased["spec"]["template"]["spec"]["containers"]}["exporter"][
        "args"
    ]
    assert "--perspective=eu-west" in args
    assert yaml.safe_load(by_name[("ConfigMap", "umb-acme-eu")]["data"]["config.yml"])[
        "domains"
    ] == ["example.org"]
    assert ("ServiceMonitor", "umb-acme-eu") not in by_name

    # The subchart's schema still applies through the umbrella.
    proc = run_helm(
        "template", "umb", str(umbrella), "--set", "acme-http01-exporter.shards=0", check=False
    )
    assert proc.returncode != 0 and "minimum: got 0, want 1" in proc.stderr


def test_as_a_subchart_passes_kubernetes_validate(umbrella: Path, tmp_path: Path) -> None:
    docs = render_umbrella(
        umbrella, "--set", "global.imageRegistry=r", "--set", "acme-eu.enabled=true"
    )
    kubernetes_validate(docs, tmp_path)


def test_schema_accepts_global_on_its_own() -> None:
    proc = run_helm(
        "template", "rel", str(CHART), "--set-json", 'global={"imageRegistry":"r","x":{"y":[1]}}'
    )
    assert "kind: Deployment" in proc.stdout


# ------------------------------------------------------------------ README, Chart.yaml

CHART_README = ROOT / "scripts" / "chart_readme.py"


def load_chart_readme() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("chart_readme", CHART_README)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chart_readme"] = module
    spec.loader.exec_module(module)
    return module


def test_chart_readme_is_generated_and_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(CHART_README), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_chart_readme_check_fails_when_stale(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    values_file = chart / "values.yaml"
    values_file.write_text(
        values_file.read_text().replace("# -- Service type.", "# -- The Service's type.")
    )
    command = [sys.executable, str(CHART_README), "--chart", str(chart)]
    proc = subprocess.run([*command, "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "out of date" in proc.stderr
    subprocess.run(command, check=True, timeout=60)  # regenerates
    assert (
        '| `service.type` | string | `"ClusterIP"` | The Service\'s type. |'
        in (chart / "README.md").read_text()
    )
    proc = subprocess.run([*command, "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # A value without a comment fails too.
    values_file.write_text(values_file.read_text() + "undocumentedValue: 1\n")
    proc = subprocess.run([*command, "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "undocumentedValue" in proc.stderr


def test_chart_readme_parser() -> None:
    module = load_chart_readme()
    rows = module.parse(
        "# Not documentation.\n"
        "top:\n"
        "  # -- A nested value,\n"
        "  # on two lines | with a pipe.\n"
        "  leaf: 3\n"
        "  # -- (string) A typed map.\n"
        "  # @default -- `computed`\n"
        "  map:\n"
        "    inner: [1, 2]\n"
        "  # -- Detached by the blank line.\n"
        "\n"
        "  other: x\n"
        "# -- A list.\n"
        "items:\n"
        "  - a: 1\n"
        "# -- Flag.\n"
        "flag: false\n"
    )
    assert [(r.key, r.type, r.default, r.description) for r in rows] == [
        ("top.leaf", "int", "`3`", "A nested value, on two lines | with a pipe."),
        ("top.map", "string", "`computed`", "A typed map."),
        ("items", "list", '`[{"a":1}]`', "A list."),
        ("flag", "bool", "`false`", "Flag."),
    ]
    table = module.values_table(rows)
    assert "| `top.leaf` | int | `3` | A nested value, on two lines \\| with a pipe. |" in table
    assert module.undocumented("a:\n  b: 1\n# -- C.\nc: {d: 1}\ne: {}\n") == ["a.b", "e"]


def test_every_value_is_documented_and_typed() -> None:
    module = load_chart_readme()
    text = (CHART / "values.yaml").read_text()
    assert module.undocumented(text) == []
    schema = json.loads((CHART / "values.schema.json").read_text())
    for row in module.parse(text):
        node = schema
        for part in row.key.split("."):
            properties = node.get("properties")
            if properties is None:  # a free-form object (config, resources, ...)
                break
            assert part in properties, row.key
            node = properties[part]
        else:
            assert "type" in node, row.key


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["maintainers"] and all(m["name"] for m in chart["maintainers"])
    assert {"acme", "letsencrypt", "prometheus", "exporter"} <= set(chart["keywords"])
    assert chart["sources"]
    annotations = chart["annotations"]
    assert annotations["artifacthub.io/prerelease"] == "false"
    pyproject = (ROOT / "pyproject.toml").read_text()
    license_ = annotations["artifacthub.io/license"]
    assert re.search(rf'^license = (\{{ text = )?"{re.escape(license_)}"', pyproject, re.M)
    images = yaml.safe_load(annotations["artifacthub.io/images"])
    assert images == [
        {
            "name": "acme-http01-exporter",
            "image": f"{chart_values['image']['repository']}:{chart['appVersion']}",
        }
    ]
    changes = yaml.safe_load(annotations["artifacthub.io/changes"])
    assert changes and all(
        c["kind"] in {"added", "changed", "deprecated", "removed", "fixed", "security"}
        and c["description"]
        for c in changes
    )
    links = yaml.safe_load(annotations["artifacthub.io/links"])
    urls = [link["url"] for link in links] + chart["sources"] + [chart.get("home", "https://x")]
    for url in urls:
        assert url.startswith("https://"), url
        assert "example" not in url, url  # no placeholder hosts
    readme = (CHART / "README.md").read_text()
    assert f"Version: `{chart['version']}`" in readme


def self_signed(directory: Path) -> None:
    """A CA and a server certificate it signs, as cert-manager's Secret holds them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, signer: Any
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("acme-http01-exporter test CA", ca_key, None, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(f"{FULLNAME}.monitoring.svc", key, ca.subject, ca_key)
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca.public_bytes(pem))
    (directory / "tls.crt").write_bytes(cert.public_bytes(pem))
    (directory / "tls.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.mark.parametrize("name", ["web-tls", "operator"])
def test_rendered_web_config_loads_in_the_exporter(name: str, tmp_path: Path) -> None:
    """The web config the chart writes, with the files of the volume where the pod has
    them, is one the exporter accepts (TLS with the Secret's files, the users, headers)."""
    webconfig = pytest.importorskip("exporter.webconfig")
    import ssl

    sets = [] if name == "web-tls" else ["webConfig.tls.existingSecret=tls"]
    docs = render(values(name), *sets)
    secret = one(docs, "Secret")
    text = base64.b64decode(secret["data"]["web-config.yml"]).decode()
    root = tmp_path / "etc" / "acme-http01-exporter"  # the config volume's mount point
    (root / "web").mkdir(parents=True)
    (root / "tls").mkdir()
    self_signed(root / "tls")
    path = root / WEB_CONFIG_FILE.removeprefix("/etc/acme-http01-exporter/")
    path.write_text(text.replace("/etc/acme-http01-exporter/", f"{root}/"))
    loaded = webconfig.load_web_config(path)
    assert loaded.ssl_context is not None
    if name == "web-tls":
        assert loaded.ssl_context.verify_mode == ssl.CERT_OPTIONAL  # VerifyClientCertIfGiven
        assert sorted(loaded.users) == [b"kubelet", b"prometheus"]
        assert dict(loaded.headers)["X-Content-Type-Options"] == "nosniff"
    else:
        assert loaded.ssl_context.verify_mode == ssl.CERT_NONE and not loaded.users


def test_tls_is_on_only_with_a_certificate() -> None:
    # tls_server_config without a certificate: exporter-toolkit serves plain HTTP.
    docs = render(values("default"), "webConfig.config.tls_server_config.min_version=TLS13")
    assert all("scheme" not in p["httpGet"] for p in probes(docs))
    # An inline certificate: HTTPS, and no file paths added.
    docs = render(
        values("default"),
        "webConfig.tls.existingSecret=tls",
        "webConfig.config.tls_server_config.cert=PEM",
        "webConfig.config.tls_server_config.key=PEM",
    )
    assert web_config(docs)["tls_server_config"] == {"cert": "PEM", "key": "PEM"}
    assert all(p["httpGet"]["scheme"] == "HTTPS" for p in probes(docs))
    docs = render(
        values("default"),
        "webConfig.config.tls_server_config.cert_file=/etc/ssl/own/tls.crt",
        "webConfig.config.tls_server_config.key_file=/etc/ssl/own/tls.key",
    )
    assert all(p["httpGet"]["scheme"] == "HTTPS" for p in probes(docs))


@pytest.mark.parametrize(
    ("sets", "prefix"),
    [
        ((), ""),
        (("web.externalUrl=https://tools.example.net/acme/",), "/acme"),
        (("web.routePrefix=/x", "web.externalUrl=https://tools.example.net/acme/"), "/x"),
        (("web.routePrefix=/", "web.externalUrl=https://tools.example.net/acme/"), ""),
    ],
)
def test_route_prefix_moves_every_path_the_chart_scrapes(
    sets: tuple[str, ...], prefix: str
) -> None:
    """web.*: the exporter's flags, and the probes', monitors' and Probe's paths under the
    prefix the exporter computes from them (Prometheus' rule)."""
    docs = render(
        values("default"),
        *sets,
        "serviceMonitor.enabled=true",
        "probe.enabled=true",
        "probe.targets[0]=example.com",
        "config.domains[0]=example.com",
    )
    exporter = containers(docs)["exporter"]
    assert exporter["livenessProbe"]["httpGet"]["path"] == f"{prefix}/-/healthy"
    assert exporter["readinessProbe"]["httpGet"]["path"] == f"{prefix}/-/ready"
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["path"] == f"{prefix}/metrics"
    assert one(docs, "Probe")["spec"]["prober"]["path"] == f"{prefix}/probe"
    flags = sorted(a for a in exporter["args"] if a.startswith(("--web.external", "--web.route")))
    given = {"web.externalUrl": "--web.external-url", "web.routePrefix": "--web.route-prefix"}
    assert flags == sorted(given[k] + "=" + v for k, _, v in (s.partition("=") for s in sets))


def test_the_paths_the_chart_renders_answer_on_the_real_exporter() -> None:
    """The flags the chart gives the exporter, and the paths it probes and scrapes, against
    the real exporter (its demo): each answers 200."""
    docs = render(
        values("default"),
        "web.externalUrl=https://tools.example.net/acme/",
        "web.telemetryPath=/telemetry",
        "serviceMonitor.enabled=true",
        "probe.enabled=true",
        "probe.targets[0]=healthy.example.com",
        "config.domains[0]=healthy.example.com",
    )
    exporter_spec = containers(docs)["exporter"]
    flags = [a for a in exporter_spec["args"] if a.startswith("--web.") and "listen" not in a]
    assert len(flags) == 2
    paths = [
        exporter_spec["livenessProbe"]["httpGet"]["path"],
        exporter_spec["readinessProbe"]["httpGet"]["path"],
        one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["path"],
        one(docs, "Probe")["spec"]["prober"]["path"] + "?target=healthy.example.com",
    ]
    assert paths[2] == "/acme/telemetry"
    exporter = ExporterProcess("--demo", *flags)
    try:
        deadline = time.monotonic() + 60
        while exporter.request(paths[1])[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        for path in paths:
            assert exporter.request(path)[0] == 200, path
        assert exporter.request("/metrics")[0] == 404
    finally:
        exporter.stop()


# ------------------------------------------------------------------ domain discovery

RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
READ_VERBS = ["get", "list", "watch"]
# What each kind of config.sources.kubernetes reads (design: issue #21): (group, resource).
KIND_RESOURCES = {
    "ingress": {("networking.k8s.io", "ingresses")},
    "certificate": {("cert-manager.io", "certificates"), ("cert-manager.io", "issuers")},
    "httproute": {
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "gateways"),
    },
}
CLUSTER_RESOURCES = {"certificate": {("cert-manager.io", "clusterissuers")}}
KINDS = tuple(KIND_RESOURCES)


def render_values(overrides: dict[str, Any], *sets: str) -> list[dict[str, Any]]:
    """The chart rendered with ``overrides`` as a values file (over the defaults)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as file:
        file.write(yaml.safe_dump(overrides))
        file.flush()
        return render(Path(file.name), *sets)


def kubernetes_source(enabled: tuple[str, ...] = KINDS, **settings: Any) -> dict[str, Any]:
    """Values with config.sources.kubernetes: ``enabled`` kinds on, the others off."""
    source: dict[str, Any] = dict(settings)
    for kind in KINDS:
        if kind not in enabled:
            source[kind] = {"enabled": False}
    return {"config": {"domains": ["example.com"], "sources": {"kubernetes": source}}}


def rbac(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found = {kind: docs_ for kind, docs_ in kinds(docs).items() if kind in RBAC_KINDS}
    for kind_docs in found.values():
        assert all(d["apiVersion"] == RBAC_API for d in kind_docs)
    return found


def granted(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(group, resource) pairs a Role or ClusterRole grants, after checking that it grants
    only get, list and watch, by name of resource (no wildcard, no URL, no resourceNames)."""
    pairs: set[tuple[str, str]] = set()
    for rule in role["rules"]:
        assert sorted(rule) == ["apiGroups", "resources", "verbs"], rule
        assert rule["verbs"] == READ_VERBS, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource), rule
                pairs.add((group, resource))
    return pairs


def exporter_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    workload = next(d for d in docs if d["kind"] in ("Deployment", "StatefulSet"))
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def token_mounts(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each container's mounts at the service-account token's path."""
    return {
        c["name"]: [m for m in c.get("volumeMounts", []) if m["mountPath"] == TOKEN_DIR]
        for c in exporter_pod(docs)["containers"]
    }


def test_discovery_is_off_by_default() -> None:
    for docs in (render(), render(values("default")), render(values("sharded"))):
        assert rbac(docs) == {}
        assert all(not m for m in token_mounts(docs).values())
        pod = exporter_pod(docs)
        assert pod["automountServiceAccountToken"] is False
        assert not any(v["name"].startswith(("domains-", "kube-api")) for v in pod["volumes"])
        assert not any(d["metadata"]["name"].endswith("-domains") for d in docs)
    # Static names in sources (no discovery) render nothing either.
    docs = render_values({"config": {"sources": {"static": ["example.com"]}}})
    assert rbac(docs) == {} and all(not m for m in token_mounts(docs).values())


ENABLED_CASES = [
    KINDS,
    ("ingress",),
    ("certificate",),
    ("httproute",),
    ("ingress", "httproute"),
    ("certificate", "httproute"),
]


@pytest.mark.parametrize("enabled", ENABLED_CASES, ids=lambda e: "+".join(e))
def test_cluster_wide_rbac_grants_the_enabled_kinds_only(enabled: tuple[str, ...]) -> None:
    docs = render_values(kubernetes_source(enabled))
    found = rbac(docs)
    assert sorted(found) == ["ClusterRole", "ClusterRoleBinding"]
    (role,) = found["ClusterRole"]
    expected = set().union(*(KIND_RESOURCES[k] | CLUSTER_RESOURCES.get(k, set()) for k in enabled))
    assert granted(role) == expected
    assert role["metadata"]["name"] == FULLNAME
    assert role["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    (binding,) = found["ClusterRoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": FULLNAME,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": "monitoring"}
    ]


def test_kubernetes_source_with_every_default_is_on() -> None:
    """`kubernetes: {}` is the source with every default: every kind, cluster-wide."""
    docs = render_values({"config": {"sources": {"kubernetes": {}}}})
    (role,) = rbac(docs)["ClusterRole"]
    assert granted(role) == set().union(*KIND_RESOURCES.values(), *CLUSTER_RESOURCES.values())
    assert token_mounts(docs)["exporter"]


def test_no_kind_enabled_renders_no_rbac() -> None:
    assert rbac(render_values(kubernetes_source(()))) == {}
    assert rbac(render_values(kubernetes_source(namespaces=["web"], enabled=()))) == {}


@pytest.mark.parametrize("enabled", ENABLED_CASES, ids=lambda e: "+".join(e))
def test_namespaced_rbac_per_listed_namespace(enabled: tuple[str, ...]) -> None:
    docs = render_values(kubernetes_source(enabled, namespaces=["web", "shop"]))
    found = rbac(docs)
    namespaced = set().union(*(KIND_RESOURCES[k] for k in enabled))
    roles = {r["metadata"]["namespace"]: r for r in found["Role"]}
    bindings = {b["metadata"]["namespace"]: b for b in found["RoleBinding"]}
    assert sorted(roles) == sorted(bindings) == ["shop", "web"]
    for namespace, role in roles.items():
        assert role["metadata"]["name"] == FULLNAME
        assert granted(role) == namespaced, namespace
        binding = bindings[namespace]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": FULLNAME,
        }
        # The chart's ServiceAccount, in the release's namespace (not the Role's).
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": "monitoring"}
        ]
    # clusterissuers are cluster-scoped: a ClusterRole of their own, only with certificate.
    if "certificate" in enabled:
        (cluster_role,) = found["ClusterRole"]
        assert granted(cluster_role) == {("cert-manager.io", "clusterissuers")}
        (cluster_binding,) = found["ClusterRoleBinding"]
        assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
        assert cluster_binding["subjects"] == binding["subjects"]
    else:
        assert "ClusterRole" not in found and "ClusterRoleBinding" not in found


@pytest.mark.parametrize(
    ("sets", "account"),
    [
        ([], FULLNAME),
        (["serviceAccount.name=acme-reader"], "acme-reader"),
        (["serviceAccount.create=false", "serviceAccount.name=existing"], "existing"),
        (["serviceAccount.create=false"], "default"),
        (["fullnameOverride=acme"], "acme"),
    ],
    ids=["generated", "named", "existing", "default", "fullname-override"],
)
def test_bindings_name_the_pods_service_account(sets: list[str], account: str) -> None:
    docs = render_values(kubernetes_source(namespaces=["web"]), *sets)
    assert exporter_pod(docs)["serviceAccountName"] == account
    found = rbac(docs)
    for binding in found["RoleBinding"] + found["ClusterRoleBinding"]:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": "monitoring"}
        ]
    accounts = kinds(docs).get("ServiceAccount", [])
    assert [a["metadata"]["name"] for a in accounts] == (
        [] if "create=false" in str(sets) else [account]
    )


def test_rbac_create_false_renders_none_but_keeps_the_token() -> None:
    docs = render_values(kubernetes_source(), "discovery.rbac.create=false")
    assert rbac(docs) == {}
    assert token_mounts(docs)["exporter"]


def test_the_exporter_alone_gets_the_token_with_discovery() -> None:
    docs = render_values(
        {
            **kubernetes_source(),
            "extraContainers": [{"name": "sidecar", "image": "busybox:1.36"}],
        }
    )
    pod = exporter_pod(docs)
    # The pod-wide automount stays off: the other containers get no token.
    assert pod["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    mounts = token_mounts(docs)
    assert mounts == {
        "unbound": [],
        "exporter": [{"name": "kube-api-access", "mountPath": TOKEN_DIR, "readOnly": True}],
        "sidecar": [],
    }
    volume = next(v for v in pod["volumes"] if v["name"] == "kube-api-access")
    # The files the in-cluster client reads: token, ca.crt, namespace.
    assert volume == {
        "name": "kube-api-access",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ]
        },
    }


def test_no_token_without_discovery_or_with_a_kubeconfig() -> None:
    for docs in (
        render(values("default")),
        render_values({"discovery": {"files": {"lists": {"a": ["example.com"]}}}}),
        render_values(kubernetes_source(kubeconfig="/etc/kube/config")),
    ):
        assert all(not m for m in token_mounts(docs).values())
        assert not any(v["name"] == "kube-api-access" for v in exporter_pod(docs)["volumes"])
    # The kubeconfig's identity is not the ServiceAccount's, but the RBAC is still the chart's
    # to give (discovery.rbac.create), for a kubeconfig naming the ServiceAccount's token.
    assert rbac(render_values(kubernetes_source(kubeconfig="/etc/kube/config")))


def test_sharded_statefulset_every_replica_watches() -> None:
    """Sharding splits the validations, not the discovery: each replica watches (the same
    token, the same RBAC), and nothing else of the StatefulSet changes."""
    overrides = yaml.safe_load(values("sharded").read_text())
    overrides["config"]["sources"] = {"kubernetes": {"namespaces": ["web"]}}
    docs = render_values(overrides)
    plain = render(values("sharded"))
    statefulset = one(docs, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert token_mounts(docs)["exporter"]
    assert rbac(docs) == rbac(render_values(kubernetes_source(namespaces=["web"])))
    with_discovery = containers(docs, "StatefulSet")["exporter"]
    without = containers(plain, "StatefulSet")["exporter"]
    assert with_discovery["args"] == without["args"] and with_discovery["env"] == without["env"]
    spec = dict(statefulset["spec"], template=None)
    assert spec == dict(one(plain, "StatefulSet")["spec"], template=None)


def test_existing_config_takes_the_kubernetes_source_from_the_values() -> None:
    """The chart cannot read an existing ConfigMap's config: config.sources.kubernetes in the
    values still drives the RBAC and the token."""
    docs = render_values(
        {**kubernetes_source(("ingress",), namespaces=["web"]), "existingConfigMap": "own"}
    )
    assert not any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == FULLNAME for d in docs)
    (role,) = rbac(docs)["Role"]
    assert granted(role) == KIND_RESOURCES["ingress"]
    assert token_mounts(docs)["exporter"]


def test_domain_list_configmaps_are_mounted_read_only() -> None:
    docs = render(values("discovery"))
    exporter = containers(docs)["exporter"]
    mounts = {m["mountPath"]: m for m in exporter["volumeMounts"]}
    volumes = {v["name"]: v for v in exporter_pod(docs)["volumes"]}
    expected = {
        "/etc/acme-http01-exporter/domains/team-domains": "team-domains",
        "/etc/acme-http01-exporter/domains/chart": f"{FULLNAME}-domains",
    }
    for path, name in expected.items():
        mount = mounts[path]
        assert mount["readOnly"] is True, path
        assert "subPath" not in mount  # a subPath mount is never updated
        assert volumes[mount["name"]]["configMap"] == {"name": name}
    # The unbound sidecar mounts none of them.
    unbound = containers(docs)["unbound"]
    assert not any("domains" in m["mountPath"] for m in unbound["volumeMounts"])
    # The chart's lists: one YAML list per key, as the exporter reads a file of names.
    (configmap,) = [d for d in docs if d["metadata"]["name"] == f"{FULLNAME}-domains"]
    assert configmap["kind"] == "ConfigMap"
    assert {k: yaml.safe_load(v) for k, v in configmap["data"].items()} == {
        "platform.yaml": ["www.example.org", "api.example.org"]
    }
    # The config's file patterns name the mounted directories.
    patterns = exporter_config(docs)["sources"]["files"][0]["files"]
    assert {p.rsplit("/", 1)[0] for p in patterns} == set(expected)


def test_domain_list_mount_paths_and_names() -> None:
    docs = render_values(
        {
            "discovery": {
                "files": {
                    "configMaps": [
                        {"name": "a.b"},
                        {"name": "c", "mountPath": "/srv/names/"},
                    ],
                    "lists": {"x": ["a.example"], "y-2": []},
                }
            }
        }
    )
    exporter = containers(docs)["exporter"]
    assert exporter["volumeMounts"][1:] == [
        {
            "name": "domains-0",
            "mountPath": "/etc/acme-http01-exporter/domains/a.b",
            "readOnly": True,
        },
        {"name": "domains-1", "mountPath": "/srv/names", "readOnly": True},
        {
            "name": "domains-chart",
            "mountPath": "/etc/acme-http01-exporter/domains/chart",
            "readOnly": True,
        },
    ]
    (configmap,) = [d for d in docs if d["metadata"]["name"] == f"{FULLNAME}-domains"]
    assert {k: yaml.safe_load(v) for k, v in configmap["data"].items()} == {
        "x.yaml": ["a.example"],
        "y-2.yaml": [],
    }


def test_domain_list_changes_do_not_roll_the_pods() -> None:
    """The kubelet updates the mounted files in place (atomically): the exporter re-reads
    them, so a changed list changes no pod annotation."""

    def annotations(names: list[str]) -> dict[str, str]:
        docs = render_values({"discovery": {"files": {"lists": {"a": names}}}})
        found: dict[str, str] = one(docs, "Deployment")["spec"]["template"]["metadata"][
            "annotations"
        ]
        return found

    assert annotations(["a.example"]) == annotations(["a.example", "b.example"])


@pytest.mark.parametrize(
    ("configmaps", "message"),
    [
        (
            [{"name": "chart"}],
            "two ConfigMaps are mounted at /etc/acme-http01-exporter/domains/chart",
        ),
        (
            [{"name": "a", "mountPath": "/srv/x"}, {"name": "b", "mountPath": "/srv/x/"}],
            "two ConfigMaps are mounted at /srv/x",
        ),
        ([{"name": "a", "mountPath": "/etc/acme-http01-exporter/web"}], "cannot be mounted at"),
        ([{"name": "a", "mountPath": TOKEN_DIR}], "cannot be mounted at"),
    ],
    ids=["chart-dir", "same-path", "web-config", "token"],
)
def test_domain_list_mount_conflicts_fail(configmaps: list[dict[str, str]], message: str) -> None:
    overrides = {"discovery": {"files": {"configMaps": configmaps, "lists": {"a": ["x.example"]}}}}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        file.write(yaml.safe_dump(overrides))
        file.flush()
        proc = run_helm("template", "rel", str(CHART), "-f", file.name, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("discovery.rbac.create=maybe", "at '/discovery/rbac/create': got string, want boolean"),
        ("discovery.rbac.verbs=list", "at '/discovery/rbac': additional properties 'verbs'"),
        ("discovery.kubernetes=x", "at '/discovery': additional properties 'kubernetes'"),
        ("discovery.files.configMaps[0].mountPath=/x", "missing property 'name'"),
        ("discovery.files.configMaps[0].name=Bad_Name", "at '/discovery/files/configMaps/0/name'"),
        (
            "discovery.files.configMaps[0].name=a,discovery.files.configMaps[0].mountPath=rel",
            "at '/discovery/files/configMaps/0/mountPath'",
        ),
        ("discovery.files.lists.a=x.example", "at '/discovery/files/lists/a': got string"),
        ("discovery.files.lists.\\.hidden[0]=x.example", "invalid propertyName '.hidden'"),
        (
            "discovery.networkPolicy.apiServerPorts[0]=0",
            "/discovery/networkPolicy/apiServerPorts/0",
        ),
        (
            "config.sources.kubernetes.namespaces[0]=Web_1",
            "at '/config/sources/kubernetes/namespaces/0'",
        ),
        (
            "config.sources.kubernetes.ingress.enabled=no",
            "at '/config/sources/kubernetes/ingress/enabled': got string, want boolean",
        ),
    ],
)
def test_schema_rejects_bad_discovery_values(setting: str, message: str) -> None:
    proc = run_helm("template", "rel", str(CHART), "--set", setting, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_network_policy_lets_the_exporter_reach_the_api_server() -> None:
    def egress_ports(docs: list[dict[str, Any]]) -> list[int]:
        rules = one(docs, "NetworkPolicy")["spec"]["egress"]
        return sorted(p["port"] for rule in rules for p in rule["ports"])

    base = [53, 53, 80, 443]
    assert egress_ports(render(values("default"), "networkPolicy.enabled=true")) == base
    assert egress_ports(render(values("discovery"))) == [*base, 6443]
    docs = render_values(
        {
            **kubernetes_source(),
            "networkPolicy": {"enabled": True},
            "discovery": {"networkPolicy": {"apiServerPorts": [8443, 6443]}},
        }
    )
    assert egress_ports(docs) == [*base, 6443, 8443]
    rule = one(docs, "NetworkPolicy")["spec"]["egress"][-1]
    assert "to" not in rule and {p["protocol"] for p in rule["ports"]} == {"TCP"}
    docs = render_values(
        {**kubernetes_source(), "networkPolicy": {"enabled": True}},
        "discovery.networkPolicy.apiServerPorts=null",
    )
    assert egress_ports(docs) == base


def test_probe_targets_with_discovered_names() -> None:
    """Discovered names are known at run time only: the chart does not check the targets
    then; names of sources.static count as configured ones."""

    def probe_targets(overrides: dict[str, Any]) -> list[str]:
        docs = render_values({**overrides, "probe": {"enabled": True, "targets": ["x.example"]}})
        static: list[str] = one(docs, "Probe")["spec"]["targets"]["staticConfig"]["static"]
        return static

    assert probe_targets(kubernetes_source()) == ["x.example"]
    assert probe_targets({"config": {"sources": {"files": [{"files": ["/d/*.yaml"]}]}}}) == [
        "x.example"
    ]
    assert probe_targets({"config": {"sources": {"static": ["x.example"]}}}) == ["x.example"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        file.write(
            yaml.safe_dump(
                {
                    "config": {"sources": {"static": ["y.example"]}},
                    "probe": {"enabled": True, "targets": ["x.example"]},
                }
            )
        )
        file.flush()
        proc = run_helm("template", "rel", str(CHART), "-f", file.name, check=False)
    assert proc.returncode != 0 and "x.example is not one of config.domains" in proc.stderr


def notes(*args: str) -> str:
    proc = run_helm("install", "rel", str(CHART), "--dry-run=client", "-n", "monitoring", *args)
    return proc.stdout[proc.stdout.index("NOTES:") :]


def test_notes_name_the_sources_that_are_on(tmp_path: Path) -> None:
    text = notes("-f", str(values("discovery")))
    assert "Domain sources:" in text
    assert "static: 1 name(s) (config.domains)" in text
    assert "files: /etc/acme-http01-exporter/domains/chart/*.yaml" in text
    assert "(checked every 1m)" in text
    assert "ConfigMap team-domains at /etc/acme-http01-exporter/domains/team-domains/" in text
    assert "kubernetes: ingress, certificate (namespaces: web, shop)" in text
    assert f"the Role and RoleBinding {FULLNAME} in each of those namespaces" in text
    assert "(clusterissuers): get, list, watch only" in text
    assert "WARNING" not in text

    text = notes("--set-json", 'config.sources={"kubernetes":{}}')
    assert "kubernetes: ingress, certificate, httproute (all namespaces)" in text
    assert f"the ClusterRole and ClusterRoleBinding {FULLNAME}: get, list, watch only" in text
    assert f"the ServiceAccount {FULLNAME}, its token in the exporter's container only" in text
    assert "no domains are configured" not in text

    text = notes(
        "--set-json",
        'config.sources={"kubernetes":{"kubeconfig":"/k/config"}}',
        "--set",
        "discovery.rbac.create=false",
    )
    assert "API access: the kubeconfig /k/config" in text
    assert "RBAC: not created (discovery.rbac.create=false)" in text

    # Lists mounted that no file source reads: said so.
    text = notes("--set", "discovery.files.lists.a={x.example}")
    assert (
        'config.sources.files: [{files: ["/etc/acme-http01-exporter/domains/chart/*.yaml"]}]'
        in text
    )
    # Nothing of it by default.
    text = notes("-f", str(values("default")))
    assert "Domain sources" not in text
    text = notes()
    assert "WARNING: no domains are configured; set config.domains (or config.sources)." in text


def test_discovery_objects_pass_kubernetes_validate(tmp_path: Path) -> None:
    """Every RBAC object, the token volume and the mounts are valid Kubernetes objects (the
    CI value set is validated too; here each RBAC object is named in the report)."""
    docs = render(values("discovery"))
    docs += [d for d in render_values(kubernetes_source()) if d["kind"] in RBAC_KINDS]
    report = kubernetes_validate(docs, tmp_path)
    checked = [d for d in docs if d["kind"] in (*RBAC_KINDS, "Deployment", "ConfigMap")]
    assert len([d for d in checked if d["kind"] in RBAC_KINDS]) == 8
    for doc in checked:
        assert f"passed for resource {doc['kind'].lower()}/{doc['metadata']['name']} " in report


# -------------------------------------------- the discovery's RBAC on a real API server


def render_release(release: str, namespace: str, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as file:
        file.write(yaml.safe_dump(overrides))
        file.flush()
        proc = run_helm("template", release, str(CHART), "--namespace", namespace, "-f", file.name)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def eventually(check: Callable[..., bool], *args: str, timeout: float = 30) -> None:
    """``check(*args)`` becomes true: RBAC reads roles and bindings from informers, so a
    grant takes effect shortly after it is applied."""
    deadline = time.monotonic() + timeout
    while not check(*args):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check.__name__}{args}")
        time.sleep(0.05)


@pytest.mark.parametrize("namespaced", [False, True], ids=["cluster-wide", "namespaces"])
def test_rendered_rbac_lets_the_service_account_read_the_enabled_kinds_only(
    kube_api: KubeAPI, namespaced: bool, tmp_path: Path
) -> None:
    """The chart's ServiceAccount and RBAC, applied to a real kube-apiserver: the account
    lists and watches the enabled kinds (Ingresses; Certificates, Issuers, ClusterIssuers)
    where the config says, and nothing else: not HTTPRoutes (disabled), not Secrets, not
    other namespaces, no write. Asked both ways: SubjectAccessReviews for every verb, and
    real lists and watches with the account's own token."""
    suffix = secrets.token_hex(3)
    release, home = f"r{suffix}", f"mon-{suffix}"
    web, shop, other = f"web-{suffix}", f"shop-{suffix}", f"other-{suffix}"
    for namespace in (home, web, shop, other):
        kube_api.create_namespace(namespace)
    source = kubernetes_source(
        ("ingress", "certificate"), namespaces=[web, shop] if namespaced else []
    )
    docs = render_release(release, home, source)
    objects = [d for d in docs if d["kind"] in ("ServiceAccount", *RBAC_KINDS)]
    assert sorted(d["kind"] for d in objects) == (
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "ServiceAccount",
        ]
        if namespaced
        else ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"]
    )
    account = f"{release}-acme-http01-exporter"
    user = f"system:serviceaccount:{home}:{account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{home}", "system:authenticated"]

    def allowed(verb: str, group: str, resource: str, namespace: str = "") -> bool:
        attributes = {"verb": verb, "group": group, "resource": resource}
        if namespace:
            attributes["namespace"] = namespace
        status, answer = kube_api.request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
            },
        )
        assert status == 201, answer
        return bool(answer["status"].get("allowed"))

    watched = [web, shop] if namespaced else [web, shop, other, ""]  # "": all at once
    enabled = sorted(KIND_RESOURCES["ingress"] | KIND_RESOURCES["certificate"])
    applied: list[dict[str, Any]] = []
    try:
        for obj in objects:
            applied.append(kube_api.apply(obj))
        # Allowed: get, list, watch of each enabled kind where it is watched (every binding
        # and role takes part, so after these the authorizer has seen all of them).
        for namespace in watched:
            for group, resource in enabled:
                for verb in READ_VERBS:
                    eventually(allowed, verb, group, resource, namespace)
        for verb in READ_VERBS:
            eventually(allowed, verb, "cert-manager.io", "clusterissuers")
        # Refused: writes, a disabled kind, Secrets, the namespaces not listed.
        for namespace in [web, ""]:
            for verb in ("create", "update", "patch", "delete", "deletecollection"):
                for group, resource in enabled:
                    assert not allowed(verb, group, resource, namespace), (verb, resource)
            for group, resource in sorted(KIND_RESOURCES["httproute"]):
                for verb in READ_VERBS:
                    assert not allowed(verb, group, resource, namespace), (verb, resource)
            for verb in READ_VERBS:
                assert not allowed(verb, "", "secrets", namespace), verb
                assert not allowed(verb, "", "configmaps", namespace), verb
        if namespaced:
            for namespace in (other, home, ""):
                for group, resource in enabled:
                    assert not allowed("list", group, resource, namespace), (namespace, resource)

        # The same with the account's own token, as the exporter in the pod makes them.
        token = (kube_api.service_account(home, account, tmp_path / "sa") / "token").read_text()

        def status_of(path: str) -> int:
            return kube_api.request("GET", path, token=token)[0]

        for api_version, plural in [
            ("networking.k8s.io/v1", "ingresses"),
            ("cert-manager.io/v1", "certificates"),
            ("cert-manager.io/v1", "issuers"),
        ]:
            for namespace in watched:
                path = kube_api.path_of(api_version, plural, namespace or None)
                assert status_of(path) == 200, path
                status, events = kube_api.watch(path, "0", timeout=1, token=token)
                assert status == 200 and not any(e["type"] == "ERROR" for e in events), path
            if namespaced:
                assert status_of(kube_api.path_of(api_version, plural)) == 403
                assert status_of(kube_api.path_of(api_version, plural, other)) == 403
        assert status_of(kube_api.path_of("cert-manager.io/v1", "clusterissuers")) == 200
        assert status_of(kube_api.path_of("gateway.networking.k8s.io/v1", "httproutes", web)) == 403
        assert status_of(kube_api.path_of("gateway.networking.k8s.io/v1", "gateways", web)) == 403
        assert status_of(kube_api.path_of("v1", "secrets", web)) == 403
        assert status_of(kube_api.path_of("v1", "secrets", home)) == 403
    finally:
        for obj in reversed(applied):
            kube_api.delete(obj)
