"""The Helm chart, with the real helm binary, kubernetes-validate and promtool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
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


def containers(docs: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    pod = one(docs, kind)["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"]}


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


def test_prometheusrule_links_default_to_the_exporters_runbook() -> None:
    canonical = canonical_alerts()
    alerts = rendered_alerts()
    assert set(alerts) == set(canonical)
    for name, alert in alerts.items():
        annotations = alert["annotations"]
        assert "dashboard_url" not in annotations, name  # no Grafana URL configured
        expected = {
            key: value.replace('job "acme-http01-exporter"', f'job "{FULLNAME}"')
            for key, value in canonical[name]["annotations"].items()
        }
        assert annotations == expected, name
        assert annotations["runbook_url"].endswith(f"/runbook#{name.lower()}"), name
        assert alert["labels"]["severity"] == canonical[name]["labels"]["severity"], name


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
    from exporter.lab.unbound import free_port

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
