"""The names Ingresses, cert-manager Certificates and Gateway API HTTPRoutes put up for
HTTP-01 validation (exporter.discovery.kinds): every rule, on objects shaped as the API
returns them, and on hostile ones (wrong types everywhere: nothing raises)."""

from __future__ import annotations

import ast
import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from exporter.discovery import kinds
from exporter.discovery.kinds import (
    Found,
    Origin,
    Skip,
    acme_server_label,
    certificate_names,
    httproute_names,
    ingress_names,
    issuer_ref,
)
from tests.kubeobjects import ingress

LE = "https://acme-v02.api.letsencrypt.org/directory"
LE_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/123456789"

# ------------------------------------------------------------------ object builders


def certificate(
    dns_names: list[Any] | None = None,
    *,
    issuer: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    common_name: str | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "secretName": "web-tls",
        "issuerRef": issuer if issuer is not None else {"name": "letsencrypt"},
    }
    if dns_names is not None:
        spec["dnsNames"] = dns_names
    if common_name is not None:
        spec["commonName"] = common_name
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "shop", "labels": labels or {}},
        "spec": spec,
        "status": status
        if status is not None
        else {
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
            "notBefore": "2026-01-01T00:00:00Z",
            "notAfter": "2026-04-01T00:00:00Z",
            "renewalTime": "2026-03-02T00:00:00Z",
            "revision": 3,
        },
    }


def http01() -> dict[str, Any]:
    return {"http01": {"ingress": {"ingressClassName": "nginx"}}}


def dns01() -> dict[str, Any]:
    return {"dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "cf", "key": "token"}}}}


def solver(kind: str, **selector: Any) -> dict[str, Any]:
    body = http01() if kind == "http01" else dns01()
    if selector:
        body["selector"] = selector
    return body


def acme_issuer(
    solvers: Any = None, *, server: str = LE, kind: str = "ClusterIssuer", uri: str = ACCOUNT
) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": kind,
        "metadata": {"name": "letsencrypt"},
        "spec": {
            "acme": {
                "server": server,
                "email": "ops@example.com",
                "privateKeySecretRef": {"name": "letsencrypt-account"},
                "solvers": [http01()] if solvers is None else solvers,
            }
        },
        "status": {
            "acme": {"uri": uri, "lastRegisteredEmail": "ops@example.com"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def gateway_obj(
    listeners: list[dict[str, Any]], *, namespace: str = "infra", name: str = "public"
) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gatewayClassName": "envoy", "listeners": listeners},
    }


def listener(
    name: str = "http",
    hostname: str | None = None,
    *,
    port: int = 80,
    protocol: str = "HTTP",
    allowed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "port": port, "protocol": protocol}
    if hostname is not None:
        body["hostname"] = hostname
    body["allowedRoutes"] = allowed if allowed is not None else {"namespaces": {"from": "All"}}
    return body


def route(
    hostnames: list[Any] | None,
    parents: list[dict[str, Any]] | None = None,
    *,
    namespace: str = "shop",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "parentRefs": parents
        if parents is not None
        else [{"name": "public", "namespace": "infra"}],
        "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}],
    }
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": spec,
    }


def gateways(*objs: dict[str, Any]) -> Callable[[str, str], Mapping[str, Any] | None]:
    table = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs}
    return lambda namespace, name: table.get((namespace, name))


def summary(found: list[Found]) -> list[tuple[str, str | None]]:
    return [(f.name, f.skipped) for f in found]


ING = Origin("kubernetes", "Ingress", "shop", "web")
CERT = Origin("kubernetes", "Certificate", "shop", "web")
ROUTE = Origin("kubernetes", "HTTPRoute", "shop", "web")

# ----------------------------------------------------------------------- the module


def test_the_module_is_pure() -> None:
    tree = ast.parse(Path(kinds.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    io = {"socket", "asyncio", "httpx", "httpcore", "anyio", "os", "pathlib", "ssl", "io"}
    assert imported & io == set()
    assert ast.get_docstring(tree)


def test_the_records() -> None:
    assert {s.value for s in Skip} == {
        "wildcard",
        "invalid_name",
        "not_acme",
        "issuer_not_found",
        "not_http01",
        "no_solver",
        "no_listener",
        "not_attached",
    }
    found = Found("a.example.com", ING)
    assert (found.skipped, found.acme_server, found.account_uri) == (None, None, None)
    assert (found.renewal_time, found.not_after) == (None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.name = "b.example.com"  # type: ignore[misc]
    assert not hasattr(found, "__dict__") and not hasattr(ING, "__dict__")  # slots
    as_text: str = Skip.WILDCARD  # a str: metrics labels and comparisons take it as is
    assert as_text == "wildcard" and f"{as_text}" == "wildcard"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Shop.Example.COM.", ("shop.example.com", None)),
        ("  bücher.example ", ("xn--bcher-kva.example", None)),
        ("*.Bücher.example", ("*.xn--bcher-kva.example", Skip.WILDCARD)),
        ("*", ("*", Skip.WILDCARD)),
        ("\ufffd.Example", ("\ufffd.example", Skip.INVALID_NAME)),
        ("", ("", Skip.INVALID_NAME)),
        ("  ", ("", Skip.INVALID_NAME)),
        (".", (".", Skip.INVALID_NAME)),
        (7, ("7", Skip.INVALID_NAME)),
    ],
)
def test_judge_one_name(name: Any, expected: tuple[str, str | None]) -> None:
    origin = Origin("file", "File", "", "/etc/acme-http01-exporter/domains/a.yaml")
    found = kinds.judge(name, origin)
    assert (found.name, found.skipped) == expected
    assert found.origin == origin


# ------------------------------------------------------------------------- Ingress


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            ingress(
                ["www.example.com", "api.example.com"], [["www.example.com", "cdn.example.com"]]
            ),
            [("www.example.com", None), ("api.example.com", None), ("cdn.example.com", None)],
            id="rules-then-tls-each-once",
        ),
        pytest.param(
            ingress(["WWW.Example.COM.", "www.example.com"]),
            [("www.example.com", None)],
            id="normalised-before-deduplicated",
        ),
        pytest.param(
            ingress(["Bücher.example"]), [("xn--bcher-kva.example", None)], id="idn-to-a-label"
        ),
        pytest.param(
            ingress(["*.Example.com", "example.com"], [["*.example.com"]]),
            [("*.example.com", Skip.WILDCARD), ("example.com", None)],
            id="wildcard-skipped",
        ),
        pytest.param(
            ingress(["*.*.Example.com"]),
            [("*.*.example.com", Skip.WILDCARD)],
            id="wildcard-that-cannot-normalise-kept-lowercased",
        ),
        pytest.param(
            ingress(["\ufffd.Example.com", "."]),
            [("\ufffd.example.com", Skip.INVALID_NAME), (".", Skip.INVALID_NAME)],
            id="invalid-name-kept-lowercased",
        ),
        pytest.param(ingress(["", "   "], [[""]]), [], id="blank-hosts-are-absent"),
        pytest.param(ingress([None]), [], id="rule-without-host-catch-all"),
        pytest.param(
            ingress([], [["a.example.com"], []]), [("a.example.com", None)], id="tls-only"
        ),
    ],
)
def test_ingress_names(obj: dict[str, Any], expected: list[tuple[str, str | None]]) -> None:
    found = ingress_names(obj)
    assert summary(found) == expected
    assert all(f.origin == ING for f in found)
    assert all(f.acme_server is None and f.renewal_time is None for f in found)


