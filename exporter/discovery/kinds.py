"""The names each Kubernetes object puts up for HTTP-01 validation, and why some are not.

Rule: pure. No I/O library is imported here; every function takes the JSON objects the
Kubernetes API returns (``metadata``/``spec``/``status`` dicts) and returns a list of
:class:`Found`. Those objects are hostile input: a missing or wrong-typed field is read as
absent, an object that cannot be read at all gives no names, and nothing here raises on
any shape of object. The output order is the order names are met, each name once (the
first finding wins).

A name is either to be validated (``Found.skipped is None``) or skipped for one reason of
the closed set :class:`Skip`. The reasons that belong to the name itself come first: a
wildcard (``*.x``: Let's Encrypt validates wildcards with DNS-01 only) is always
``wildcard``, then a name that is no name at all (``exporter.config.normalise_domain``
refuses it) is ``invalid_name``; only then come the reasons of the kind.

* Ingress (networking.k8s.io/v1), :func:`ingress_names`: ``spec.rules[].host`` and
  ``spec.tls[].hosts[]``. An Ingress left out by the class or cert-manager filters gives
  no names. The class is ``spec.ingressClassName``, else the annotation
  ``kubernetes.io/ingress.class``; an Ingress with neither has no class (the cluster's
  default IngressClass cannot be known from the Ingress alone).
* Certificate (cert-manager.io/v1), :func:`certificate_names`: ``spec.dnsNames`` and the
  solver cert-manager itself would pick for each, from its issuer's
  ``spec.acme.solvers``, ranked as cert-manager ranks them (github.com/cert-manager/
  cert-manager ``pkg/util/solverpicker/solverpicker.go``, see :func:`_pick_solver`).
  ``spec.commonName`` adds no name of its own: cert-manager's ACME issuer refuses a
  request whose common name is not also among its DNS names or IP addresses
  (``pkg/controller/certificaterequests/acme/acme.go``, ``Sign``), so in every order it
  places the common name is one of the ``dnsNames`` already.
* HTTPRoute (gateway.networking.k8s.io/v1), :func:`httproute_names`: the intersection of
  ``spec.hostnames`` with the hostnames of the listeners of its parent Gateways that
  accept it, as the Gateway API (kubernetes-sigs/gateway-api) defines hostname
  intersection: ``apis/v1/httproute_types.go`` ``Hostnames``, ``apis/v1/gateway_types.go``
  ``Listener.Hostname`` and ``AllowedRoutes``, ``apis/v1/shared_types.go``
  ``ParentReference``, and ``site/content/en/docs/concepts/hostnames.md`` ("Hostname
  Intersection"; its conformance test ``conformance/tests/httproute-hostname-intersection``
  has the same cases). A wildcard matches one or more labels. A listener whose
  ``allowedRoutes.namespaces.from`` is ``Selector`` is taken to accept the route: the
  selector is matched against Namespace objects, which are not read here. Parents that
  are not Gateways (a Service, a ListenerSet) are not followed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from exporter.config import normalise_domain

__all__ = [
    "CERT_MANAGER_GROUP",
    "GATEWAY_GROUP",
    "Found",
    "Origin",
    "Skip",
    "acme_server_label",
    "certificate_names",
    "httproute_names",
    "ingress_names",
    "issuer_ref",
    "judge",
    "origin_json",
]

SOURCE = "kubernetes"
CERT_MANAGER_GROUP = "cert-manager.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"

#: The annotations cert-manager's ingress-shim acts on (``pkg/controller/certificate-shim/
#: sync.go`` ``hasShimAnnotation``: the key present, whatever its value).
_SHIM_ANNOTATIONS = ("cert-manager.io/issuer", "cert-manager.io/cluster-issuer")
_CLASS_ANNOTATION = "kubernetes.io/ingress.class"

#: Let's Encrypt's ACME directories, by host.
_LETSENCRYPT_HOSTS = {
    "acme-v02.api.letsencrypt.org": "letsencrypt",
    "acme-staging-v02.api.letsencrypt.org": "letsencrypt-staging",
}


class Skip(StrEnum):
    """Why a name found is not validated."""

    WILDCARD = "wildcard"
    INVALID_NAME = "invalid_name"
    NOT_ACME = "not_acme"
    ISSUER_NOT_FOUND = "issuer_not_found"
    NOT_HTTP01 = "not_http01"
    NO_SOLVER = "no_solver"
    NO_LISTENER = "no_listener"
    NOT_ATTACHED = "not_attached"


class Origin(NamedTuple):
    """The object a name was found in (a tuple: the merge of 10,000 names hashes and
    compares these, which a tuple does in C)."""

    source: str  # "kubernetes" here; "file" and "static" elsewhere
    kind: str  # "Ingress" | "Certificate" | "HTTPRoute"
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Found:
    """One name an object puts up, validated (``skipped is None``) or not."""

    #: Normalised as an ACME client sends it; a name that cannot be (``invalid_name``,
    #: ``wildcard``) is kept as given, lowercased.
    name: str
    origin: Origin
    #: A :class:`Skip` value, or None: validate it.
    skipped: str | None = None
    #: Certificate: the issuer's ``spec.acme.server``.
    acme_server: str | None = None
    #: Certificate: the issuer's ``status.acme.uri`` (its ACME account, for CAA accounturi).
    account_uri: str | None = None
    #: Certificate: ``status.renewalTime``, Unix seconds.
    renewal_time: float | None = None
    #: Certificate: ``status.notAfter``, Unix seconds.
    not_after: float | None = None


# -------------------------------------------------------------------- reading JSON

_EMPTY: Mapping[str, Any] = {}


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _strings(value: object) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str)]


def _labels(value: object) -> dict[str, str]:
    return {k: v for k, v in _map(value).items() if isinstance(k, str) and isinstance(v, str)}


def _origin(obj: Mapping[str, Any], kind: str) -> Origin:
    meta = _map(obj.get("metadata"))
    return Origin(SOURCE, kind, _str(meta.get("namespace")) or "", _str(meta.get("name")) or "")


def _is_wildcard(name: str) -> bool:
    return name == "*" or name.startswith("*.")


def _finding(raw: str, origin: Origin) -> Found | None:
    """``raw`` as a finding: None for a blank name (absent), else the normalised name, or
    the name as given (lowercased) skipped for what it is."""
    text = raw.strip()
    if not text:
        return None
    if _is_wildcard(text):
        try:
            shown = "*." + normalise_domain(text[2:])
        except ValueError:
            shown = text.lower()
        return Found(shown, origin, Skip.WILDCARD)
    try:
        return Found(normalise_domain(text), origin)
    except ValueError:
        return Found(text.lower(), origin, Skip.INVALID_NAME)


def judge(name: str, origin: Origin) -> Found:
    """One name as found anywhere (a file, a list): normalised, or kept as given
    (lowercased) and skipped ``wildcard`` or ``invalid_name`` (a blank name too)."""
    if isinstance(name, str) and (found := _finding(name, origin)) is not None:
        return found
    return Found(str(name).strip().lower(), origin, Skip.INVALID_NAME)


def _unique(found: Iterable[Found]) -> list[Found]:
    """Each name once, the first finding kept, in the order met."""
    seen: dict[str, Found] = {}
    for item in found:
        seen.setdefault(item.name, item)
    return list(seen.values())


# ------------------------------------------------------------------------- Ingress


def ingress_names(
    obj: object, *, classes: frozenset[str] = frozenset(), cert_manager_only: bool = False
) -> list[Found]:
    """The hosts of an Ingress's rules, then of its TLS entries; [] when filtered out.

    ``classes`` (non-empty): only an Ingress whose class is listed. ``cert_manager_only``:
    only an Ingress annotated ``cert-manager.io/issuer`` or ``cert-manager.io/cluster-issuer``.
    """
    if not isinstance(obj, Mapping):
        return []
    annotations = _map(_map(obj.get("metadata")).get("annotations"))
    spec = _map(obj.get("spec"))
    if classes:
        cls = _str(spec.get("ingressClassName")) or _str(annotations.get(_CLASS_ANNOTATION))
        if cls not in classes:
            return []
    if cert_manager_only and not any(key in annotations for key in _SHIM_ANNOTATIONS):
        return []
    origin = _origin(obj, "Ingress")
    hosts = [_str(_map(rule).get("host")) for rule in _list(spec.get("rules"))]
    for tls in _list(spec.get("tls")):
        hosts += _strings(_map(tls).get("hosts"))
    return _unique(f for h in hosts if h is not None and (f := _finding(h, origin)) is not None)


# --------------------------------------------------------------------- Certificate


def issuer_ref(cert: object) -> tuple[str, str, str]:
    """A Certificate's ``spec.issuerRef`` as (kind, group, name), with cert-manager's
    defaults: kind ``Issuer``, group ``cert-manager.io`` (``pkg/api/util/issuers.go``
    ``IssuerKind``, ``IssuerGroup``). Any other kind is returned as it is."""
    ref = _map(_map(_map(cert).get("spec")).get("issuerRef"))
    kind = _str(ref.get("kind")) or "Issuer"
    group = _str(ref.get("group")) or CERT_MANAGER_GROUP
    return kind, group, _str(ref.get("name")) or ""


def certificate_names(cert: object, issuer: Mapping[str, Any] | None) -> list[Found]:
    """The ``spec.dnsNames`` of a Certificate, each judged with the solver its issuer would
    use. ``issuer`` is the Issuer or ClusterIssuer ``spec.issuerRef`` names (None: not
    found). Validated names carry the issuer's ACME server and account, and the
    Certificate's renewal time and expiry."""
    if not isinstance(cert, Mapping):
        return []
    origin = _origin(cert, "Certificate")
    names = _strings(_map(cert.get("spec")).get("dnsNames"))
    found = _unique(f for raw in names if (f := _finding(raw, origin)) is not None)
    kind, group, _ = issuer_ref(cert)
    issuer_skip: Skip | None = None
    acme: Mapping[str, Any] = _EMPTY
    if group != CERT_MANAGER_GROUP:
        issuer_skip = Skip.NOT_ACME  # an external issuer: not cert-manager's ACME issuer
    elif kind not in ("Issuer", "ClusterIssuer") or not isinstance(issuer, Mapping):
        # pkg/issuer/helper.go GetGenericIssuer refuses any other kind.
        issuer_skip = Skip.ISSUER_NOT_FOUND
    elif isinstance(acme_spec := _map(issuer.get("spec")).get("acme"), Mapping):
        acme = acme_spec
    else:
        issuer_skip = Skip.NOT_ACME  # a CA, Vault, self-signed... issuer
    labels = _labels(_map(cert.get("metadata")).get("labels"))
    status = _map(cert.get("status"))
    server = _str(acme.get("server"))
    account = _str(_map(_map(_map(issuer).get("status")).get("acme")).get("uri"))
    renewal, not_after = _rfc3339(status.get("renewalTime")), _rfc3339(status.get("notAfter"))
    solvers = _list(acme.get("solvers"))
    out: list[Found] = []
    for item in found:
        if item.skipped is not None:
            out.append(item)
        elif issuer_skip is not None:
            out.append(Found(item.name, origin, issuer_skip))
        else:
            solver = _pick_solver(item.name, labels, solvers)
            if solver is None:
                out.append(Found(item.name, origin, Skip.NO_SOLVER))
            elif solver != "http01":
                out.append(Found(item.name, origin, Skip.NOT_HTTP01))
            else:
                out.append(Found(item.name, origin, None, server, account, renewal, not_after))
    return out


