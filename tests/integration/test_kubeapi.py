"""The real kube-apiserver the discovery tests run against (tests/integration/kubeapi.py)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import kubeobjects
from tests.integration.kubeapi import KubeAPI, is_gone, servers_dir

INGRESS = "networking.k8s.io/v1"
CERT_MANAGER = "cert-manager.io/v1"
GATEWAY = "gateway.networking.k8s.io/v1"


def ingress(namespace: str, name: str, host: str) -> dict[str, Any]:
    return kubeobjects.ingress(
        [host],
        [[host]],
        class_name="nginx",
        annotations={"cert-manager.io/cluster-issuer": "letsencrypt"},
        namespace=namespace,
        name=name,
    )


def test_the_server_is_ready_and_its_certificate_verifies(kube_api: KubeAPI) -> None:
    status, version = kube_api.request("GET", "/version")
    assert status == 200
    assert version["gitVersion"] == "v1.37.2"
    # ca_file really is what verifies it, name 127.0.0.1 included: the default trust does not.
    with (
        httpx.Client(trust_env=False) as default_trust,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        default_trust.get(f"{kube_api.url}/readyz")
    with httpx.Client(verify=kube_api.ssl_context(), trust_env=False) as verified:
        # Anonymous requests are refused: authentication is on.
        assert verified.get(f"{kube_api.url}/api/v1/namespaces").status_code in {401, 403}
    # Every CRD the discovery reads is served.
    for api_version, plural in [
        (CERT_MANAGER, "certificates"),
        (CERT_MANAGER, "issuers"),
        (CERT_MANAGER, "clusterissuers"),
        (GATEWAY, "gateways"),
        (GATEWAY, "httproutes"),
    ]:
        assert kube_api.request("GET", kube_api.path_of(api_version, plural))[0] == 200


def test_kubeconfig_and_service_account_work_for_lightkube(
    kube_api: KubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the exporter reads them with: a kubeconfig, and a pod's service account."""
    from lightkube import Client, KubeConfig
    from lightkube.resources.authentication_v1 import SelfSubjectReview
    from lightkube.resources.core_v1 import Namespace

    path = kube_api.kubeconfig(tmp_path / "kubeconfig")
    document = yaml.safe_load(path.read_text())
    assert document["current-context"] == "test"
    assert document["clusters"][0]["cluster"] == {
        "server": kube_api.url,
        "certificate-authority": str(kube_api.ca_file),
    }
    with Client(KubeConfig.from_file(path), trust_env=False) as client:
        names = {ns.metadata.name for ns in client.list(Namespace) if ns.metadata}
    assert "kube-system" in names

    kube_api.create_namespace("lightkube")
    account = kube_api.service_account("lightkube", "reader", tmp_path / "serviceaccount")
    assert sorted(p.name for p in account.iterdir()) == ["ca.crt", "namespace", "token"]
    assert (account / "namespace").read_text() == "lightkube"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(kube_api.port))
    config = KubeConfig.from_service_account(service_account=str(account))
    with Client(config, trust_env=False) as client:
        assert client.namespace == "lightkube"
        review = client.create(SelfSubjectReview())
    assert review.status and review.status.userInfo
    assert review.status.userInfo.username == "system:serviceaccount:lightkube:reader"


def test_ingress_certificate_and_httproute_are_validated_by_the_real_schemas(
    kube_api: KubeAPI,
) -> None:
    ns = "objects"
    kube_api.create_namespace(ns)
    stored = kube_api.apply(ingress(ns, "shop", "shop.example"))
    assert stored["spec"]["rules"][0]["host"] == "shop.example"

    issuer = kubeobjects.acme_cluster_issuer()
    assert kube_api.apply(issuer)["metadata"]["name"] == "letsencrypt"
    certificate: dict[str, Any] = {
        "apiVersion": CERT_MANAGER,
        "kind": "Certificate",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {
            "secretName": "shop-tls",
            "dnsNames": ["shop.example", "www.shop.example"],
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
        },
    }
    assert kube_api.apply(certificate)["spec"]["dnsNames"] == ["shop.example", "www.shop.example"]
    # The CRD's schema is enforced: a Certificate needs a secretName.
    del certificate["spec"]["secretName"]
    certificate["metadata"]["name"] = "broken"
    with pytest.raises(AssertionError, match=r"422.*secretName"):
        kube_api.apply(certificate)

    gateway = {
        "apiVersion": GATEWAY,
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": ns},
        "spec": {
            "gatewayClassName": "example",
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
        },
    }
    kube_api.apply(gateway)
    route: dict[str, Any] = {
        "apiVersion": GATEWAY,
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": ["shop.example"],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }
    assert kube_api.apply(route)["spec"]["hostnames"] == ["shop.example"]
    route["metadata"]["name"] = "broken"
    route["spec"]["hostnames"] = ["not a hostname"]
    with pytest.raises(AssertionError, match=r"422.*hostnames"):
        kube_api.apply(route)

    # Delete: gone, and a second delete finds nothing.
    assert kube_api.delete(kube_api.path_of(GATEWAY, "httproutes", ns, "shop")) == 200
    assert kube_api.delete(route | {"metadata": {"name": "shop", "namespace": ns}}) == 404
    assert kube_api.request("GET", kube_api.path_of(GATEWAY, "httproutes", ns, "shop"))[0] == 404


def test_compaction_makes_a_watch_from_an_old_resource_version_gone(kube_api: KubeAPI) -> None:
    ns = "compaction"
    kube_api.create_namespace(ns)
    path = kube_api.path_of(INGRESS, "ingresses", ns)
    status, listed = kube_api.request("GET", path)
    assert status == 200
    old = listed["metadata"]["resourceVersion"]
    for name in ("a", "b", "c"):
        kube_api.apply(ingress(ns, name, f"{name}.example"))

    # Before: the watch from the old resourceVersion replays what happened since. The
    # replay comes at once; the watch lasts its timeout, long enough for a busy server.
    status, events = kube_api.watch(path, old, timeout=5)
    assert not is_gone(status, events), events
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
    ]

    revision = kube_api.compact()
    assert revision > int(old)
    # After: etcd no longer has those revisions, and says so.
    status, events = kube_api.watch(path, old, timeout=10)
    assert is_gone(status, events), (status, events)
    # A watch from the current revision is fine.
    kube_api.apply(ingress(ns, "d", "d.example"))
    status, events = kube_api.watch(path, str(revision), timeout=5)
    assert not is_gone(status, events), events
    assert [e["object"]["metadata"]["name"] for e in events] == ["d"]