@pytest.mark.parametrize(
    ("obj", "classes", "cert_manager_only", "kept"),
    [
        (ingress(["a.example.com"]), frozenset(), False, True),
        (ingress(["a.example.com"], class_name="nginx"), frozenset({"nginx"}), False, True),
        (ingress(["a.example.com"], class_name="traefik"), frozenset({"nginx"}), False, False),
        # The annotation counts only without spec.ingressClassName.
        (
            ingress(["a.example.com"], annotations={"kubernetes.io/ingress.class": "nginx"}),
            frozenset({"nginx", "haproxy"}),
            False,
            True,
        ),
        (
            ingress(
                ["a.example.com"],
                class_name="traefik",
                annotations={"kubernetes.io/ingress.class": "nginx"},
            ),
            frozenset({"nginx"}),
            False,
            False,
        ),
        (
            ingress(
                ["a.example.com"],
                class_name="",
                annotations={"kubernetes.io/ingress.class": "nginx"},
            ),
            frozenset({"nginx"}),
            False,
            True,
        ),
        # No class at all: not one of the listed classes.
        (ingress(["a.example.com"]), frozenset({"nginx"}), False, False),
        (
            ingress(["a.example.com"], annotations={"cert-manager.io/cluster-issuer": "le"}),
            frozenset(),
            True,
            True,
        ),
        (
            ingress(["a.example.com"], annotations={"cert-manager.io/issuer": ""}),
            frozenset(),
            True,
            True,
        ),
        (
            ingress(["a.example.com"], annotations={"kubernetes.io/tls-acme": "true"}),
            frozenset(),
            True,
            False,
        ),
        (ingress(["a.example.com"]), frozenset(), True, False),
        (
            ingress(
                ["a.example.com"],
                class_name="nginx",
                annotations={"cert-manager.io/issuer": "le"},
            ),
            frozenset({"nginx"}),
            True,
            True,
        ),
        (
            ingress(
                ["a.example.com"],
                class_name="other",
                annotations={"cert-manager.io/issuer": "le"},
            ),
            frozenset({"nginx"}),
            True,
            False,
        ),
    ],
)
def test_ingress_filters(
    obj: dict[str, Any], classes: frozenset[str], cert_manager_only: bool, kept: bool
) -> None:
    found = ingress_names(obj, classes=classes, cert_manager_only=cert_manager_only)
    assert summary(found) == ([("a.example.com", None)] if kept else [])


@pytest.mark.parametrize(
    "obj",
    [
        None,
        "ingress",
        42,
        ["a.example.com"],
        {},
        {"spec": None},
        {"spec": "rules"},
        {"spec": {"rules": {"host": "a.example.com"}}},
        {"spec": {"rules": ["a.example.com", None, 3]}},
        {"spec": {"rules": [{"host": 5}, {"host": ["a.example.com"]}]}},
        {"spec": {"tls": [{"hosts": "a.example.com"}, "x", {"hosts": [1, None, {}]}]}},
    ],
)
def test_ingress_unreadable_gives_nothing(obj: Any) -> None:
    assert ingress_names(obj) == []
    assert ingress_names(obj, classes=frozenset({"nginx"}), cert_manager_only=True) == []


def test_ingress_wrong_types_around_the_names() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": 3, "namespace": None, "annotations": ["cert-manager.io/issuer"]},
        "spec": {
            "ingressClassName": 7,
            "rules": [{"host": "a.example.com"}, {"host": 1}, "junk"],
            "tls": [{"hosts": ["b.example.com", 2, None]}, {"hosts": None}],
        },
    }
    assert summary(ingress_names(obj)) == [("a.example.com", None), ("b.example.com", None)]
    assert ingress_names(obj)[0].origin == Origin("kubernetes", "Ingress", "", "")
    # Wrong-typed class and annotations are absent: no class, no cert-manager annotation.
    assert ingress_names(obj, classes=frozenset({"7"})) == []
    assert ingress_names(obj, cert_manager_only=True) == []


# --------------------------------------------------------------------- Certificate


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"name": "le"}, ("Issuer", "cert-manager.io", "le")),
        ({"name": "le", "kind": "ClusterIssuer"}, ("ClusterIssuer", "cert-manager.io", "le")),
        ({"name": "le", "kind": "", "group": ""}, ("Issuer", "cert-manager.io", "le")),
        (
            {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"},
            ("AWSPCAClusterIssuer", "awspca.cert-manager.io", "pca"),
        ),
        ({"name": 5, "kind": ["Issuer"], "group": None}, ("Issuer", "cert-manager.io", "")),
        ({}, ("Issuer", "cert-manager.io", "")),
        ("le", ("Issuer", "cert-manager.io", "")),
    ],
)
def test_issuer_ref(ref: Any, expected: tuple[str, str, str]) -> None:
    assert issuer_ref(certificate(["a.example.com"], issuer=ref)) == expected