def _pick_solver(name: str, labels: Mapping[str, str], solvers: list[Any]) -> str | None:
    """The challenge type (``http01``/``dns01``) of the solver cert-manager picks for
    ``name``, or None when none can be used.

    A rewrite of cert-manager's ``solverpicker.Pick`` (``pkg/util/solverpicker/
    solverpicker.go``, called from ``pkg/controller/acmeorders/util.go``
    ``partialChallengeSpecForAuthorization``) with its selectors
    (``pkg/controller/acmeorders/selectors``: ``labels.go``, ``dns_names.go``,
    ``dns_zones.go``). The labels are the Order's, which are the Certificate's (copied to
    the CertificateRequest, then to the Order). In list order:

    * a solver with neither ``http01`` nor ``dns01`` is never usable (Let's Encrypt
      offers both challenges for a non-wildcard name);
    * a solver without ``selector`` is taken only when none is taken yet;
    * a solver with a selector must match on all three: ``matchLabels`` (all present
      and equal), ``dnsNames`` (the name listed, exactly), ``dnsZones`` (the name is the
      zone or below it, ASCII case-insensitively); an empty criterion matches with
      weight 0;
    * a matching solver replaces the one taken when it is more specific: a ``dnsNames``
      match beats none; then more zone labels matched; then more labels matched; a tie
      keeps the earlier solver.

    A solver with both ``http01`` and ``dns01`` (cert-manager's webhook refuses it) gets
    whichever the server lists first, and Let's Encrypt shuffles that list: it is read
    as ``http01`` here, so that the name is checked.
    """
    taken: str | None = None
    taken_labels = taken_names = taken_zones = 0
    for raw in solvers:
        solver = _map(raw)
        if isinstance(solver.get("http01"), Mapping):
            kind = "http01"
        elif isinstance(solver.get("dns01"), Mapping):
            kind = "dns01"
        else:
            continue
        selector = solver.get("selector")
        if not isinstance(selector, Mapping):
            if taken is None:
                taken = kind
            continue
        labels_ok, n_labels = _match_labels(_labels(selector.get("matchLabels")), labels)
        names = _strings(selector.get("dnsNames"))
        names_ok, n_names = (True, 0) if not names else (name in names, int(name in names))
        zones_ok, n_zones = _match_zones(_strings(selector.get("dnsZones")), name)
        if not (labels_ok and names_ok and zones_ok):
            continue
        better = taken is None or _more_specific(
            (n_names, n_zones, n_labels), (taken_names, taken_zones, taken_labels)
        )
        if better:
            taken, taken_labels, taken_names, taken_zones = kind, n_labels, n_names, n_zones
    return taken


