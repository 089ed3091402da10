"""A real Kubernetes API server for the discovery tests: kube-apiserver and etcd, as processes.

``scripts/kube-servers.sh`` builds both (and fetches the cert-manager and Gateway API
CustomResourceDefinitions) once per machine; :class:`KubeAPI` starts them on 127.0.0.1 with
free ports, a fresh etcd data directory and a serving certificate of the apiserver's own,
which clients verify (``ca_file``). Nothing listens on, or connects to, anything else.

What the tests can do to it is what a cluster does to the exporter: objects appear and go,
RBAC allows or forbids, the apiserver goes away and comes back (``restart``), and etcd
forgets old revisions (``compact``), so a watch resumed from an old resourceVersion is told
410 Gone.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import json
import os
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client.parser import text_string_to_metric_families

from exporter.lab.ports import free_port
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "kube-servers.sh"
# The cold build of kube-apiserver takes about 5 minutes on 2 cores; a slow machine, more.
BUILD_TIMEOUT = 40 * 60
START_TIMEOUT = 60.0
LOG_TAIL = 60  # lines of each log in a start-up failure
# Every kind the discovery reads that is not built in (exporter/discovery, issue #21).
REQUIRED_CRDS = frozenset(
    {
        "certificates.cert-manager.io",
        "issuers.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
    }
)


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


@functools.cache
def _find_servers() -> tuple[Path | None, str]:
    """(directory, "") or (None, why not): looked up once per session, the failure too."""
    configured = os.environ.get("KUBE_TEST_SERVERS")
    if configured:
        directory = Path(configured)
        missing = [
            name
            for name in ("bin/kube-apiserver", "bin/etcd", "crds")
            if not (directory / name).exists()
        ]
        if missing:
            return None, f"KUBE_TEST_SERVERS={configured} lacks {', '.join(missing)}"
        return directory, ""
    if shutil.which("go") is None:
        return None, (
            "KUBE_TEST_SERVERS is not set and go is not installed to build kube-apiserver "
            "and etcd (scripts/kube-servers.sh)"
        )
    try:
        done = subprocess.run(
            [str(SCRIPT)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return None, f"scripts/kube-servers.sh did not finish within {BUILD_TIMEOUT}s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return None, f"scripts/kube-servers.sh failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return Path(lines[-1]), ""


def servers_dir() -> Path:
    """The directory with bin/kube-apiserver, bin/etcd and crds/*.yaml.

    ``$KUBE_TEST_SERVERS``, else what scripts/kube-servers.sh builds (when go is installed).
    Neither: the test fails under CI=true (it must never skip there), else it skips.
    """
    directory, why = _find_servers()
    if directory is None:
        if _in_ci():
            pytest.fail(f"a real kube-apiserver is required in CI: {why}")
        pytest.skip(why)
    return directory


def _tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} was never written)"
    return "\n".join(text.splitlines()[-lines:])


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _child_env() -> dict[str, str]:
    """The servers' environment: no proxy may come between them and 127.0.0.1."""
    return {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    }


class KubeAPI:
    """etcd and kube-apiserver on 127.0.0.1, with the cert-manager and Gateway API CRDs.

    ``directory`` holds everything of this instance: etcd's data, the apiserver's keys and
    certificates, and the logs of both (``etcd.log``, ``kube-apiserver.log``).
    ``watch_cache=False`` starts the apiserver with ``--watch-cache=false``: every watch is
    then served by etcd itself, so after :meth:`compact` a watch from an older
    resourceVersion is answered 410 Gone (the watch cache would still have it in memory).
    """

    def __init__(
        self, directory: Path, *, watch_cache: bool = True, servers: Path | None = None
    ) -> None:
        self.directory = directory
        self.servers = servers if servers is not None else servers_dir()
        self.watch_cache = watch_cache
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.port = free_port()
        self.etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self.url = f"https://127.0.0.1:{self.port}"
        self.cert_dir = directory / "certs"
        # The apiserver writes a self-signed serving certificate (with the CA that signed it
        # appended) for its advertise address 127.0.0.1 here, and reuses it when restarted.
        self.ca_file = self.cert_dir / "apiserver.crt"
        self.admin_token = secrets.token_hex(24)
        self.etcd_log = directory / "etcd.log"
        self.apiserver_log = directory / "kube-apiserver.log"
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}
        directory.mkdir(parents=True, exist_ok=True)
        self._write_credentials()
        atexit.register(self.stop)
        try:
            self._start_etcd()
            self.start_apiserver()
            self._install_crds()
        except BaseException:
            self.stop()
            raise

    # -- processes ------------------------------------------------------------------------

    def _write_credentials(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.directory / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (self.directory / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (self.directory / "tokens.csv").write_text(
            f"{self.admin_token},admin,admin-uid,system:masters\n"
        )

    def _failure(self, message: str) -> AssertionError:
        return AssertionError(
            f"{message}\n--- {self.etcd_log} (tail) ---\n{_tail(self.etcd_log)}"
            f"\n--- {self.apiserver_log} (tail) ---\n{_tail(self.apiserver_log)}"
        )

    def _start_etcd(self) -> None:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        with self.etcd_log.open("ab") as log:
            self._etcd = subprocess.Popen(
                [
                    str(self.servers / "bin" / "etcd"),
                    "--name=t",
                    f"--data-dir={self.directory / 'etcd'}",
                    f"--listen-client-urls={self.etcd_url}",
                    f"--advertise-client-urls={self.etcd_url}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=t={peer}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(trust_env=False, timeout=5) as client:
            while True:
                if self._etcd.poll() is not None:
                    raise self._failure(f"etcd exited with {self._etcd.returncode}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    if client.get(f"{self.etcd_url}/health").json().get("health") == "true":
                        return
                if time.monotonic() > deadline:
                    raise self._failure(f"etcd not healthy within {START_TIMEOUT}s")
                time.sleep(0.1)

    def _apiserver_args(self) -> list[str]:
        return [
            str(self.servers / "bin" / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={self.cert_dir}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.directory / 'sa.pub'}",
            f"--service-account-signing-key-file={self.directory / 'sa.key'}",
            f"--token-auth-file={self.directory / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--endpoint-reconciler-type=none",
            "--disable-admission-plugins=ServiceAccount",
            f"--watch-cache={'true' if self.watch_cache else 'false'}",
        ]

    def start_apiserver(self) -> None:
        """Start kube-apiserver (on the same port as before) and wait until it is ready."""
        assert self._apiserver is None or self._apiserver.poll() is not None, "already running"
        with self.apiserver_log.open("ab") as log:
            self._apiserver = subprocess.Popen(
                self._apiserver_args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._apiserver.poll() is not None:
                raise self._failure(f"kube-apiserver exited with {self._apiserver.returncode}")
            if self.ca_file.exists():
                try:
                    if self.client().get("/readyz").status_code == 200:
                        return
                except ssl.SSLError:  # the certificate only half written yet
                    self._close_client()
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise self._failure(f"kube-apiserver not ready within {START_TIMEOUT}s")
            time.sleep(0.1)

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def stop_apiserver(self, grace: float = 2.0) -> None:
        """Stop kube-apiserver (etcd keeps running): open watches and connections break.

        SIGTERM first, SIGKILL after ``grace`` seconds: with a watch open the apiserver
        would otherwise wait a minute for it to end (it stops listening at once either way).
        """
        self._close_client()
        _stop_process(self._apiserver, grace)

    def restart(self) -> None:
        """kube-apiserver stops and starts again on the same port, with the same data."""
        self.stop_apiserver()
        self.start_apiserver()

    def stop(self) -> None:
        """Stop both servers (idempotent; also run at interpreter exit)."""
        self.stop_apiserver()
        _stop_process(self._etcd)
        atexit.unregister(self.stop)

    def __enter__(self) -> KubeAPI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- HTTP -----------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the apiserver's certificate, and its name 127.0.0.1."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self) -> httpx.Client:
        """A client of the apiserver (admin token by default), kept until the apiserver stops."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.url,
                verify=self.ssl_context(),
                trust_env=False,
                timeout=30,
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
        return self._client

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        """(status, decoded JSON body); a body that is not JSON comes back as {"text": ...}."""
        headers = self._headers(token)
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        response = self.client().request(
            method, path, content=content, params=params, headers=headers
        )
        try:
            decoded = response.json()
        except ValueError:
            decoded = {"text": response.text}
        if not isinstance(decoded, dict):
            decoded = {"value": decoded}
        return response.status_code, decoded

    def _ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        status, answer = self.request(method, path, body, **kwargs)
        if status >= 300:
            raise AssertionError(f"{method} {path}: {status} {json.dumps(answer)[:2000]}")
        return answer

    def watch(
        self,
        path: str,
        resource_version: str,
        *,
        timeout: int = 3,
        token: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """A watch of ``path`` from ``resource_version``: (HTTP status, events), for
        ``timeout`` seconds or until an ERROR event. A too old resourceVersion shows up
        either as status 410 or (from etcd, after the stream began) as an ERROR event
        whose object is a Status with code 410: :func:`is_gone` accepts both.
        """
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout),
            **(params or {}),
        }
        events: list[dict[str, Any]] = []
        with self.client().stream(
            "GET", path, params=query, headers=self._headers(token), timeout=timeout + 30
        ) as response:
            if response.status_code != 200:
                response.read()
                with contextlib.suppress(ValueError):
                    events.append({"type": "ERROR", "object": response.json()})
                return response.status_code, events
            for line in response.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                events.append(event)
                if event.get("type") == "ERROR":
                    break
        return response.status_code, events

    # -- objects --------------------------------------------------------------------------

    @staticmethod
    def path_of(
        api_version: str,
        kind_plural: str,
        namespace: str | None = None,
        name: str | None = None,
    ) -> str:
        """/api/v1/... or /apis/GROUP/VERSION/..., [namespaces/NS/]PLURAL[/NAME]."""
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespace is not None:
            path += f"/namespaces/{namespace}"
        path += f"/{kind_plural}"
        if name is not None:
            path += f"/{name}"
        return path

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from the server's discovery (CRDs included)."""
        key = (api_version, kind)
        if key not in self._resources:
            group = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for resource in self._ok("GET", group).get("resources", []):
                if "/" not in resource["name"]:
                    found = (resource["name"], bool(resource["namespaced"]))
                    self._resources[(api_version, resource["kind"])] = found
        if key not in self._resources:
            raise AssertionError(f"{api_version} {kind} is not served")
        return self._resources[key]

    def object_path(self, obj: dict[str, Any]) -> str:
        plural, namespaced = self._resource(obj["apiVersion"], obj["kind"])
        metadata = obj["metadata"]
        namespace = metadata.get("namespace", "default") if namespaced else None
        return self.path_of(obj["apiVersion"], plural, namespace, metadata["name"])

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update ``obj`` (server-side apply, forced); the object as stored.

        A namespaced object without a namespace goes to "default". A rejected object
        (422 from the schema of its CRD, say) raises AssertionError with the answer.
        """
        return self._ok(
            "PATCH",
            self.object_path(obj),
            obj,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": "tests", "force": "true"},
        )

    def delete(self, obj_or_path: dict[str, Any] | str) -> int:
        """Delete an object (or the object at a path); the status (404: it was not there).

        Namespaces never finish terminating: no namespace controller runs here.
        """
        path = obj_or_path if isinstance(obj_or_path, str) else self.object_path(obj_or_path)
        status, answer = self.request("DELETE", path)
        if status >= 300 and status != 404:
            raise AssertionError(f"DELETE {path}: {status} {json.dumps(answer)[:2000]}")
        return status

    def create_namespace(self, name: str) -> dict[str, Any]:
        return self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def _install_crds(self) -> None:
        names: list[str] = []
        for path in sorted((self.servers / "crds").glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document and document.get("kind") == "CustomResourceDefinition":
                    names.append(self.apply(document)["metadata"]["name"])
        missing = REQUIRED_CRDS - set(names)
        if missing:
            raise self._failure(
                f"{self.servers / 'crds'} lacks the CRDs of {', '.join(sorted(missing))}"
            )
        deadline = time.monotonic() + START_TIMEOUT
        for name in names:
            crd = self.path_of("apiextensions.k8s.io/v1", "customresourcedefinitions", None, name)
            while True:
                conditions = self._ok("GET", crd).get("status", {}).get("conditions", [])
                if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise self._failure(f"CRD {name} not Established: {conditions}")
                time.sleep(0.1)
        self._resources.clear()

    # -- credentials ----------------------------------------------------------------------

    def kubeconfig(self, path: Path, token: str | None = None) -> Path:
        """A kubeconfig for this server: verified TLS, a bearer token (admin by default)."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "test", "user": {"token": token or self.admin_token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "current-context": "test",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def service_account(self, namespace: str, name: str, directory: Path) -> Path:
        """Create the ServiceAccount and write ``directory`` as a pod's
        /var/run/secrets/kubernetes.io/serviceaccount: ``token`` (from the TokenRequest
        API, valid for an hour), ``ca.crt`` and ``namespace``.
        """
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            }
        )
        answer = self._ok(
            "POST",
            self.path_of("v1", "serviceaccounts", namespace, name) + "/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
        )
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(answer["status"]["token"])
        (directory / "ca.crt").write_bytes(self.ca_file.read_bytes())
        (directory / "namespace").write_text(namespace)
        return directory

    def grant(
        self,
        namespace: str | None,
        subject_sa: tuple[str, str],
        rules: list[dict[str, Any]],
        name: str | None = None,
    ) -> list[str]:
        """Allow a ServiceAccount ``rules``: a Role and RoleBinding in ``namespace``, or a
        ClusterRole and ClusterRoleBinding (``namespace`` None). Returns once the
        authorizer allows them, with the paths of both objects (delete them to revoke).
        """
        sa_namespace, sa_name = subject_sa
        name = name or f"test-{sa_namespace}-{sa_name}-{secrets.token_hex(3)}"
        prefix = "Cluster" if namespace is None else ""
        metadata: dict[str, Any] = {"name": name}
        if namespace is not None:
            metadata["namespace"] = namespace
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": f"{prefix}Role",
            "metadata": metadata,
            "rules": rules,
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": f"{prefix}RoleBinding",
            "metadata": metadata,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": f"{prefix}Role",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}],
        }
        self.apply(role)
        self.apply(binding)
        # RBAC reads roles and bindings from informers: wait until it has seen these.
        user = f"system:serviceaccount:{sa_namespace}:{sa_name}"
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}"]
        for rule in rules:
            for group in rule.get("apiGroups", [""]):
                for resource in rule.get("resources", []):
                    for verb in rule.get("verbs", []):
                        attributes = {"verb": verb, "group": group, "resource": resource}
                        if namespace is not None:
                            attributes["namespace"] = namespace
                        self._wait_allowed(user, groups, attributes)
        return [self.object_path(role), self.object_path(binding)]

    def _wait_allowed(self, user: str, groups: list[str], attributes: dict[str, str]) -> None:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
        }
        deadline = time.monotonic() + 30
        while True:
            answer = self._ok("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
            if answer.get("status", {}).get("allowed"):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{user} still not allowed {attributes}: {answer}")
            time.sleep(0.05)

    # -- etcd and metrics -----------------------------------------------------------------

    def etcd_revision(self) -> int:
        """etcd's current revision (the resourceVersion of the newest write)."""
        with httpx.Client(trust_env=False, timeout=10) as client:
            answer = client.post(
                f"{self.etcd_url}/v3/kv/range",
                json={"key": base64.b64encode(b"/").decode()},
            )
            answer.raise_for_status()
            return int(answer.json()["header"]["revision"])

    def compact(self) -> int:
        """Compact etcd at its current revision (physically), which it returns: a watch
        from an older resourceVersion is then answered 410 Gone (with watch_cache=False).
        """
        revision = self.etcd_revision()
        with httpx.Client(trust_env=False, timeout=30) as client:
            answer = client.post(
                f"{self.etcd_url}/v3/kv/compaction",
                json={"revision": str(revision), "physical": True},
            )
            if answer.status_code != 200:
                raise AssertionError(f"etcd compaction: {answer.status_code} {answer.text}")
        return revision

    def _metric_by_verb(self, name: str) -> dict[str, float]:
        response = self.client().get("/metrics")
        assert response.status_code == 200, f"/metrics: {response.status_code}"
        # Only the lines of this metric: all of /metrics is 1.5 MB, slow to parse.
        wanted = (f"{name}{{", f"{name} ", f"# HELP {name} ", f"# TYPE {name} ")
        text = "".join(line for line in response.text.splitlines(True) if line.startswith(wanted))
        sums: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    verb = sample.labels.get("verb", "")
                    sums[verb] = sums.get(verb, 0.0) + sample.value
        return sums

    def request_count(self) -> dict[str, float]:
        """The apiserver's ``apiserver_request_total``, summed by verb (LIST, WATCH, GET, ...).

        A request is counted when it ends: a watch still open is not in WATCH yet (see
        :meth:`open_watches`).
        """
        return self._metric_by_verb("apiserver_request_total")

    def open_watches(self) -> float:
        """Watches open now (``apiserver_longrunning_requests{verb="WATCH"}``)."""
        return self._metric_by_verb("apiserver_longrunning_requests").get("WATCH", 0.0)


def is_gone(status: int, events: list[dict[str, Any]]) -> bool:
    """Whether a :meth:`KubeAPI.watch` was told 410 Gone (either way it can be told)."""
    if status == 410:
        return True
    return any(
        event.get("type") == "ERROR" and event.get("object", {}).get("code") == 410
        for event in events
    )


@pytest.fixture(scope="session", name="kube_api")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPI]:
    """One kube-apiserver (``--watch-cache=false``) and etcd for the whole session.

    Named explicitly, so a test module can import it under another name (``import kube_api
    as kube_api_fixture``) and take ``kube_api`` as a parameter without shadowing it.
    """
    with KubeAPI(tmp_path_factory.mktemp("kube-api"), watch_cache=False) as api:
        yield api