@pytest.mark.parametrize("cert", [None, [], "cert", 1, {"spec": []}, {"spec": {"issuerRef": 1}}])
def test_issuer_ref_of_unreadable(cert: Any) -> None:
    assert issuer_ref(cert) == ("Issuer", "cert-manager.io", "")


def test_certificate_validated_names_carry_issuer_and_times() -> None:
    found = certificate_names(
        certificate(["www.example.com", "Example.COM"]), acme_issuer([http01()])
    )
    assert found == [
        Found(
            "www.example.com",
            CERT,
            None,
            LE,
            ACCOUNT,
            1772409600.0,  # 2026-03-02T00:00:00Z
            1775001600.0,  # 2026-04-01T00:00:00Z
        ),
        Found("example.com", CERT, None, LE, ACCOUNT, 1772409600.0, 1775001600.0),
    ]


def test_certificate_without_status_or_account() -> None:
    issuer = acme_issuer([http01()], server=LE_STAGING)
    del issuer["status"]
    [found] = certificate_names(certificate(["a.example.com"], status={}), issuer)
    assert (found.skipped, found.acme_server, found.account_uri) == (None, LE_STAGING, None)
    assert (found.renewal_time, found.not_after) == (None, None)


@pytest.mark.parametrize(
    ("ref", "issuer", "reason"),
    [
        ({"name": "le", "kind": "ClusterIssuer"}, None, Skip.ISSUER_NOT_FOUND),
        ({"name": "le", "kind": "Issuer"}, "not-an-object", Skip.ISSUER_NOT_FOUND),
        # cert-manager refuses any other kind in its own group, issuer or not.
        ({"name": "le", "kind": "Issue"}, acme_issuer(), Skip.ISSUER_NOT_FOUND),
        (
            {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"},
            acme_issuer(),
            Skip.NOT_ACME,
        ),
        (
            {"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"},
            None,
            Skip.NOT_ACME,
        ),
        (
            {"name": "ca"},
            {"kind": "Issuer", "spec": {"ca": {"secretName": "ca-key-pair"}}},
            Skip.NOT_ACME,
        ),
        ({"name": "x"}, {"kind": "Issuer", "spec": {"acme": None}}, Skip.NOT_ACME),
        ({"name": "x"}, {"kind": "Issuer", "spec": {"acme": "yes"}}, Skip.NOT_ACME),
        ({"name": "x"}, {"kind": "Issuer", "spec": None}, Skip.NOT_ACME),
        ({"name": "x"}, {}, Skip.NOT_ACME),
    ],
)
def test_certificate_issuer_reasons(ref: dict[str, Any], issuer: Any, reason: Skip) -> None:
    found = certificate_names(certificate(["a.example.com", "b.example.com"], issuer=ref), issuer)
    assert summary(found) == [("a.example.com", reason), ("b.example.com", reason)]
    assert all(f.acme_server is None and f.not_after is None for f in found)


@pytest.mark.parametrize("issuer", [None, acme_issuer([dns01()]), acme_issuer([]), acme_issuer()])
def test_certificate_wildcard_and_invalid_names_win(issuer: dict[str, Any] | None) -> None:
    cert = certificate(["*.example.com", "A\u2028B.example.com", "\u3002"])
    found = certificate_names(cert, issuer)
    assert summary(found) == [
        ("*.example.com", Skip.WILDCARD),
        ("a\u2028b.example.com", Skip.INVALID_NAME),
        ("\u3002", Skip.INVALID_NAME),
    ]


def test_certificate_common_name_adds_no_name() -> None:
    """cert-manager fails a request whose commonName is not among its dnsNames, so the
    common name is never a name of its own in an order."""
    issuer = acme_issuer([http01()])
    both = certificate(["example.com", "www.example.com"], common_name="example.com")
    assert summary(certificate_names(both, issuer)) == [
        ("example.com", None),
        ("www.example.com", None),
    ]
    apart = certificate(["www.example.com"], common_name="example.com")
    assert summary(certificate_names(apart, issuer)) == [("www.example.com", None)]
    assert certificate_names(certificate(None, common_name="example.com"), issuer) == []


def test_certificate_names_each_once_in_order() -> None:
    cert = certificate(["b.example.com", "A.example.com", "b.example.com.", 7, None, ""])
    assert summary(certificate_names(cert, acme_issuer())) == [
        ("b.example.com", None),
        ("a.example.com", None),
    ]


# ---- the solver cert-manager picks (pkg/util/solverpicker/solverpicker.go)

NAME = "a.sub.example.com"


@pytest.mark.parametrize(
    ("solvers", "labels", "expected"),
    [
        pytest.param([http01()], {}, None, id="one-http01"),
        pytest.param([dns01()], {}, Skip.NOT_HTTP01, id="one-dns01"),
        pytest.param([], {}, Skip.NO_SOLVER, id="no-solvers"),
        pytest.param(None, {}, Skip.NO_SOLVER, id="solvers-null"),
        pytest.param({"http01": {}}, {}, Skip.NO_SOLVER, id="solvers-not-a-list"),
        pytest.param([{}], {}, Skip.NO_SOLVER, id="solver-with-no-type-is-unusable"),
        pytest.param(
            [{"selector": {}}, {"http01": None}, {"dns01": "x"}, "junk", 3],
            {},
            Skip.NO_SOLVER,
            id="only-unusable-solvers",
        ),
        pytest.param([{"http01": {}}], {}, None, id="empty-http01-is-set"),
        pytest.param(
            [{**http01(), **dns01()}], {}, None, id="both-types-in-one-solver-read-as-http01"
        ),
        # Solvers without a selector: the first one usable.
        pytest.param([http01(), dns01()], {}, None, id="first-match-all-wins"),
        pytest.param([dns01(), http01()], {}, Skip.NOT_HTTP01, id="first-match-all-wins-dns"),
        pytest.param([{}, dns01(), http01()], {}, Skip.NOT_HTTP01, id="unusable-then-first"),
        pytest.param(
            [{"selector": None, **http01()}, dns01()], {}, None, id="null-selector-is-no-selector"
        ),
        pytest.param(
            [{"selector": ["example.com"], **dns01()}, http01()],
            {},
            Skip.NOT_HTTP01,
            id="wrong-typed-selector-is-no-selector",
        ),
        # An empty selector matches with weight 0: it ties, and the earlier one stays.
        pytest.param(
            [solver("http01"), {"selector": {}, **dns01()}], {}, None, id="empty-selector-ties"
        ),
        pytest.param(
            [{"selector": {}, **dns01()}, solver("http01")],
            {},
            Skip.NOT_HTTP01,
            id="empty-selector-first-stays",
        ),
        # A selector that matches beats a match-all one, before or after it.
        pytest.param(
            [solver("http01"), solver("dns01", dnsZones=["example.com"])],
            {},
            Skip.NOT_HTTP01,
            id="zone-beats-match-all-after",
        ),
        pytest.param(
            [solver("dns01", dnsZones=["example.com"]), solver("http01")],
            {},
            Skip.NOT_HTTP01,
            id="match-all-never-replaces",
        ),
        pytest.param(
            [solver("dns01", dnsZones=["example.org"]), solver("http01")],
            {},
            None,
            id="non-matching-zone-falls-back",
        ),
        pytest.param(
            [solver("dns01", dnsZones=["example.org"])],
            {},
            Skip.NO_SOLVER,
            id="nothing-matches",
        ),
        # dnsNames come first.
        pytest.param(
            [solver("dns01", dnsZones=["sub.example.com"]), solver("http01", dnsNames=[NAME])],
            {},
            None,
            id="dns-name-beats-zone",
        ),
        pytest.param(
            [solver("http01", dnsNames=[NAME]), solver("dns01", dnsZones=["sub.example.com"])],
            {},
            None,
            id="dns-name-stays-over-zone",
        ),
        pytest.param(
            [
                solver("http01", dnsNames=[NAME]),
                solver("dns01", dnsZones=["sub.example.com"], matchLabels={"a": "1", "b": "2"}),
            ],
            {"a": "1", "b": "2"},
            None,
            id="dns-name-beats-zone-and-labels",
        ),
        pytest.param(
            [solver("http01", dnsNames=["A.sub.example.com"]), solver("dns01")],
            {},
            Skip.NOT_HTTP01,
            id="dns-names-compare-exactly",
        ),
        pytest.param(
            [
                solver("http01", dnsNames=["b.example.com", NAME]),
                solver("dns01", dnsNames=[NAME]),
            ],
            {},
            None,
            id="several-dns-names-count-once",
        ),
        # Both match dnsNames: zones, then labels.
        pytest.param(
            [
                solver("http01", dnsNames=[NAME], dnsZones=["example.com"]),
                solver("dns01", dnsNames=[NAME], dnsZones=["sub.example.com"]),
            ],
            {},
            Skip.NOT_HTTP01,
            id="names-tie-more-zone-labels",
        ),
        pytest.param(
            [
                solver("http01", dnsNames=[NAME], dnsZones=["sub.example.com"]),
                solver("dns01", dnsNames=[NAME], dnsZones=["example.com"]),
            ],
            {},
            None,
            id="names-tie-fewer-zone-labels",
        ),
        pytest.param(
            [
                solver("http01", dnsNames=[NAME]),
                solver("dns01", dnsNames=[NAME], matchLabels={"team": "web"}),
            ],
            {"team": "web"},
            Skip.NOT_HTTP01,
            id="names-tie-more-labels",
        ),
        pytest.param(
            [
                solver("http01", dnsNames=[NAME], matchLabels={"team": "web"}),
                solver("dns01", dnsNames=[NAME], matchLabels={"tier": "1"}),
            ],
            {"team": "web", "tier": "1"},
            None,
            id="names-tie-labels-tie-first-stays",
        ),
        # Neither matches dnsNames: zones (most labels), then labels.
        pytest.param(
            [solver("http01", dnsZones=["example.com"]), solver("dns01", dnsZones=["com"])],
            {},
            None,
            id="longer-zone-stays",
        ),
        pytest.param(
            [solver("dns01", dnsZones=["com"]), solver("http01", dnsZones=["example.com"])],
            {},
            None,
            id="longer-zone-replaces",
        ),
        pytest.param(
            [
                solver("dns01", dnsZones=["example.com"]),
                solver("http01", dnsZones=["example.com"], matchLabels={"team": "web"}),
            ],
            {"team": "web"},
            None,
            id="zones-tie-more-labels",
        ),
        pytest.param(
            [
                solver("dns01", dnsZones=["example.com"]),
                solver("http01", dnsZones=["example.com"], matchLabels={"team": "web"}),
            ],
            {"team": "api"},
            Skip.NOT_HTTP01,
            id="labels-must-all-match",
        ),
        pytest.param(
            [
                solver("http01", dnsZones=["example.com", "sub.example.com"]),
                solver("dns01", dnsZones=["sub.example.com"]),
            ],
            {},
            None,
            id="best-zone-of-a-solver-counts",
        ),
        pytest.param(
            [solver("dns01", matchLabels={"a": "1"}), solver("http01", dnsZones=["com"])],
            {"a": "1"},
            None,
            id="a-zone-beats-labels",
        ),
        pytest.param(
            [
                solver("dns01", matchLabels={"a": "1"}),
                solver("http01", matchLabels={"a": "1", "b": "2"}),
            ],
            {"a": "1", "b": "2"},
            None,
            id="more-labels-wins",
        ),
        pytest.param(
            [solver("http01", matchLabels={"a": "1"}), solver("dns01", matchLabels={"a": "2"})],
            {"a": "2"},
            Skip.NOT_HTTP01,
            id="label-value-must-equal",
        ),
        pytest.param(
            [solver("http01", matchLabels={"a": 1}), solver("dns01", matchLabels={"b": "2"})],
            {"b": "2"},
            Skip.NOT_HTTP01,
            id="wrong-typed-label-value-is-absent",
        ),
        # dnsZones as miekg/dns compares names.
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=["EXAMPLE.Com"])],
            {},
            None,
            id="zone-case-insensitive",
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=[NAME])], {}, None, id="zone-is-the-name"
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=["ample.com"])],
            {},
            Skip.NOT_HTTP01,
            id="zone-on-label-boundary",
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=["example.com."])],
            {},
            Skip.NOT_HTTP01,
            id="zone-with-root-dot-never-matches",
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=["."])],
            {},
            Skip.NOT_HTTP01,
            id="root-zone-never-matches",
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=[""])],
            {},
            Skip.NOT_HTTP01,
            id="empty-zone-never-matches",
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=["x.a.sub.example.com"])],
            {},
            Skip.NOT_HTTP01,
            id="zone-below-the-name",
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=["sub\\.example.com"])],
            {},
            Skip.NOT_HTTP01,
            id="escaped-dot-is-inside-a-label",
        ),
        pytest.param(
            [solver("dns01"), solver("http01", dnsZones=[5, None, "example.com"])],
            {},
            None,
            id="wrong-typed-zones-skipped",
        ),
    ],
)
def test_certificate_solver_choice(
    solvers: Any, labels: dict[str, str], expected: Skip | None
) -> None:
    issuer = acme_issuer()
    issuer["spec"]["acme"]["solvers"] = solvers
    [found] = certificate_names(certificate([NAME], labels=labels), issuer)
    assert found.skipped == expected
    if expected is None:
        assert (found.acme_server, found.account_uri) == (LE, ACCOUNT)
    else:
        assert (found.acme_server, found.account_uri, found.not_after) == (None, None, None)