def _more_specific(new: tuple[int, int, int], old: tuple[int, int, int]) -> bool:
    """Pick's ranking of a matching solver (dnsNames, dnsZones, labels weights) against
    the one taken: does it replace it?"""
    new_names, new_zones, new_labels = new
    old_names, old_zones, old_labels = old
    if (new_names > 0) != (old_names > 0):
        return new_names > 0
    # Both or neither match dnsNames: the zones decide (more labels matched wins; with
    # one side matching no zone that is the zoned side), then the labels.
    if new_zones != old_zones:
        return new_zones > old_zones
    return new_labels > old_labels


def _match_labels(required: Mapping[str, str], labels: Mapping[str, str]) -> tuple[bool, int]:
    if not required:
        return True, 0
    if all(labels.get(key) == value for key, value in required.items()):
        return True, len(required)
    return False, 0


def _match_zones(zones: list[str], name: str) -> tuple[bool, int]:
    """dns_zones.go: the most labels of a zone the name is in (a zone matches when all of
    its labels match the name's rightmost ones, as miekg/dns ``CompareDomainName`` and
    ``CountLabel`` count them); no zones: a match of weight 0."""
    if not zones:
        return True, 0
    best = 0
    for zone in zones:
        common = _common_labels(zone, name)
        if common == _count_labels(zone) and common > best:
            best = common
    return best > 0, best


