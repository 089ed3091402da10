"""Names from the Kubernetes API: each kind listed once, then watched, never polled.

Rule: one :class:`Reflector` per (kind, namespace) keeps a copy of the objects, as
client-go's reflector does:

- **list** in pages (``limit``/``continue``), then **watch** from the list's
  ``resourceVersion`` with bookmarks (``allowWatchBookmarks``), resuming every new watch
  from the last version seen (an event's or a bookmark's): nothing is listed again while
  the watch can be resumed;
- **410 Gone** (the version was compacted away, on the watch or in the middle of a
  paginated list) is the one thing that lists again, from scratch, and replaces the copy
  whole: deletions missed while away are noticed;
- **any other failure** (the API server unreachable, a 403 because RBAC forbids the kind,
  a 404 because its CRD is not installed, a 5xx) keeps the copy as it was, marks the
  source down with the reason, and retries with a capped exponential backoff. A broken
  watch never drops a domain: only the API server saying an object is gone does.

The client (:func:`client`) is lightkube's: its kubeconfig and in-cluster service account
handling (token files re-read on rotation, exec plugins, client certificates) over an
httpx2 connection pool; the list and watch requests are made here, with the parameters
above. Which names an object puts up is :mod:`exporter.discovery.kinds` (pure); this
module is the I/O.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.config import KubernetesSource
from exporter.discovery import kinds
from exporter.discovery.kinds import Found
from exporter.discovery.status import Reason, SourceName, Status, StatusBook

if TYPE_CHECKING:
    import httpx2
    from lightkube.config.kubeconfig import SingleConfig

__all__ = ["KINDS", "Kind", "KubernetesWatcher", "Reflector", "load_kubeconfig"]

log = logging.getLogger("exporter")

#: Objects per list page (client-go's default page size is 500 too).
PAGE_SIZE = 500
#: A watch asks the server to end it after a random time in this range, and is then
#: resumed (client-go: 5 to 10 minutes), so that no connection lives for ever unseen.
WATCH_SECONDS = (300, 600)
#: How long a quiet watch may be silent beyond its server-side timeout before the
#: connection is taken as dead.
WATCH_GRACE = 30.0
#: Backoff after a failure: doubles from the first to the cap, with ±20% jitter.
BACKOFF = (0.5, 30.0)
#: Connect and request timeouts of list requests.
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


INGRESS = Kind("Ingress", "networking.k8s.io", "v1", "ingresses")
CERTIFICATE = Kind("Certificate", "cert-manager.io", "v1", "certificates")
ISSUER = Kind("Issuer", "cert-manager.io", "v1", "issuers")
CLUSTER_ISSUER = Kind("ClusterIssuer", "cert-manager.io", "v1", "clusterissuers", False)
HTTPROUTE = Kind("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes")
GATEWAY = Kind("Gateway", "gateway.networking.k8s.io", "v1", "gateways")
#: Every kind the exporter reads (the chart's RBAC grants get, list and watch on these).
KINDS = (INGRESS, CERTIFICATE, ISSUER, CLUSTER_ISSUER, HTTPROUTE, GATEWAY)


class Gone(Exception):
    """410: the resourceVersion asked for is no longer available."""


class ApiFailure(Exception):
    def __init__(self, reason: Reason, text: str) -> None:
        super().__init__(text)
        self.reason = reason


def _key(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return None
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if isinstance(namespace, str) else meta["name"]


#: The annotations anything here reads; the rest (last-applied-configuration can be large)
#: are not kept.
_ANNOTATIONS = (
    "kubernetes.io/ingress.class",
    "cert-manager.io/issuer",
    "cert-manager.io/cluster-issuer",
)


def trim(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of an object: its identity, labels, the annotations read here, spec and
    status (no managedFields, no other annotations): the copy is a fraction of the list."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    annotations = meta.get("annotations")
    kept: dict[str, Any] = {
        key: meta[key] for key in ("name", "namespace", "labels", "uid") if key in meta
    }
    if isinstance(annotations, dict):
        kept["annotations"] = {k: annotations[k] for k in _ANNOTATIONS if k in annotations}
    out: dict[str, Any] = {"metadata": kept}
    for part in ("spec", "status"):
        if part in obj:
            out[part] = obj[part]
    return out


def _failure(status: int, body: bytes) -> ApiFailure | Gone:
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    text = f"{status} {message}".strip()
    if status == 410:
        return Gone(text)
    reason = {401: Reason.UNAUTHORIZED, 403: Reason.FORBIDDEN, 404: Reason.NOT_FOUND}.get(
        status, Reason.SERVER_ERROR
    )
    return ApiFailure(reason, text)


class Reflector:
    """One kind in one namespace (or all): a current copy of its objects."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        kind: Kind,
        namespace: str | None,
        selector: str,
        status: Status,
        changed: Callable[[], None],
    ) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.selector = selector
        self.status = status
        self._changed = changed
        self.objects: dict[str, dict[str, Any]] = {}
        #: Whether the copy was ever complete (a first list finished).
        self.synced = False
        #: Whether a first list was tried (finished, or failed).
        self.attempted = False
        #: Counts the changes of the copy (what depends on it is derived again).
        self.revision = 0
        self.version: str | None = None
        self._backoff = BACKOFF[0]

    @property
    def where(self) -> str:
        return f"{self.kind.kind} in {self.namespace or 'all namespaces'}"

    def _params(self, **extra: str | int) -> dict[str, str | int]:
        params: dict[str, str | int] = dict(extra)
        if self.selector:
            params["labelSelector"] = self.selector
        return params

    async def run(self) -> None:
        import httpx2

        while True:
            try:
                if self.version is None:
                    await self._list()
                await self._watch()
                self._backoff = BACKOFF[0]
            except Gone as exc:
                self.status.failed(Reason.GONE, str(exc))
                log.info(
                    "watch expired (410 Gone): listing again",
                    extra={"fields": {"kind": self.kind.kind, "namespace": self.namespace or ""}},
                )
                self.version = None
                continue
            except ApiFailure as exc:
                self._failed(exc.reason, str(exc))
            except httpx2.TimeoutException as exc:
                self._failed(Reason.TIMEOUT, str(exc) or type(exc).__name__)
            except httpx2.HTTPError as exc:  # connect, read, protocol
                self._failed(Reason.UNREACHABLE, str(exc) or type(exc).__name__)
            except (ValueError, KeyError, TypeError) as exc:  # a body that is not the API's
                self._failed(Reason.SERVER_ERROR, f"unexpected answer: {exc}")
            if not self.attempted:
                self.attempted = True
                self._changed()
            await asyncio.sleep(self._backoff * random.uniform(0.8, 1.2))
            self._backoff = min(BACKOFF[1], self._backoff * 2)

    def _failed(self, reason: Reason, text: str) -> None:
        self.status.failed(reason, f"{self.where}: {text}")
        log.warning(
            "kubernetes source failing; the names it found so far are kept",
            extra={
                "fields": {
                    "kind": self.kind.kind,
                    "namespace": self.namespace or "",
                    "reason": reason.value,
                    "error": text,
                    "kept": len(self.objects),
                }
            },
        )

    async def _list(self) -> None:
        """A complete list, in pages; replaces the copy whole."""
        path = self.kind.path(self.namespace)
        objects: dict[str, dict[str, Any]] = {}
        token: str | None = None
        version = ""
        while True:
            params = self._params(limit=PAGE_SIZE)
            if token:
                params["continue"] = token
            response = await self.client.get(path, params=params, timeout=REQUEST_TIMEOUT)
            if response.status_code != 200:
                raise _failure(response.status_code, response.content)
            body = response.json()
            for item in body.get("items") or ():
                key = _key(item) if isinstance(item, dict) else None
                if key is None:
                    self.status.errors[Reason.INVALID] = (
                        self.status.errors.get(Reason.INVALID, 0) + 1
                    )
                    continue
                objects[key] = trim(item)
            meta = body.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = meta.get("continue") or None
            if not token:
                break
        self.objects = objects
        self.version = version
        self.revision += 1
        self.synced = self.attempted = True
        self.status.synced()
        self._changed()

    async def _watch(self) -> None:
        """One watch request, from :attr:`version`, until the server ends it."""
        import httpx2

        seconds = random.randint(*WATCH_SECONDS)
        params = self._params(
            watch=1,
            resourceVersion=self.version or "",
            allowWatchBookmarks="true",
            timeoutSeconds=seconds,
        )
        timeout = httpx2.Timeout(REQUEST_TIMEOUT, read=seconds + WATCH_GRACE)
        async with self.client.stream(
            "GET", self.kind.path(self.namespace), params=params, timeout=timeout
        ) as response:
            if response.status_code != 200:
                raise _failure(response.status_code, await response.aread())
            self.status.synced()
            self._backoff = BACKOFF[0]
            async for line in response.aiter_lines():
                if line.strip():
                    self._event(json.loads(line))

    def _event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            raise ValueError("a watch event without an object")
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Gone(str(obj.get("message", "")))
            raise _failure(int(code) if isinstance(code, int) else 500, json.dumps(obj).encode())
        meta = obj.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if isinstance(version, str) and version:
            self.version = version
        if kind == "BOOKMARK":
            self.status.synced()
            return
        key = _key(obj)
        if key is None:
            self.status.errors[Reason.INVALID] = self.status.errors.get(Reason.INVALID, 0) + 1
            return
        if kind in ("ADDED", "MODIFIED"):
            self.objects[key] = trim(obj)
        elif kind == "DELETED":
            self.objects.pop(key, None)
        else:
            return
        self.revision += 1
        self.status.synced()
        self._changed()