def test_certificate_zone_labels_honour_escaped_dots() -> None:
    """miekg/dns splits labels at unescaped dots only: ``x\\.example.com`` has two labels,
    and the zone ``example.com`` does not hold it (Let's Encrypt refuses such a name, but
    the pick is cert-manager's)."""
    issuer = acme_issuer([solver("http01"), solver("dns01", dnsZones=["example.com"])])
    escaped, plain = certificate(["x\\.example.com"]), certificate(["x.example.com"])
    assert summary(certificate_names(escaped, issuer)) == [("x\\.example.com", None)]
    assert summary(certificate_names(plain, issuer)) == [("x.example.com", Skip.NOT_HTTP01)]


def test_certificate_solver_chosen_per_name() -> None:
    issuer = acme_issuer(
        [
            solver("dns01"),
            solver("http01", dnsNames=["www.example.com"]),
            solver("http01", dnsZones=["shop.example.org"]),
        ]
    )
    cert = certificate(["example.com", "www.example.com", "a.shop.example.org", "example.org"])
    assert summary(certificate_names(cert, issuer)) == [
        ("example.com", Skip.NOT_HTTP01),
        ("www.example.com", None),
        ("a.shop.example.org", None),
        ("example.org", Skip.NOT_HTTP01),
    ]


def test_certificate_labels_are_the_certificates() -> None:
    issuer = acme_issuer([solver("dns01"), solver("http01", matchLabels={"acme": "http"})])
    with_label = certificate(["a.example.com"], labels={"acme": "http", "app": "web"})
    without = certificate(["a.example.com"], labels={"app": "web"})
    assert certificate_names(with_label, issuer)[0].skipped is None
    assert certificate_names(without, issuer)[0].skipped == Skip.NOT_HTTP01


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T00:00:00Z", 1772409600.0),
        ("2026-03-02t00:00:00z", 1772409600.0),
        ("2026-03-02T01:30:00+01:30", 1772409600.0),
        ("2026-03-01T22:00:00-02:00", 1772409600.0),
        ("2026-03-02T00:00:00.25Z", 1772409600.25),
        ("2026-03-02T00:00:00.123456789Z", 1772409600.123456789),
        ("2026-03-02", None),
        ("2026-03-02 00:00:00Z", None),
        ("2026-03-02T00:00:00", None),  # no zone: not RFC 3339
        ("2026-13-02T00:00:00Z", None),
        ("2026-03-02T24:00:00Z", None),
        ("2026-02-30T00:00:00Z", None),
        ("0000-01-01T00:00:00Z", None),
        ("9999-12-31T23:59:59-23:59", 253402387139.0),  # past year 9999 in UTC: still read
        ("2026-03-02T00:00:00+25:00", None),
        ("", None),
        (1772409600, None),
        (None, None),
        (["2026-03-02T00:00:00Z"], None),
    ],
)
def test_certificate_times(value: Any, expected: float | None) -> None:
    status = {"renewalTime": value, "notAfter": value}
    [found] = certificate_names(certificate(["a.example.com"], status=status), acme_issuer())
    if expected is None:
        assert (found.renewal_time, found.not_after) == (None, None)
    else:
        assert found.renewal_time == pytest.approx(expected, abs=1e-6)
        assert found.not_after == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "cert",
    [
        None,
        "cert",
        [],
        {},
        {"spec": None},
        {"spec": {"dnsNames": "a.example.com"}},
        {"spec": {"dnsNames": [None, 1, {"name": "a.example.com"}]}},
        certificate([]),
        certificate(None),
    ],
)
def test_certificate_unreadable_gives_nothing(cert: Any) -> None:
    assert certificate_names(cert, acme_issuer()) == []
    assert certificate_names(cert, None) == []