# miekg/dns labels.go, rewritten: label boundaries honour backslash-escaped dots, the last
# label keeps a trailing dot (so "example.com." shares no label with "a.example.com"),
# and labels compare ASCII case-insensitively.


def _next_label(s: str, offset: int) -> tuple[int, bool]:
    if not s:
        return 0, True
    i = offset
    while i < len(s) - 1:
        if s[i] == ".":
            j = i - 1
            while j >= 0 and s[j] == "\\":
                j -= 1
            if (i - j) % 2 == 1:  # an even number of backslashes: a real dot
                return i + 1, False
        i += 1
    return i + 1, True


def _label_starts(s: str) -> list[int]:
    starts = [0]
    offset = 0
    while True:
        offset, end = _next_label(s, offset)
        if end:
            return starts
        starts.append(offset)


def _count_labels(s: str) -> int:
    if s == ".":
        return 0
    count, offset = 0, 0
    while True:
        offset, end = _next_label(s, offset)
        count += 1
        if end:
            return count


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _common_labels(a: str, b: str) -> int:
    if a == "." or b == ".":
        return 0
    la, lb = _label_starts(a), _label_starts(b)
    ja, jb = len(la) - 1, len(lb) - 1

    def same(x: str, y: str) -> bool:
        return x.translate(_ASCII_LOWER) == y.translate(_ASCII_LOWER)

    if not same(a[la[ja] :], b[lb[jb] :]):
        return 0
    common = 1
    while ja >= 1 and jb >= 1:
        if not same(a[la[ja - 1] : la[ja]], b[lb[jb - 1] : lb[jb]]):
            break
        common += 1
        ja -= 1
        jb -= 1
    return common


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(value: object) -> float | None:
    """An RFC 3339 time (``metav1.Time``) as Unix seconds; None if it is not one."""
    if not isinstance(value, str) or (m := _RFC3339.fullmatch(value)) is None:
        return None
    date, clock, fraction, offset = m.groups()
    zone = "+00:00" if offset in ("Z", "z") else offset
    text = f"{date}T{clock}{zone}"
    try:
        seconds = datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        return None
    return seconds + float(f"0.{fraction}") if fraction else seconds


