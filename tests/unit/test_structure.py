"""The package's structure rules: public seams only, declared dependencies, a leaf config,
the lab outside the production path, and no key material shipped.

Each seam the exporter relies on is imported and exercised here, so an upgrade of
httpx, httpcore, anyio, APScheduler, dnspython or prometheus-client that breaks one
fails here, loudly, with the seam's name.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "exporter"
MODULES = sorted(PACKAGE.rglob("*.py"))


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def top_level_imports(path: Path) -> set[str]:
    """The modules imported when ``path`` is imported (not those imported inside functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


# ---------------------------------------------------------------------- public seams

PRIVATE = re.compile(r"^(httpx|httpcore|anyio|h11|apscheduler|dns|prometheus_client)(\..*)?\._")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_module_or_attribute_of_a_library(path: Path) -> None:
    private = [f"{name} (line {line})" for name, line in imports(path) if PRIVATE.match(name)]
    text = path.read_text()
    private += [m.group(0) for m in re.finditer(r"\b(httpx|httpcore|anyio)\._\w+", text)]
    private += [m.group(0) for m in re.finditer(r"\._pool\b|\b_backends\b", text)]
    assert private == []


def test_httpcore_and_h11_seam() -> None:
    import h11
    import httpcore

    for name in ("read", "write", "aclose", "start_tls"):
        assert inspect.iscoroutinefunction(getattr(httpcore.AsyncNetworkStream, name)), name
    assert callable(httpcore.AsyncNetworkStream.get_extra_info)
    url = httpcore.URL(scheme=b"https", host=b"example.com", port=None, target=b"/x")
    assert (url.origin.scheme, url.origin.host, url.origin.port) == (b"https", b"example.com", 443)
    assert url.target == b"/x"
    # httpcore's HTTP/1.1 connection speaks h11 with these; the fetch seam does the same.
    connection = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=100 * 1024)
    request = h11.Request(method=b"GET", target=b"/x", headers=[(b"Host", b"example.com")])
    assert connection.send(request).startswith(b"GET /x HTTP/1.1\r\n")
    connection.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok")
    response = connection.next_event()
    assert isinstance(response, h11.Response) and response.status_code == 200
    assert (b"X-A", b"b") in list(response.headers.raw_items())
    assert isinstance(connection.next_event(), h11.Data)
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    for name in ("InformationalResponse", "PAUSED", "NEED_DATA", "SEND_RESPONSE"):
        assert getattr(h11, name) is not None, name
    for name in ("RemoteProtocolError", "LocalProtocolError"):
        assert issubclass(getattr(h11, name), Exception), name
    # The failure classes the fetch seam tells apart.
    for name in (
        "ConnectTimeout",
        "ConnectError",
        "RemoteProtocolError",
        "LocalProtocolError",
        "ReadError",
        "WriteError",
        "ReadTimeout",
        "WriteTimeout",
        "ProtocolError",
        "NetworkError",
        "TimeoutException",
        "UnsupportedProtocol",
    ):
        assert issubclass(getattr(httpcore, name), Exception), name


def test_httpx_models_seam() -> None:
    import httpx

    request = httpx.Request("GET", "http://example.com:8080/a%20b?c", headers={"Accept": "*/*"})
    assert request.url.raw_scheme == b"http"
    assert request.url.raw_host == b"example.com"
    assert request.url.port == 8080
    assert request.url.raw_path == b"/a%20b?c"
    assert (b"Host", b"example.com:8080") in request.headers.raw
    assert httpx.Headers([(b"Location", b"/x")]).get("location") == "/x"
    assert issubclass(httpx.InvalidURL, Exception)


def test_anyio_stream_seam() -> None:
    import anyio
    import anyio.abc
    import anyio.streams.tls

    for name in ("receive", "send", "send_eof", "aclose"):
        assert name in anyio.abc.ByteStream.__abstractmethods__, name
    wrap = inspect.signature(anyio.streams.tls.TLSStream.wrap)
    assert {"ssl_context", "hostname", "standard_compatible", "server_side"} <= set(wrap.parameters)
    assert anyio.streams.tls.TLSAttribute.ssl_object is not None
    for name in ("local_address", "remote_address", "raw_socket"):
        assert getattr(anyio.abc.SocketAttribute, name) is not None
    for name in ("EndOfStream", "BrokenResourceError", "ClosedResourceError"):
        assert issubclass(getattr(anyio, name), Exception)


def test_apscheduler_seam() -> None:
    from apscheduler import events
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.base import BaseTrigger

    assert "get_next_fire_time" in BaseTrigger.__abstractmethods__
    for name in ("add_job", "reschedule_job", "get_jobs", "add_listener", "shutdown"):
        assert callable(getattr(AsyncIOScheduler, name)), name
    for name in ("EVENT_JOB_MAX_INSTANCES", "EVENT_JOB_MISSED", "EVENT_JOB_SUBMITTED"):
        assert isinstance(getattr(events, name), int), name