def test_certificate_wrong_types_around_the_names() -> None:
    cert: dict[str, Any] = {
        "metadata": {"name": ["web"], "namespace": 1, "labels": "app=web"},
        "spec": {"dnsNames": ["a.example.com"], "issuerRef": {"name": "le", "kind": 3}},
        "status": ["Ready"],
    }
    issuer: dict[str, Any] = {
        "spec": {"acme": {"server": 443, "solvers": [http01()]}},
        "status": {"acme": {"uri": ["x"]}},
    }
    assert certificate_names(cert, issuer) == [
        Found("a.example.com", Origin("kubernetes", "Certificate", "", ""))
    ]


@pytest.mark.parametrize(
    ("url", "label"),
    [
        (LE, "letsencrypt"),
        (LE_STAGING, "letsencrypt-staging"),
        ("https://ACME-V02.api.letsencrypt.org/directory", "letsencrypt"),
        ("https://acme-v02.api.letsencrypt.org:443/directory", "letsencrypt"),
        ("https://acme-v02.api.letsencrypt.org", "letsencrypt"),
        ("https://acme-v01.api.letsencrypt.org/directory", "other"),
        ("https://acme-v02.api.letsencrypt.org.evil.example/directory", "other"),
        ("https://evil.example/acme-v02.api.letsencrypt.org/directory", "other"),
        ("http://acme-v02.api.letsencrypt.org/directory", "other"),
        ("https://acme.zerossl.com/v2/DV90", "other"),
        ("https://127.0.0.1:14000/dir", "other"),
        ("not a url", "other"),
        ("", ""),
        (None, ""),
    ],
)
def test_acme_server_label(url: str | None, label: str) -> None:
    assert acme_server_label(url) == label