def origin_json(origin: Origin, acme_server: str = "") -> dict[str, str]:
    """Where a name was found, as ``/domains/<name>`` and ``check --json`` give it;
    ``acme_server``: :func:`acme_server_label` of a Certificate's issuer ("" otherwise)."""
    return {
        "source": origin.source,
        "kind": origin.kind,
        "namespace": origin.namespace,
        "name": origin.name,
        "acme_server": acme_server,
    }


def acme_server_label(url: str | None) -> str:
    """``letsencrypt`` or ``letsencrypt-staging`` for Let's Encrypt's directories,
    ``other`` for any other ACME server, ``""`` for none."""
    if not url:
        return ""
    m = re.match(r"^https://([^/:?#]+)(?::443)?(?:[/?#]|$)", url.strip(), re.IGNORECASE)
    if m is None:
        return "other"
    return _LETSENCRYPT_HOSTS.get(m.group(1).lower().removesuffix("."), "other")


# ----------------------------------------------------------------------- HTTPRoute

_ROUTE_PROTOCOLS = ("HTTP", "HTTPS")


def httproute_names(
    route: object, gateway: Callable[[str, str], Mapping[str, Any] | None]
) -> list[Found]:
    """The hostnames an HTTPRoute is served for: its ``spec.hostnames`` intersected with
    the hostname of each listener of its parent Gateways that accepts it.

    ``gateway(namespace, name)`` returns a Gateway object or None. A listener accepts the
    route when the parentRef selects it (``sectionName``: its name; ``port``: its port),
    its protocol is HTTP or HTTPS, ``allowedRoutes.namespaces.from`` lets the route's
    namespace in (``Same``, the default; ``All``; ``Selector``: assumed, see the module
    docstring) and ``allowedRoutes.kinds``, if set, lists HTTPRoute; and when both it and
    the route name hosts, at least one intersects. A route hostname no accepting listener
    serves is skipped ``no_listener`` when a parent Gateway was found, else
    ``not_attached``; an intersection that is a wildcard is skipped ``wildcard``.
    """
    if not isinstance(route, Mapping):
        return []
    origin = _origin(route, "HTTPRoute")
    spec = _map(route.get("spec"))
    hostnames = [h for raw in _strings(spec.get("hostnames")) if (h := _hostname(raw))]
    hostnames = list(dict.fromkeys(hostnames))
    candidates: list[str | None] = [*hostnames] or [None]
    intersected: list[str] = []
    served: set[str] = set()
    attached = False
    for ref in _list(spec.get("parentRefs")):
        parent = _parent(_map(ref), origin.namespace)
        if parent is None:
            continue
        namespace, name, section, port = parent
        found = gateway(namespace, name)
        if not isinstance(found, Mapping):
            continue
        attached = True
        for raw in _list(_map(found.get("spec")).get("listeners")):
            listener = _map(raw)
            if not _selected(listener, section, port) or not _admits(
                listener, namespace, origin.namespace
            ):
                continue
            listener_host = _hostname(_str(listener.get("hostname")) or "")
            # A route or listener without hostnames matches any (the "*" of hostnames.md);
            # with neither there is no name to intersect.
            for route_host in candidates:
                common = _intersect(listener_host, route_host)
                if common is not None:
                    intersected.append(common)
                    if route_host is not None:
                        served.add(route_host)
    found_names = [f for h in intersected if (f := _finding(h, origin)) is not None]
    reason = Skip.NO_LISTENER if attached else Skip.NOT_ATTACHED
    for host in hostnames:
        if host not in served and (f := _finding(host, origin)) is not None:
            found_names.append(f if f.skipped is not None else Found(f.name, origin, reason))
    return _unique(found_names)


