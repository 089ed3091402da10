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


def test_httpcore_network_backend_seam() -> None:
    import httpcore

    pool = inspect.signature(httpcore.AsyncConnectionPool)
    assert {"ssl_context", "max_keepalive_connections", "network_backend", "http2"} <= set(
        pool.parameters
    )
    assert inspect.iscoroutinefunction(httpcore.AsyncConnectionPool.handle_async_request)
    assert inspect.iscoroutinefunction(httpcore.AsyncConnectionPool.aclose)
    for name in ("connect_tcp", "connect_unix_socket", "sleep"):
        assert inspect.iscoroutinefunction(getattr(httpcore.AsyncNetworkBackend, name)), name
    for name in ("read", "write", "aclose", "start_tls"):
        assert inspect.iscoroutinefunction(getattr(httpcore.AsyncNetworkStream, name)), name
    assert callable(httpcore.AsyncNetworkStream.get_extra_info)
    request = inspect.signature(httpcore.Request)
    assert {"method", "url", "headers", "extensions"} <= set(request.parameters)
    assert {"scheme", "host", "port", "target"} <= set(inspect.signature(httpcore.URL).parameters)
    assert inspect.isasyncgenfunction(httpcore.Response.aiter_stream)
    # The failure classes the fetch seam tells apart.
    for name in (
        "ConnectTimeout",
        "ConnectError",
        "RemoteProtocolError",
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

    assert inspect.iscoroutinefunction(anyio.abc.SocketStream.from_socket)
    wrap = inspect.signature(anyio.streams.tls.TLSStream.wrap)
    assert {"ssl_context", "hostname", "standard_compatible", "server_side"} <= set(wrap.parameters)
    assert anyio.streams.tls.TLSAttribute.ssl_object is not None
    for name in ("local_address", "remote_address", "raw_socket"):
        assert getattr(anyio.abc.SocketAttribute, name) is not None
    for name in ("EndOfStream", "BrokenResourceError", "ClosedResourceError"):
        assert issubclass(getattr(anyio, name), Exception)
    assert callable(anyio.fail_after)


def test_apscheduler_seam() -> None:
    from apscheduler import events
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.base import BaseTrigger

    assert "get_next_fire_time" in BaseTrigger.__abstractmethods__
    for name in ("add_job", "reschedule_job", "get_jobs", "add_listener", "shutdown"):
        assert callable(getattr(AsyncIOScheduler, name)), name
    for name in ("EVENT_JOB_MAX_INSTANCES", "EVENT_JOB_MISSED", "EVENT_JOB_SUBMITTED"):
        assert isinstance(getattr(events, name), int), name


def test_dnspython_and_prometheus_client_seams() -> None:
    import dns.asyncresolver
    import dns.nameserver
    from prometheus_client import CollectorRegistry
    from prometheus_client.utils import floatToGoString

    assert inspect.iscoroutinefunction(dns.asyncresolver.Resolver.resolve)
    assert {"address", "port"} <= set(inspect.signature(dns.nameserver.Do53Nameserver).parameters)
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
            for dist in by_module.get(top, [top]):
                used[dist.lower().replace("_", "-")] = str(path.relative_to(ROOT))
    missing = {dist: where for dist, where in used.items() if dist not in declared}
    assert missing == {}
    for dist in used:
        spec = declared[dist]
        assert ">=" in spec and "<" in spec.replace("<=", ""), f"{spec}: needs both bounds"


# ---------------------------------------------------------------------------- layering


def test_config_is_a_leaf() -> None:
    own = {name for name, _ in imports(PACKAGE / "config.py") if name.startswith("exporter")}
    assert own <= {"exporter.records", "exporter.records.FallbackPolicy"}


@pytest.mark.parametrize("module", ["policy.py", "caa.py", "gocompat.py", "iana.py", "records.py"])
def test_the_rules_are_pure(module: str) -> None:
    """Let's Encrypt's rules and words import no I/O library, and only pure modules of ours."""
    found = imports(PACKAGE / module)
    io = {"socket", "asyncio", "httpx", "httpcore", "anyio", "dns", "ssl", "urllib3", "h11"}
    assert {n.split(".")[0] for n, _ in found} & io == set()
    own = {n.split(".")[1] for n, _ in found if n.startswith("exporter.")}
    assert own <= {"policy", "gocompat", "iana", "records"}


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