# ----------------------------------------------------------------------- HTTPRoute


@pytest.mark.parametrize(
    ("listener_host", "route_hosts", "expected"),
    [
        # site/content/en/docs/concepts/hostnames.md, "Hostname Intersection".
        ("www.example.com", ["www.example.com"], [("www.example.com", None)]),
        ("*.example.com", ["www.example.com"], [("www.example.com", None)]),
        ("*.example.com", ["sub.domain.example.com"], [("sub.domain.example.com", None)]),
        ("www.example.com", ["*.example.com"], [("www.example.com", None)]),
        ("sub.domain.example.com", ["*.example.com"], [("sub.domain.example.com", None)]),
        ("*.example.com", ["*.example.com"], [("*.example.com", Skip.WILDCARD)]),
        ("*.com", ["*.example.com"], [("*.example.com", Skip.WILDCARD)]),
        ("*.example.com", ["*.com"], [("*.example.com", Skip.WILDCARD)]),
        ("*.com", ["example.com"], [("example.com", None)]),
        (None, ["www.example.com"], [("www.example.com", None)]),
        (None, ["*.example.com"], [("*.example.com", Skip.WILDCARD)]),
        ("www.example.com", None, [("www.example.com", None)]),
        ("www.example.com", [], [("www.example.com", None)]),
        ("*.example.com", None, [("*.example.com", Skip.WILDCARD)]),
        (None, None, []),  # any name: nothing to validate
        # The wildcard takes one label or more, never the bare suffix.
        ("*.wildcard.io", ["wildcard.io"], [("wildcard.io", Skip.NO_LISTENER)]),
        ("wildcard.io", ["*.wildcard.io"], [("*.wildcard.io", Skip.WILDCARD)]),
        ("*.example.com", ["*.example.net"], [("*.example.net", Skip.WILDCARD)]),
        ("*.example.com", ["notexample.com"], [("notexample.com", Skip.NO_LISTENER)]),
        ("*.example.com", [".example.com"], [(".example.com", Skip.NO_LISTENER)]),
        (
            "very.specific.com",
            ["non.matching.com", "*.nonmatching.io", "very.specific.com"],
            [
                ("very.specific.com", None),
                ("non.matching.com", Skip.NO_LISTENER),
                ("*.nonmatching.io", Skip.WILDCARD),
            ],
        ),
        (
            "*.wildcard.io",
            ["non.matching.com", "wildcard.io", "foo.wildcard.io", "foo.bar.wildcard.io"],
            [
                ("foo.wildcard.io", None),
                ("foo.bar.wildcard.io", None),
                ("non.matching.com", Skip.NO_LISTENER),
                ("wildcard.io", Skip.NO_LISTENER),
            ],
        ),
        (
            "Shop.Example.com.",
            ["SHOP.example.com", "shop.example.com"],
            [("shop.example.com", None)],
        ),
    ],
)
def test_httproute_hostname_intersection(
    listener_host: str | None,
    route_hosts: list[str] | None,
    expected: list[tuple[str, str | None]],
) -> None:
    gw = gateway_obj([listener("http", listener_host)])
    found = httproute_names(route(route_hosts), gateways(gw))
    assert summary(found) == expected
    assert all(f.origin == ROUTE for f in found)


def test_httproute_through_several_listeners_and_parents_once() -> None:
    public = gateway_obj(
        [
            listener("http", "*.example.com"),
            listener("https", "*.example.com", port=443, protocol="HTTPS"),
            listener("admin", "admin.example.com"),
        ]
    )
    internal = gateway_obj([listener("http")], name="internal")
    obj = route(
        ["www.example.com", "*.example.com"],
        [{"name": "public", "namespace": "infra"}, {"name": "internal", "namespace": "infra"}],
    )
    assert summary(httproute_names(obj, gateways(public, internal))) == [
        ("www.example.com", None),
        ("*.example.com", Skip.WILDCARD),
        ("admin.example.com", None),
    ]