def test_uvloop_seam() -> None:
    import asyncio

    import uvloop

    loop = uvloop.new_event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        for name in ("sock_connect", "sock_recv", "sock_sendall"):
            assert inspect.iscoroutinefunction(getattr(loop, name)), name
    finally:
        loop.close()


def test_dnspython_and_prometheus_client_seams() -> None:
    import dns.asyncresolver
    import dns.ipv4
    import dns.ipv6
    import dns.message
    import dns.nameserver
    from prometheus_client import CollectorRegistry
    from prometheus_client.utils import floatToGoString

    assert inspect.iscoroutinefunction(dns.asyncresolver.Resolver.resolve)
    assert {"address", "port"} <= set(inspect.signature(dns.nameserver.Do53Nameserver).parameters)
    assert {"id", "use_edns", "payload"} <= set(
        inspect.signature(dns.message.make_query).parameters
    )
    assert "continue_on_error" in inspect.signature(dns.message.from_wire).parameters
    assert dns.ipv4.inet_ntoa(b"\xc0\x00\x02\x01") == "192.0.2.1"
    assert dns.ipv6.inet_ntoa(b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01") == "2001:db8::1"
    assert floatToGoString(1.0) == "1.0" and floatToGoString(float("inf")) == "+Inf"
    assert "auto_describe" in inspect.signature(CollectorRegistry).parameters


# ------------------------------------------------------------------------- dependencies


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {}
    for spec in project["dependencies"]:
        name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]
        declared[name.lower().replace("_", "-")] = spec
    return declared


def test_every_imported_distribution_is_declared_with_bounds() -> None:
    declared = _declared()
    by_module = metadata.packages_distributions()
    stdlib = sys.stdlib_module_names
    used: dict[str, str] = {}
    for path in MODULES:
        for name, _ in imports(path):
            top = name.split(".")[0]
            if top in stdlib or top == "exporter" or top == "__future__":
                continue
            dists = [d.lower().replace("_", "-") for d in by_module.get(top, [top])]
            # A namespace shared by several distributions (lightkube and lightkube-models)
            # needs one of them declared: the one the import's module comes from.
            declared_here = [d for d in dists if d in declared]
            for dist in declared_here or dists:
                used[dist] = str(path.relative_to(ROOT))
    missing = {dist: where for dist, where in used.items() if dist not in declared}
    assert missing == {}
    for dist in used:
        spec = declared[dist]
        assert ">=" in spec and "<" in spec.replace("<=", ""), f"{spec}: needs both bounds"


# ---------------------------------------------------------------------------- layering


def test_config_is_a_leaf() -> None:
    own = {name for name, _ in imports(PACKAGE / "config.py") if name.startswith("exporter")}
    assert own <= {
        "exporter.records",
        "exporter.records.FallbackPolicy",
        "exporter.names",
        "exporter.names.to_ascii",
    }


@pytest.mark.parametrize(
    "module", ["policy.py", "caa.py", "gocompat.py", "iana.py", "records.py", "names.py"]
)
def test_the_rules_are_pure(module: str) -> None:
    """Let's Encrypt's rules and words import no I/O library, and only pure modules of ours."""
    found = imports(PACKAGE / module)
    io = {"socket", "asyncio", "httpx", "httpcore", "anyio", "dns", "ssl", "urllib3", "h11"}
    assert {n.split(".")[0] for n, _ in found} & io == set()
    own = {n.split(".")[1] for n, _ in found if n.startswith("exporter.")}
    assert own <= {"policy", "gocompat", "iana", "records", "names"}


def test_only_the_fetch_seam_touches_the_http_stack() -> None:
    for path in MODULES:
        tops = {n.split(".")[0] for n, _ in imports(path)}
        if tops & {"httpx", "httpcore", "anyio"}:
            assert path.relative_to(PACKAGE) == Path("fetch.py"), path


def test_the_production_path_does_not_import_the_lab() -> None:
    for path in MODULES:
        if path.parent.name == "lab":
            continue
        assert not any(m.startswith("exporter.lab") for m in top_level_imports(path)), path
    code = (
        "import sys, exporter.cli, exporter.endpoints, exporter.service, exporter.compose; "
        "print(sorted(m for m in sys.modules if m.startswith('exporter.lab')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# -------------------------------------------------------------------------- key material


def test_no_key_material_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert [p for p in tracked if p.endswith((".pem", ".key", ".crt", ".p12"))] == []


def test_the_wheel_holds_no_key_material(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "exporter/lab/tls.py" in names and "exporter/http01.py" in names
    assert "exporter/runbook.md" in names  # served at /runbook
    assert [n for n in names if n.endswith((".pem", ".key", ".crt", ".p12"))] == []