def _hostname(raw: str) -> str | None:
    """A Gateway API hostname as compared here: lowercase, no root dot; None if blank."""
    text = raw.strip().lower().removesuffix(".")
    return text or None


def _parent(
    ref: Mapping[str, Any], route_namespace: str
) -> tuple[str, str, str | None, int | None] | None:
    """A parentRef to a Gateway as (namespace, name, sectionName, port); None for any
    other parent. shared_types.go ParentReference: group defaults to
    gateway.networking.k8s.io (an explicit "" is the core group), kind to Gateway,
    namespace to the route's."""
    group = _str(ref.get("group"))
    kind = _str(ref.get("kind"))
    group = GATEWAY_GROUP if group is None else group
    kind = "Gateway" if kind is None else kind
    name = _str(ref.get("name"))
    if group != GATEWAY_GROUP or kind != "Gateway" or not name:
        return None
    namespace = _str(ref.get("namespace")) or route_namespace
    port = ref.get("port")
    return (
        namespace,
        name,
        _str(ref.get("sectionName")) or None,
        port if isinstance(port, int) and not isinstance(port, bool) else None,
    )


def _selected(listener: Mapping[str, Any], section: str | None, port: int | None) -> bool:
    """Does the parentRef select this listener? (ParentReference SectionName, Port: both
    must match when both are set.)"""
    if section is not None and listener.get("name") != section:
        return False
    if port is not None:
        value = listener.get("port")
        if isinstance(value, bool) or value != port:
            return False
    return True


def _admits(listener: Mapping[str, Any], gateway_namespace: str, route_namespace: str) -> bool:
    """gateway_types.go Listener.Protocol and AllowedRoutes: an HTTP or HTTPS listener
    that lets an HTTPRoute from ``route_namespace`` attach."""
    if listener.get("protocol") not in _ROUTE_PROTOCOLS:
        return False
    allowed = _map(listener.get("allowedRoutes"))
    from_ = _str(_map(allowed.get("namespaces")).get("from")) or "Same"
    if from_ == "Same":
        if gateway_namespace != route_namespace:
            return False
    elif from_ not in ("All", "Selector"):
        return False  # "None", or a value the API does not know
    kinds = [k for k in _list(allowed.get("kinds")) if isinstance(k, Mapping)]
    if kinds:
        # RouteGroupKind: group defaults to gateway.networking.k8s.io. Unset or empty,
        # the protocol decides, and HTTP and HTTPS listeners take HTTPRoutes.
        return any(
            k.get("kind") == "HTTPRoute" and _str(k.get("group")) in (None, GATEWAY_GROUP)
            for k in kinds
        )
    return True


def _intersect(listener: str | None, route: str | None) -> str | None:
    """The intersected hostname of a listener's and a route's (None: any), or None when
    they do not intersect or both match any name (concepts/hostnames.md, "Hostname
    Intersection"; a wildcard matches one or more labels, never the bare suffix)."""
    if listener is None or route is None:
        return route if listener is None else listener
    listener_wild, route_wild = listener.startswith("*."), route.startswith("*.")
    if not listener_wild and not route_wild:
        return listener if listener == route else None
    if listener_wild and not route_wild:
        return route if _below(route, listener[1:]) else None
    if route_wild and not listener_wild:
        return listener if _below(listener, route[1:]) else None
    # Both wildcards: they overlap when one suffix lies within the other; the narrower
    # wildcard is the intersection.
    if route[1:] == listener[1:] or _below(route[2:], listener[1:]):
        return route
    if _below(listener[2:], route[1:]):
        return listener
    return None


def _below(name: str, suffix: str) -> bool:
    """Is ``name`` one or more labels below ``suffix`` (which starts with a dot)?"""
    return len(name) > len(suffix) and name.endswith(suffix)