@pytest.mark.parametrize(
    ("parent", "expected"),
    [
        ({"name": "public", "namespace": "infra"}, ["a.example.com", "b.example.com"]),
        ({"name": "public", "namespace": "infra", "sectionName": "a"}, ["a.example.com"]),
        (
            {"name": "public", "namespace": "infra", "sectionName": ""},
            ["a.example.com", "b.example.com"],
        ),
        ({"name": "public", "namespace": "infra", "port": 8080}, ["b.example.com"]),
        (
            {"name": "public", "namespace": "infra", "sectionName": "a", "port": 80},
            ["a.example.com"],
        ),
        ({"name": "public", "namespace": "infra", "sectionName": "a", "port": 8080}, []),
        ({"name": "public", "namespace": "infra", "sectionName": "c"}, []),
        (
            {"name": "public", "namespace": "infra", "port": True},
            ["a.example.com", "b.example.com"],
        ),
        (
            {"name": "public", "namespace": "infra", "port": "80"},
            ["a.example.com", "b.example.com"],
        ),
        (
            {
                "name": "public",
                "namespace": "infra",
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
            },
            ["a.example.com", "b.example.com"],
        ),
        (
            {"name": "public", "namespace": "infra", "group": None, "kind": None},
            ["a.example.com", "b.example.com"],
        ),
    ],
)
def test_httproute_parent_sections(parent: dict[str, Any], expected: list[str]) -> None:
    gw = gateway_obj([listener("a", "a.example.com"), listener("b", "b.example.com", port=8080)])
    found = httproute_names(route(None, [parent]), gateways(gw))
    assert [f.name for f in found] == expected
    assert all(f.skipped is None for f in found)


def test_httproute_parent_namespace_defaults_to_the_routes() -> None:
    calls: list[tuple[str, str]] = []
    gw = gateway_obj([listener("http", "a.example.com", allowed={})], namespace="shop")

    def lookup(namespace: str, name: str) -> Mapping[str, Any] | None:
        calls.append((namespace, name))
        return gw if (namespace, name) == ("shop", "public") else None

    obj = route(["a.example.com"], [{"name": "public"}, {"name": "edge", "namespace": "infra"}])
    assert summary(httproute_names(obj, lookup)) == [("a.example.com", None)]
    assert calls == [("shop", "public"), ("infra", "edge")]


@pytest.mark.parametrize(
    ("route_ns", "allowed", "protocol", "accepted"),
    [
        ("infra", None, "HTTP", True),  # allowedRoutes unset: Same
        ("shop", {}, "HTTP", False),
        ("infra", {}, "HTTP", True),
        ("shop", {"namespaces": {}}, "HTTP", False),
        ("shop", {"namespaces": {"from": "Same"}}, "HTTP", False),
        ("infra", {"namespaces": {"from": "Same"}}, "HTTPS", True),
        ("shop", {"namespaces": {"from": "All"}}, "HTTP", True),
        # Selector is matched against Namespace objects, not read here: allowed.
        (
            "shop",
            {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"gw": "yes"}}}},
            "HTTP",
            True,
        ),
        ("shop", {"namespaces": {"from": "None"}}, "HTTP", False),
        ("shop", {"namespaces": {"from": "Everyone"}}, "HTTP", False),
        ("shop", {"namespaces": {"from": 1}}, "HTTP", False),  # absent: Same
        ("infra", {"namespaces": {"from": 1}}, "HTTP", True),
        ("shop", {"namespaces": "All"}, "HTTP", False),
        ("shop", {"namespaces": {"from": "All"}}, "TCP", False),
        ("shop", {"namespaces": {"from": "All"}}, "TLS", False),
        ("shop", {"namespaces": {"from": "All"}}, "http", False),
        ("shop", {"namespaces": {"from": "All"}}, "example.com/h3", False),
        ("shop", {"namespaces": {"from": "All"}, "kinds": []}, "HTTP", True),
        ("shop", {"namespaces": {"from": "All"}, "kinds": [{"kind": "HTTPRoute"}]}, "HTTP", True),
        (
            "shop",
            {
                "namespaces": {"from": "All"},
                "kinds": [
                    {"kind": "GRPCRoute"},
                    {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                ],
            },
            "HTTPS",
            True,
        ),
        ("shop", {"namespaces": {"from": "All"}, "kinds": [{"kind": "GRPCRoute"}]}, "HTTP", False),
        (
            "shop",
            {"namespaces": {"from": "All"}, "kinds": [{"group": "", "kind": "HTTPRoute"}]},
            "HTTP",
            False,
        ),
        (
            "shop",
            {
                "namespaces": {"from": "All"},
                "kinds": [{"group": "example.com", "kind": "HTTPRoute"}],
            },
            "HTTP",
            False,
        ),
        ("shop", {"namespaces": {"from": "All"}, "kinds": ["HTTPRoute", 3]}, "HTTP", True),
        ("shop", {"namespaces": {"from": "All"}, "kinds": "GRPCRoute"}, "HTTP", True),
    ],
)
def test_httproute_listener_admission(
    route_ns: str, allowed: dict[str, Any] | None, protocol: str, accepted: bool
) -> None:
    lst = listener("l", "a.example.com", protocol=protocol, allowed=allowed)
    if allowed is None:
        del lst["allowedRoutes"]
    gw = gateway_obj([lst])
    obj = route(["a.example.com"], namespace=route_ns)
    expected = None if accepted else Skip.NO_LISTENER
    assert summary(httproute_names(obj, gateways(gw))) == [("a.example.com", expected)]


def test_httproute_not_attached() -> None:
    obj = route(["a.example.com", "*.example.com", "\ufffd.example.com"])
    assert summary(httproute_names(obj, gateways())) == [
        ("a.example.com", Skip.NOT_ATTACHED),
        ("*.example.com", Skip.WILDCARD),
        ("\ufffd.example.com", Skip.INVALID_NAME),
    ]
    # No hostnames and no Gateway: nothing to name.
    assert httproute_names(route(None), gateways()) == []


