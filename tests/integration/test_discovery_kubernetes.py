"""Kubernetes discovery against a real kube-apiserver and etcd (tests/integration/kubeapi.py).

The exporter runs as a user runs it, on the lab's domains: the names come from Ingresses,
cert-manager Certificates and Gateway API HTTPRoutes created, changed and deleted while it
runs; the API server is restarted under it, etcd compacted so that its watch is answered
410 Gone, RBAC forbids a kind, 2,000 Ingresses are listed in pages, and a service account
token is used as in a pod.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.shard import owner
from tests import kubeobjects
from tests.integration.kubeapi import KubeAPI
from tests.integration.procs import (
    ExporterProcess,
    LabProcess,
    Samples,
    value,
    wait_for,
    write_config,
)

# Names of the lab: served, or NXDOMAIN (validated at once, fails): either way a validation.
HEALTHY = "healthy.example.com"
IPV4_ONLY = "ipv4-only.example.com"
WRONG_AAAA = "wrong-aaaa.example.com"
#: How long an event may take to show at /metrics. The exporter tells a change within
#: 50 ms and validates at once; the bound is wide for a busy 2-core machine.
EVENT_BOUND = 10.0


def namespace(api: KubeAPI) -> str:
    name = f"t-{secrets.token_hex(4)}"
    api.create_namespace(name)
    return name


def ingress(ns: str, name: str, *hosts: str, tls: tuple[str, ...] = ()) -> dict[str, Any]:
    return kubeobjects.ingress(list(hosts), [list(tls)] if tls else None, namespace=ns, name=name)


def config_for(
    lab: LabProcess, directory: Path, kubernetes: dict[str, Any], **overrides: Any
) -> Path:
    document = lab.config(**{"interval": "60s", "jitter": "0s", "domains": [], **overrides})
    document["sources"] = {"kubernetes": kubernetes}
    document.setdefault("certificates", {})["enabled"] = False
    return write_config(directory / "config.yml", document)


def source(
    api: KubeAPI, directory: Path, ns: str, *kinds: str, token: str | None = None
) -> dict[str, Any]:
    """``sources.kubernetes`` for ``ns`` through a kubeconfig: the given kinds enabled (all
    three when none is given), the others off."""
    every = ("ingress", "certificate", "httproute")
    return {
        "kubeconfig": str(api.kubeconfig(directory / "kubeconfig", token)),
        "namespaces": [ns],
        **{kind: {"enabled": False} for kind in every if kinds and kind not in kinds},
    }


def sources(samples: Samples, domain: str) -> set[tuple[str, str, str]]:
    return {
        (labels["kind"], labels["namespace"], labels["name"])
        for (name, frozen) in samples
        if name == "acme_http01_domain_source_info"
        for labels in [dict(frozen)]
        if labels["domain"] == domain
    }


def validated(samples: Samples) -> set[str]:
    """Domains with a validation count (started and finished at least once)."""
    return {
        dict(labels)["domain"]
        for (name, labels), count in samples.items()
        if name == "acme_http01_validations_total" and count > 0
    }


def listed(samples: Samples) -> set[str]:
    """Domains the exporter has series for (validated or pending)."""
    return {
        dict(labels)["domain"]
        for (name, labels) in samples
        if name == "acme_http01_validations_total"
    }


@pytest.fixture
def exporter_factory() -> Iterator[Any]:
    started: list[ExporterProcess] = []

    def start(*args: str, **kwargs: Any) -> ExporterProcess:
        process = ExporterProcess(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_metrics(
    exporter: ExporterProcess, condition: Any, message: str, timeout: float = EVENT_BOUND
) -> float:
    """Seconds until ``condition(samples)`` held."""
    began = time.monotonic()
    wait_for(lambda: bool(condition(exporter.scrape()[1])), timeout, message, exporter)
    return time.monotonic() - began


def test_ingresses_created_changed_and_deleted_while_running(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns),
    )
    exporter = exporter_factory("--config.file", str(config))
    exporter.wait_ready(30)
    assert listed(exporter.scrape()[1]) == set()

    kube_api.apply(ingress(ns, "shop", HEALTHY, WRONG_AAAA, tls=(HEALTHY, "*.example.com")))
    wait_metrics(
        exporter, lambda s: {HEALTHY, WRONG_AAAA} <= validated(s), "the Ingress's names validated"
    )
    samples = exporter.scrape()[1]
    assert sources(samples, HEALTHY) == {("Ingress", ns, "shop")}
    assert value(samples, "acme_http01_validation_success", domain=HEALTHY) == 1
    assert (
        value(
            samples,
            "acme_http01_discovery_skipped_names",
            source="kubernetes",
            kind="Ingress",
            reason="wildcard",
        )
        == 1
    )
    assert value(samples, "acme_http01_discovery_up", source="kubernetes", kind="Ingress") == 1
    assert value(samples, "acme_http01_discovery_names", source="kubernetes", kind="Ingress") == 2

    # Changed: one name replaced by another.
    kube_api.apply(ingress(ns, "shop", HEALTHY, IPV4_ONLY))
    wait_metrics(
        exporter,
        lambda s: IPV4_ONLY in validated(s) and WRONG_AAAA not in listed(s),
        "the changed Ingress applied",
    )
    # Deleted: its names leave /metrics as a removed static domain does.
    kube_api.delete(ingress(ns, "shop"))
    wait_metrics(exporter, lambda s: not listed(s), "the deleted Ingress's names gone")
    text, samples = exporter.scrape()
    assert "acme_http01_domain_source_info{" not in text
    status, body, _ = exporter.request("/discovery")
    assert status == 200 and '"kind": "Ingress"' in body


def test_cert_manager_certificates_follow_the_issuers_http01_solver(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    issuer = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": "le", "namespace": ns},
        "spec": {
            "acme": {
                "server": "https://acme-v02.api.letsencrypt.org/directory",
                "privateKeySecretRef": {"name": "le-account"},
                "solvers": [
                    {"http01": {"ingress": {"ingressClassName": "nginx"}}},
                    {
                        "selector": {"dnsZones": ["dns.example.com"]},
                        "dns01": {"webhook": {"groupName": "x.example", "solverName": "x"}},
                    },
                ],
            }
        },
    }
    kube_api.apply(issuer)
    kube_api.request(
        "PATCH",
        kube_api.object_path(issuer) + "/status",
        {"status": {"acme": {"uri": "https://acme-v02.api.letsencrypt.org/acme/acct/42"}}},
        content_type="application/merge-patch+json",
    )
    certificate = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {
            "secretName": "shop-tls",
            "dnsNames": [HEALTHY, "*.example.com", "a.dns.example.com"],
            "issuerRef": {"name": "le", "kind": "Issuer"},
        },
    }
    kube_api.apply(certificate)
    renewal = int(time.time()) + 5 * 86400
    renewal_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(renewal))
    kube_api.request(
        "PATCH",
        kube_api.object_path(certificate) + "/status",
        {"status": {"renewalTime": renewal_text}},
        content_type="application/merge-patch+json",
    )
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns, "certificate"),
    )
    exporter = exporter_factory("--config.file", str(config))
    exporter.wait_ready(30)
    samples = exporter.scrape()[1]
    assert listed(samples) == {HEALTHY}
    assert sources(samples, HEALTHY) == {("Certificate", ns, "shop")}
    skipped = {
        dict(labels)["reason"]: count
        for (name, labels), count in samples.items()
        if name == "acme_http01_discovery_skipped_names"
    }
    assert skipped == {"wildcard": 1, "not_http01": 1}
    # cert-manager's own renewal plan is the renewal date the alerts use.
    assert (
        value(samples, "acme_http01_certificate_renewal_due_timestamp_seconds", domain=HEALTHY)
        == renewal
    )
    status, body, _ = exporter.request("/discovery")
    assert status == 200 and '"name": "a.dns.example.com"' in body and '"not_http01"' in body
    status, body, _ = exporter.request(f"/domains/{HEALTHY}")
    assert status == 200
    assert json.loads(body)["sources"] == [
        {
            "source": "kubernetes",
            "kind": "Certificate",
            "namespace": ns,
            "name": "shop",
            "acme_server": "letsencrypt",
        }
    ]

    # The issuer turns to DNS-01 for everything: the name is no longer validated.
    issuer["spec"]["acme"]["solvers"] = [
        {"dns01": {"webhook": {"groupName": "x.example", "solverName": "x"}}}
    ]
    kube_api.apply(issuer)
    wait_metrics(exporter, lambda s: not listed(s), "a DNS-01 issuer's name dropped")


def test_httproute_hostnames_within_the_gateways_listeners(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    kube_api.apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": ns},
            "spec": {
                "gatewayClassName": "example",
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "port": 80,
                        "hostname": "*.example.com",
                    }
                ],
            },
        }
    )
    kube_api.apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "parentRefs": [{"name": "edge"}],
                "hostnames": [IPV4_ONLY, "shop.example.net"],
            },
        }
    )
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns, "httproute"),
    )
    exporter = exporter_factory("--config.file", str(config))
    exporter.wait_ready(30)
    samples = exporter.scrape()[1]
    assert listed(samples) == {IPV4_ONLY}
    assert sources(samples, IPV4_ONLY) == {("HTTPRoute", ns, "web")}


def test_a_restarted_api_server_keeps_the_names_then_resyncs(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    kube_api.apply(ingress(ns, "a", HEALTHY))
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns),
    )
    exporter = exporter_factory("--config.file", str(config))
    exporter.wait_ready(30)
    kube_api.stop_apiserver()
    try:
        wait_metrics(
            exporter,
            lambda s: (
                value(s, "acme_http01_discovery_up", source="kubernetes", kind="Ingress") == 0
            ),
            "the source down",
        )
        samples = exporter.scrape()[1]
        assert listed(samples) == {HEALTHY}  # kept while the API server is away
        errors = {
            dict(labels)["reason"]
            for (name, labels), count in samples.items()
            if name == "acme_http01_discovery_errors_total" and count > 0
        }
        assert "unreachable" in errors
    finally:
        kube_api.start_apiserver()
    kube_api.apply(ingress(ns, "b", IPV4_ONLY))
    wait_metrics(
        exporter,
        lambda s: (
            listed(s) == {HEALTHY, IPV4_ONLY}
            and value(s, "acme_http01_discovery_up", source="kubernetes", kind="Ingress") == 1
        ),
        "resynced after the restart",
        timeout=60,
    )


def test_a_compacted_watch_is_answered_gone_and_listed_again(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    kube_api.apply(ingress(ns, "a", HEALTHY))
    kube_api.apply(ingress(ns, "b", WRONG_AAAA))
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns),
    )
    exporter = exporter_factory("--config.file", str(config))
    exporter.wait_ready(30)
    assert listed(exporter.scrape()[1]) == {HEALTHY, WRONG_AAAA}
    # The exporter is frozen while its watch is cut, an object deleted and another added,
    # and etcd compacted: on waking it resumes from a version that no longer exists.
    exporter.proc.send_signal(signal.SIGSTOP)
    try:
        kube_api.restart()
        kube_api.delete(ingress(ns, "b"))
        kube_api.apply(ingress(ns, "c", IPV4_ONLY))
        kube_api.compact()
    finally:
        exporter.proc.send_signal(signal.SIGCONT)
    wait_metrics(
        exporter,
        lambda s: listed(s) == {HEALTHY, IPV4_ONLY},
        "the relist after 410 Gone",
        timeout=60,
    )
    samples = exporter.scrape()[1]
    assert (
        value(
            samples,
            "acme_http01_discovery_errors_total",
            source="kubernetes",
            kind="Ingress",
            reason="gone",
        )
        or 0
    ) >= 1


def test_rbac_forbidding_one_kind_downs_that_source_only(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    kube_api.apply(ingress(ns, "a", HEALTHY))
    sa = kube_api.service_account(ns, "exporter", tmp_path / "sa")
    kube_api.grant(
        ns,
        (ns, "exporter"),
        [
            {
                "apiGroups": ["networking.k8s.io"],
                "resources": ["ingresses"],
                "verbs": ["list", "watch"],
            }
        ],
    )
    token = (sa / "token").read_text()
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns, "ingress", "certificate", token=token),
    )
    exporter = exporter_factory("--config.file", str(config))
    exporter.wait_ready(30)  # a forbidden kind does not keep the exporter unready
    samples = exporter.scrape()[1]
    assert listed(samples) == {HEALTHY}
    up = {
        dict(labels)["kind"]: count
        for (name, labels), count in samples.items()
        if name == "acme_http01_discovery_up" and dict(labels)["source"] == "kubernetes"
    }
    assert up == {"Ingress": 1, "Certificate": 0, "Issuer": 0, "ClusterIssuer": 0}
    assert (
        value(
            samples,
            "acme_http01_discovery_errors_total",
            source="kubernetes",
            kind="Certificate",
            reason="forbidden",
        )
        or 0
    ) >= 1


def _create_ingresses(api: KubeAPI, ns: str, count: int) -> None:
    def one(index: int) -> None:
        api.apply(ingress(ns, f"i{index}", f"k{index}.example.com"))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def test_two_thousand_ingresses_are_listed_in_pages(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    _create_ingresses(kube_api, ns, 2000)
    before = kube_api.request_count().get("LIST", 0.0)
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns, "ingress"),
    )
    exporter = exporter_factory("--config.file", str(config))
    wait_metrics(
        exporter,
        lambda s: (
            value(s, "acme_http01_discovery_names", source="kubernetes", kind="Ingress") == 2000
        ),
        "2,000 names",
        timeout=60,
    )
    assert len(listed(exporter.scrape()[1])) == 2000
    lists = kube_api.request_count().get("LIST", 0.0) - before
    assert lists >= 4, f"{lists} LIST requests: 2,000 objects in pages of 500 take 4"


def test_a_service_account_token_as_in_a_pod(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    """No kubeconfig: the exporter finds the pod's service account where a pod has it
    (/var/run/secrets/kubernetes.io/serviceaccount, bind-mounted in a mount namespace
    of its own) and the API server in KUBERNETES_SERVICE_HOST/PORT."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("unshare (util-linux) as root is required in CI")
        pytest.skip("needs unshare as root")
    ns = namespace(kube_api)
    kube_api.apply(ingress(ns, "a", HEALTHY))
    sa = kube_api.service_account(ns, "exporter", tmp_path / "sa")
    kube_api.grant(
        None,
        (ns, "exporter"),
        [
            {
                "apiGroups": ["networking.k8s.io"],
                "resources": ["ingresses"],
                "verbs": ["list", "watch"],
            }
        ],
    )
    config = config_for(
        lab_process,
        tmp_path,
        {"namespaces": [ns], "certificate": {"enabled": False}, "httproute": {"enabled": False}},
    )
    mount = "/run/secrets/kubernetes.io/serviceaccount"
    script = (
        f'mount -t tmpfs tmpfs /run && mkdir -p {mount} && mount --bind {sa} {mount} && exec "$@"'
    )
    exporter = exporter_factory(
        "--config.file",
        str(config),
        prefix=[unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh"],
        env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(kube_api.port)},
    )
    exporter.wait_ready(30)
    samples = exporter.scrape()[1]
    assert listed(samples) == {HEALTHY}
    assert sources(samples, HEALTHY) == {("Ingress", ns, "a")}