def load_kubeconfig(config: KubernetesSource) -> SingleConfig:
    """The cluster, user and namespace to use: blocking, raises ``ValueError`` with a
    readable reason (the caller names the config key)."""
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.core.exceptions import ConfigError as KubeConfigError

    try:
        if config.kubeconfig is not None:
            loaded = KubeConfig.from_file(config.kubeconfig)
        else:
            loaded = KubeConfig.from_env()
        single = loaded.get(context_name=config.context)
    except (KubeConfigError, OSError, KeyError, ValueError, TypeError) as exc:
        where = config.kubeconfig or "the service account, $KUBECONFIG or ~/.kube/config"
        raise ValueError(f"cannot load the Kubernetes client config from {where}: {exc}") from None
    if single is None:
        raise ValueError(f"no context {config.context!r} in the kubeconfig")
    return single


def client(single: SingleConfig) -> httpx2.AsyncClient:
    """An authenticated connection pool to the API server (lightkube's adapter)."""
    import httpx2
    from lightkube.config.client_adapter import AsyncClient, ConnectionParams

    params = ConnectionParams(timeout=httpx2.Timeout(REQUEST_TIMEOUT), trust_env=False, http2=False)
    return AsyncClient(single, params)


class KubernetesWatcher:
    """``sources.kubernetes``: a reflector per enabled kind and namespace, and the names."""

    def __init__(
        self,
        config: KubernetesSource,
        single: SingleConfig,
        book: StatusBook,
        changed: Callable[[], None],
    ) -> None:
        self.config = config
        self._single = single
        self._changed = changed
        self._book = book
        self.reflectors: dict[Kind, list[Reflector]] = {}
        self._client: httpx2.AsyncClient | None = None
        #: Each object's names, by the object's identity: (object, dependency, names).
        self._memo: dict[int, tuple[object, object, list[Found]]] = {}

    def kinds(self) -> list[tuple[Kind, str]]:
        """The kinds to watch, each with its label selector."""
        config = self.config
        wanted: list[tuple[Kind, str]] = []
        if config.ingress.enabled:
            wanted.append((INGRESS, config.ingress.label_selector))
        if config.certificate.enabled:
            wanted += [
                (CERTIFICATE, config.certificate.label_selector),
                (ISSUER, ""),
                (CLUSTER_ISSUER, ""),
            ]
        if config.httproute.enabled:
            wanted += [(HTTPROUTE, config.httproute.label_selector), (GATEWAY, "")]
        return wanted

    def statuses(self) -> set[tuple[SourceName, str]]:
        return {(SourceName.KUBERNETES, kind.kind) for kind, _ in self.kinds()}

    async def run(self) -> None:
        self._client = client(self._single)
        namespaces: list[str | None] = list(self.config.namespaces) or [None]
        tasks: list[asyncio.Task[None]] = []
        try:
            async with asyncio.TaskGroup() as group:
                for kind, selector in self.kinds():
                    status = self._book.get(SourceName.KUBERNETES, kind.kind)
                    for namespace in namespaces if kind.namespaced else [None]:
                        reflector = Reflector(
                            self._client, kind, namespace, selector, status, self._changed
                        )
                        self.reflectors.setdefault(kind, []).append(reflector)
                        tasks.append(group.create_task(reflector.run()))
        finally:
            await self._client.aclose()

    async def list_once(self) -> None:
        """Each kind listed once, no watch (``check``): failures are in the statuses."""
        import httpx2

        self._client = client(self._single)
        namespaces: list[str | None] = list(self.config.namespaces) or [None]
        try:
            for kind, selector in self.kinds():
                status = self._book.get(SourceName.KUBERNETES, kind.kind)
                for namespace in namespaces if kind.namespaced else [None]:
                    reflector = Reflector(
                        self._client, kind, namespace, selector, status, lambda: None
                    )
                    self.reflectors.setdefault(kind, []).append(reflector)
                    try:
                        await reflector._list()
                    except (ApiFailure, Gone) as exc:
                        reason = exc.reason if isinstance(exc, ApiFailure) else Reason.GONE
                        status.failed(reason, f"{reflector.where}: {exc}")
                    except httpx2.HTTPError as exc:
                        status.failed(Reason.UNREACHABLE, f"{reflector.where}: {exc}")
        finally:
            await self._client.aclose()

    def settled(self) -> bool:
        """Whether every reflector has tried its first list (a failure counts: a kind RBAC
        forbids must not keep the exporter unready for ever)."""
        reflectors = [r for rs in self.reflectors.values() for r in rs]
        return bool(reflectors) and all(r.attempted for r in reflectors)

    def listed(self) -> bool:
        """Whether every reflector has completed a first list."""
        reflectors = [r for rs in self.reflectors.values() for r in rs]
        return bool(reflectors) and all(r.synced for r in reflectors)

    def _objects(self, kind: Kind) -> Iterable[dict[str, Any]]:
        for reflector in self.reflectors.get(kind, ()):
            yield from reflector.objects.values()

    def _up(self, kind: Kind) -> None:
        """A kind's status is up only when every namespace's watch is."""
        reflectors = self.reflectors.get(kind, ())
        status = self._book.get(SourceName.KUBERNETES, kind.kind)
        status.objects = sum(len(r.objects) for r in reflectors)

    def found(self) -> list[Found]:
        """Every name the watched objects put up (validated or skipped), now.

        An object's names are derived again only when it changed (a new copy of it), or
        what it depends on did (a Certificate's issuer, an HTTPRoute's Gateways): one event
        costs one object, not the whole set.
        """
        out: list[Found] = []
        config = self.config
        memo = self._memo
        fresh: dict[int, tuple[object, object, list[Found]]] = {}

        def names(obj: dict[str, Any], dep: object, derive: Callable[[], list[Found]]) -> None:
            hit = memo.get(id(obj))
            if hit is None or hit[0] is not obj or hit[1] != dep:
                hit = (obj, dep, derive())
            fresh[id(obj)] = hit
            out.extend(hit[2])

        for kind in self.reflectors:
            self._up(kind)
        if INGRESS in self.reflectors:
            classes = frozenset(config.ingress.ingress_classes)
            only = config.ingress.cert_manager_only
            for obj in self._objects(INGRESS):
                names(
                    obj,
                    None,
                    lambda obj=obj: kinds.ingress_names(  # type: ignore[misc]
                        obj, classes=classes, cert_manager_only=only
                    ),
                )
        if CERTIFICATE in self.reflectors:
            issuers = self._index(ISSUER)
            cluster = self._index(CLUSTER_ISSUER)
            for obj in self._objects(CERTIFICATE):
                issuer_kind, _group, name = kinds.issuer_ref(obj)
                meta = obj.get("metadata")
                namespace = str(meta.get("namespace", "")) if isinstance(meta, dict) else ""
                if issuer_kind == "ClusterIssuer":
                    issuer = cluster.get(name)
                else:
                    issuer = issuers.get(f"{namespace}/{name}")
                names(
                    obj,
                    issuer,  # held, so a changed issuer is a new copy that compares unequal
                    lambda obj=obj, issuer=issuer: kinds.certificate_names(  # type: ignore[misc]
                        obj, issuer
                    ),
                )
        if HTTPROUTE in self.reflectors:
            gateways = self._index(GATEWAY)
            revision = tuple(r.revision for r in self.reflectors.get(GATEWAY, ()))
            for obj in self._objects(HTTPROUTE):
                names(
                    obj,
                    revision,
                    lambda obj=obj: kinds.httproute_names(  # type: ignore[misc]
                        obj, lambda namespace, name: gateways.get(f"{namespace}/{name}")
                    ),
                )
        self._memo = fresh
        return out

    def _index(self, kind: Kind) -> dict[str, dict[str, Any]]:
        index: dict[str, dict[str, Any]] = {}
        for reflector in self.reflectors.get(kind, ()):
            index.update(reflector.objects)
        return index