@pytest.mark.parametrize(
    "parents",
    [
        [],
        None,
        "public",
        [{"name": "public", "namespace": "infra", "kind": "Service", "group": ""}],
        [{"name": "public", "namespace": "infra", "group": ""}],
        [{"name": "public", "namespace": "infra", "kind": "ListenerSet"}],
        [{"name": "public", "namespace": "infra", "group": "example.com"}],
        [{"namespace": "infra"}],
        [{"name": "", "namespace": "infra"}],
        [{"name": 3, "namespace": "infra"}],
        ["public", None, 3],
    ],
)
def test_httproute_parents_that_are_not_gateways(parents: Any) -> None:
    gw = gateway_obj([listener("http")])
    obj = route(["a.example.com"], [])
    obj["spec"]["parentRefs"] = parents
    assert summary(httproute_names(obj, gateways(gw))) == [("a.example.com", Skip.NOT_ATTACHED)]


def test_httproute_one_parent_found_one_missing() -> None:
    gw = gateway_obj([listener("http", "a.example.com")])
    obj = route(
        ["a.example.com", "b.example.com"],
        [{"name": "gone", "namespace": "infra"}, {"name": "public", "namespace": "infra"}],
    )
    assert summary(httproute_names(obj, gateways(gw))) == [
        ("a.example.com", None),
        ("b.example.com", Skip.NO_LISTENER),
    ]


@pytest.mark.parametrize(
    "gateway_value",
    [
        None,
        "gateway",
        [],
        {},
        {"spec": None},
        {"spec": {"listeners": "http"}},
        {"spec": {"listeners": [None, "http", 3]}},
    ],
)
def test_httproute_unreadable_gateway(gateway_value: Any) -> None:
    obj = route(["a.example.com"])
    found = httproute_names(obj, lambda namespace, name: gateway_value)
    reason = Skip.NOT_ATTACHED if not isinstance(gateway_value, dict) else Skip.NO_LISTENER
    assert summary(found) == [("a.example.com", reason)]


@pytest.mark.parametrize(
    "obj",
    [
        None,
        "route",
        7,
        [],
        {},
        {"spec": []},
        {"spec": {"hostnames": "a.example.com", "parentRefs": [{"name": "public"}]}},
        {"spec": {"hostnames": [1, None, [], ""], "parentRefs": [{"name": "public"}]}},
    ],
)
def test_httproute_unreadable_gives_nothing(obj: Any) -> None:
    gw = gateway_obj([listener("http", "a.example.com")])
    assert httproute_names(obj, gateways(gw)) == []


def test_httproute_wrong_typed_listener_fields() -> None:
    gw = gateway_obj(
        [
            {"name": 1, "port": "80", "protocol": "HTTP", "hostname": 5, "allowedRoutes": "All"},
            {"protocol": ["HTTP"], "hostname": "b.example.com"},
        ],
        namespace="shop",
    )
    obj = route(["a.example.com"], [{"name": "public"}])
    # The first listener: hostname absent (any), allowedRoutes absent (Same): accepted.
    assert summary(httproute_names(obj, gateways(gw))) == [("a.example.com", None)]


# --------------------------------------------------------------- hostile objects


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(obj: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(obj)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return out


HOSTILE: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    float("nan"),
    "",
    "*",
    "\u0000",
    "x" * 10_000,
    "\ud800",
    [],
    {},
    [None],
    [{}],
    {"": None},
    {1: "x"},
    b"bytes",
    ("t",),
]

SOLVERS = [
    solver("dns01", dnsZones=["example.com"], matchLabels={"a": "1"}),
    solver("http01", dnsNames=["a.example.com"], dnsZones=["sub.example.com"]),
    http01(),
]


def _returning(value: Any) -> Callable[[str, str], Any]:
    return lambda namespace, name: value


def _check(found: Any) -> None:
    assert isinstance(found, list)
    for item in found:
        assert isinstance(item, Found) and isinstance(item.name, str)
        assert item.skipped is None or item.skipped in set(Skip)


def test_hostile_values_at_every_path() -> None:
    ing = ingress(
        ["a.example.com", "*.example.com"],
        [["a.example.com"]],
        class_name="nginx",
        annotations={"cert-manager.io/issuer": "le"},
    )
    for path in _paths(ing):
        for bad in HOSTILE:
            changed = _replaced(ing, path, bad)
            _check(ingress_names(changed))
            _check(ingress_names(changed, classes=frozenset({"nginx"}), cert_manager_only=True))

    cert = certificate(["a.example.com", "b.sub.example.com"], labels={"a": "1"})
    issuer = acme_issuer(SOLVERS)
    for path in _paths(cert):
        for bad in HOSTILE:
            _check(certificate_names(_replaced(cert, path, bad), issuer))
            issuer_ref(_replaced(cert, path, bad))
    for path in _paths(issuer):
        for bad in HOSTILE:
            _check(certificate_names(cert, _replaced(issuer, path, bad)))

    gw = gateway_obj(
        [
            listener(
                "http",
                "*.example.com",
                allowed={"namespaces": {"from": "All"}, "kinds": [{"kind": "HTTPRoute"}]},
            ),
            listener("https", None, port=443, protocol="HTTPS"),
        ]
    )
    obj = route(
        ["a.example.com", "*.example.com"],
        [{"name": "public", "namespace": "infra", "sectionName": "http", "port": 80}],
    )
    for path in _paths(obj):
        for bad in HOSTILE:
            _check(httproute_names(_replaced(obj, path, bad), gateways(gw)))
    for path in _paths(gw):
        for bad in HOSTILE:
            _check(httproute_names(obj, _returning(_replaced(gw, path, bad))))


def test_large_objects() -> None:
    names = [f"host{i}.example.com" for i in range(3000)]
    found = ingress_names(ingress(names, [names[::-1]]))
    assert [f.name for f in found] == names

    solvers = [solver("dns01", dnsZones=[f"zone{i}.example.org"]) for i in range(200)]
    solvers.append(solver("http01", dnsZones=["example.com"]))
    found = certificate_names(certificate(names[:1000]), acme_issuer(solvers))
    assert len(found) == 1000 and all(f.skipped is None for f in found)

    listeners = [listener(f"l{i}", f"host{i}.example.com") for i in range(64)]
    found = httproute_names(route(names[:16] * 8), gateways(gateway_obj(listeners)))
    assert [f.name for f in found] == names[:16]