def test_sharded_replicas_watch_and_validate_disjoint_shares(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    names = [f"sh{i}.example.com" for i in range(30)]
    for index in range(0, len(names), 3):
        kube_api.apply(ingress(ns, f"i{index}", *names[index : index + 3]))
    config = config_for(
        lab_process,
        tmp_path,
        source(kube_api, tmp_path, ns, "ingress"),
    )
    replicas = [
        exporter_factory(
            "--config.file",
            str(config),
            "--shard.count",
            "2",
            "--shard.index",
            f"acme-http01-exporter-{index}",
        )
        for index in range(2)
    ]
    shares = []
    for index, replica in enumerate(replicas):
        replica.wait_ready(30)
        samples = replica.scrape()[1]
        share = listed(samples)
        assert share == {n for n in names if owner(n, 2) == index}
        # Every replica sees every name; each validates its own share.
        assert (
            value(samples, "acme_http01_discovery_names", source="kubernetes", kind="Ingress") == 30
        )
        shares.append(share)
    assert shares[0].isdisjoint(shares[1])
    assert shares[0] | shares[1] == set(names)
    # A new Ingress lands in exactly one share.
    kube_api.apply(ingress(ns, "late", "late.example.com"))
    mine = replicas[owner("late.example.com", 2)]
    other = replicas[1 - owner("late.example.com", 2)]
    wait_metrics(mine, lambda s: "late.example.com" in listed(s), "the new name in its share")
    assert "late.example.com" not in listed(other.scrape()[1])
    # /probe validates any discovered name, on any replica (as it does a static one).
    assert other.request("/probe?target=late.example.com")[0] == 200
    assert other.request("/probe?target=unknown.example.com")[0] == 403


def test_a_reload_keeps_the_watches_and_a_bad_kubeconfig_is_refused(
    kube_api: KubeAPI, lab_process: LabProcess, tmp_path: Path, exporter_factory: Any
) -> None:
    ns = namespace(kube_api)
    kube_api.apply(ingress(ns, "a", HEALTHY))
    kubernetes = source(kube_api, tmp_path, ns, "ingress")
    config = config_for(lab_process, tmp_path, kubernetes)
    exporter = exporter_factory("--config.file", str(config))
    exporter.wait_ready(30)
    lists = kube_api.request_count().get("LIST", 0.0)

    def reloads(result: str) -> float:
        samples = exporter.scrape()[1]
        return value(samples, "acme_http01_config_reloads_total", result=result) or 0.0

    # Another interval, the same source: the running watch is kept (no list again).
    config_for(lab_process, tmp_path, kubernetes, interval="120s")
    assert exporter.request("/-/reload", "POST")[0] == 200
    assert reloads("success") == 1
    kube_api.apply(ingress(ns, "b", IPV4_ONLY))
    wait_metrics(exporter, lambda s: listed(s) == {HEALTHY, IPV4_ONLY}, "the kept watch")
    assert kube_api.request_count().get("LIST", 0.0) == lists

    # A kubeconfig that cannot be loaded is refused whole: the running source goes on.
    config_for(lab_process, tmp_path, {**kubernetes, "kubeconfig": str(tmp_path / "absent")})
    status, body, _ = exporter.request("/-/reload", "POST")
    assert status == 500 and "sources.kubernetes.kubeconfig" in body
    kube_api.delete(ingress(ns, "b"))
    wait_metrics(exporter, lambda s: listed(s) == {HEALTHY}, "the running source still watching")
    assert reloads("failure") == 1