def test_a_service_account_is_forbidden_until_granted(kube_api: KubeAPI, tmp_path: Path) -> None:
    ns = "rbac"
    kube_api.create_namespace(ns)
    account = kube_api.service_account(ns, "exporter", tmp_path / "sa")
    token = (account / "token").read_text()
    ingresses = kube_api.path_of(INGRESS, "ingresses", ns)
    clusterissuers = kube_api.path_of(CERT_MANAGER, "clusterissuers")

    assert kube_api.request("GET", ingresses, token="not-a-token")[0] == 401
    assert kube_api.request("GET", ingresses, token=token)[0] == 403
    read = ["get", "list", "watch"]
    granted = kube_api.grant(
        ns,
        (ns, "exporter"),
        [{"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": read}],
    )
    assert kube_api.request("GET", ingresses, token=token)[0] == 200
    # A Role reaches its namespace only, not all namespaces nor cluster-scoped kinds.
    assert kube_api.request("GET", kube_api.path_of(INGRESS, "ingresses"), token=token)[0] == 403
    assert kube_api.request("GET", clusterissuers, token=token)[0] == 403

    kube_api.grant(
        None,
        (ns, "exporter"),
        [{"apiGroups": ["cert-manager.io"], "resources": ["clusterissuers"], "verbs": read}],
    )
    assert kube_api.request("GET", clusterissuers, token=token)[0] == 200
    # Revoking: delete the RoleBinding, and the namespace's ingresses are forbidden again.
    kube_api.delete(granted[1])
    assert eventually(lambda: kube_api.request("GET", ingresses, token=token)[0] == 403)


def eventually(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_request_count_tells_lists_from_watches(kube_api: KubeAPI) -> None:
    before = kube_api.request_count()
    for _ in range(3):
        assert kube_api.request("GET", "/api/v1/namespaces")[0] == 200
    listed = kube_api.request_count()
    assert listed.get("LIST", 0) - before.get("LIST", 0) >= 3

    watches = kube_api.open_watches()
    path = kube_api.path_of("v1", "configmaps", "default")
    done = threading.Thread(target=kube_api.watch, args=(path, "0"), kwargs={"timeout": 3})
    done.start()
    assert eventually(lambda: kube_api.open_watches() > watches)
    during = kube_api.request_count().get("WATCH", 0)
    done.join()
    # Counted once it has ended.
    assert eventually(lambda: kube_api.request_count().get("WATCH", 0) > during)


def test_restart_breaks_watches_and_keeps_the_data(kube_api: KubeAPI) -> None:
    ns = "restart"
    kube_api.create_namespace(ns)
    kube_api.apply(ingress(ns, "kept", "kept.example"))
    path = kube_api.path_of(INGRESS, "ingresses", ns)
    rv = kube_api.request("GET", path)[1]["metadata"]["resourceVersion"]

    ended = threading.Event()

    def watch() -> None:
        with (
            httpx.Client(
                base_url=kube_api.url,
                verify=kube_api.ssl_context(),
                trust_env=False,
                headers={"Authorization": f"Bearer {kube_api.admin_token}"},
                timeout=httpx.Timeout(10, read=None),
            ) as client,
            client.stream("GET", path, params={"watch": "true", "resourceVersion": rv}) as response,
        ):
            assert response.status_code == 200
            try:
                for _ in response.iter_lines():
                    pass
            except httpx.HTTPError:
                pass
            ended.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert not ended.wait(1), "the watch ended on its own"
    kube_api.stop_apiserver()
    assert ended.wait(30), "the watch survived the apiserver"
    with (
        httpx.Client(verify=kube_api.ssl_context(), trust_env=False) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"{kube_api.url}/readyz")
    kube_api.start_apiserver()
    status, stored = kube_api.request("GET", kube_api.path_of(INGRESS, "ingresses", ns, "kept"))
    assert status == 200
    assert stored["spec"]["rules"][0]["host"] == "kept.example"
    watcher.join(5)


def test_a_failed_start_shows_the_log_and_leaves_no_process(tmp_path: Path) -> None:
    real = servers_dir()
    servers = tmp_path / "servers"
    (servers / "bin").mkdir(parents=True)
    (servers / "bin" / "etcd").symlink_to(real / "bin" / "etcd")
    (servers / "crds").symlink_to(real / "crds")
    fake = servers / "bin" / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'E0101 unknown flag: --no-such-flag' >&2\nexit 3\n")
    fake.chmod(0o755)
    work = tmp_path / "work"
    with pytest.raises(AssertionError, match=r"(?s)exited with 3.*unknown flag: --no-such-flag"):
        KubeAPI(work, servers=servers)
    assert (work / "etcd.log").exists()  # etcd did start ...
    assert [c for c in command_lines() if str(work).encode() in c] == []  # ... and stopped


def command_lines() -> list[bytes]:
    """The command line of every process (as /proc has them)."""
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):  # it has exited meanwhile
            found.append(path.read_bytes())
    return found
