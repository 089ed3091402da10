"""The package's structure rules: public seams only, declared dependencies, a leaf config,
the lab outside the production path, and no key material shipped.

Each seam the exporter relies on is imported and exercised here, so an upgrade of
httpx, h11, ssl, APScheduler, uvloop, dnspython or prometheus-client that breaks one
fails here, loudly, with the seam's name.
"""

from __future__ import annotations

import ast
import asyncio
import ctypes
import inspect
import re
import ssl
import subprocess
import sys
import threading
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from tests.timing import loop_lateness

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

PRIVATE = re.compile(
    r"^(httpx|httpcore|anyio|h11|apscheduler|dns|prometheus_client|markdown_it)(\..*)?\._"
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_module_or_attribute_of_a_library(path: Path) -> None:
    private = [f"{name} (line {line})" for name, line in imports(path) if PRIVATE.match(name)]
    text = path.read_text()
    private += [m.group(0) for m in re.finditer(r"\b(httpx|httpcore|anyio)\._\w+", text)]
    private += [m.group(0) for m in re.finditer(r"\._pool\b|\b_backends\b", text)]
    assert private == []


def test_ssl_memory_bio_seam() -> None:
    """connection.Connection runs TLS over a MemoryBIO pair, and sets Go's groups and
    signature algorithms on the context's SSL_CTX through the library _ssl links."""
    import _ssl  # private, on purpose: the route connection.go_client_context takes

    wrap = inspect.signature(ssl.SSLContext.wrap_bio)
    assert list(wrap.parameters)[:4] == ["self", "incoming", "outgoing", "server_side"]
    assert "server_hostname" in wrap.parameters
    for name in ("do_handshake", "read", "write"):
        assert callable(getattr(ssl.SSLObject, name)), name
    for error in (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
        assert issubclass(error, ssl.SSLError), error
    incoming = ssl.MemoryBIO()
    incoming.write(b"x")
    incoming.write_eof()
    assert (incoming.read(), incoming.eof) == (b"x", True)
    assert hasattr(ctypes.CDLL(_ssl.__file__), "SSL_CTX_ctrl")
    assert object.__basicsize__ == ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)


def test_h11_client_seam() -> None:
    """connection.Connection: the HTTP/1.1 client side, spoken with h11."""
    import h11

    with pytest.raises(
        h11.LocalProtocolError
    ):  # a ResponseFailure: "Error getting validation data"
        h11.Request(method=b"GET", target=b"/x", headers=[(b"Host", b"a\r\nX: y")])
    connection = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=100 * 1024)
    request = h11.Request(method=b"GET", target=b"/x", headers=[(b"Host", b"example.com")])
    assert connection.send(request).startswith(b"GET /x HTTP/1.1\r\n")
    connection.send(h11.EndOfMessage())
    # Nothing received yet: more data is needed, and an EOF now is "Server disconnected
    # without sending a response."
    assert connection.next_event() is h11.NEED_DATA
    assert connection.their_state is h11.SEND_RESPONSE
    connection.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok"
        b"HTTP/1.1 200 OK\r\n"  # a second, unasked-for response
    )
    informational = connection.next_event()
    assert isinstance(informational, h11.InformationalResponse)
    assert informational.status_code == 100
    response = connection.next_event()
    assert isinstance(response, h11.Response) and response.status_code == 200
    assert (b"X-A", b"b") in list(response.headers.raw_items())  # as sent, not lowercased
    data = connection.next_event()
    assert isinstance(data, h11.Data) and bytes(data.data) == b"ok"
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    assert connection.next_event() is h11.PAUSED  # the body ends there

    # A head without framing lines (a chunked body's head, once its Transfer-Encoding
    # line is taken out): the body is every byte until the connection closes.
    connection = h11.Connection(our_role=h11.CLIENT)
    connection.send(request)
    connection.send(h11.EndOfMessage())
    connection.receive_data(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n4\r\nabcd\r\n")
    assert isinstance(connection.next_event(), h11.Response)
    data = connection.next_event()
    assert isinstance(data, h11.Data) and bytes(data.data) == b"4\r\nabcd\r\n"
    assert connection.next_event() is h11.NEED_DATA
    connection.receive_data(b"")
    assert isinstance(connection.next_event(), h11.EndOfMessage)

    for garbage in (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", b"HTTP/1.1 200 OK\r\n" + b"X" * 200):
        connection = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=100)
        connection.send(request)
        connection.send(h11.EndOfMessage())
        connection.receive_data(garbage)
        with pytest.raises(h11.RemoteProtocolError):
            connection.next_event()


def test_h11_server_seam() -> None:
    """web.Server: one h11 server connection per client, requests read until PAUSED."""
    import h11

    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=100 * 1024)
    assert connection.our_state is h11.IDLE
    connection.receive_data(
        b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    request = connection.next_event()
    assert isinstance(request, h11.Request) and request.target == b"/metrics"
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    assert connection.next_event() is h11.PAUSED  # the pipelined request waits its turn
    assert connection.our_state is h11.SEND_RESPONSE
    connection.send(h11.Response(status_code=200, headers=[("Content-Length", "2")]))
    connection.send(h11.Data(data=b"ok"))
    connection.send(h11.EndOfMessage())
    connection.start_next_cycle()
    assert isinstance(connection.next_event(), h11.Request)
    assert isinstance(connection.next_event(), h11.EndOfMessage)
    connection.send(h11.Response(status_code=200, headers=[("Connection", "close")]))
    connection.send(h11.EndOfMessage())
    assert connection.our_state is h11.MUST_CLOSE
    with pytest.raises(h11.LocalProtocolError):
        connection.start_next_cycle()

    connection = h11.Connection(h11.SERVER)
    connection.receive_data(b"")  # the client closed without a request
    assert isinstance(connection.next_event(), h11.ConnectionClosed)


def test_httpx_models_seam() -> None:
    import httpx

    url = httpx.URL("http://Example.COM:8080/a b?c")
    assert (url.raw_scheme, url.raw_host, url.port) == (b"http", b"example.com", 8080)
    assert url.raw_path == b"/a%20b?c"
    assert url.netloc == b"example.com:8080"
    assert httpx.URL("https://example.com/").port is None  # the scheme's default
    with pytest.raises(httpx.InvalidURL):
        httpx.URL("http://[::1/")
    headers = httpx.Headers([(b"Location", b"/x"), (b"Content-Encoding", b"gzip")])
    assert headers.get("location") == "/x" and headers.get("content-encoding") == "gzip"


def test_apscheduler_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    """scheduler.APSchedulerClock: each timer a date job of an AsyncIOScheduler, run on
    the event loop; a cancelled one never runs, and cancelling a fired one is harmless.
    APScheduler reads the wall clock: stepped back an hour, its job waits, and the
    loop's backstop runs the callback BACKSTOP late, once."""
    import datetime as dt

    from apscheduler.schedulers import base

    from exporter.scheduler import BACKSTOP, APSchedulerClock

    lateness = [0.0]

    async def main() -> list[tuple[str, float]]:
        clock = APSchedulerClock()
        fired: list[tuple[str, float]] = []
        thread = threading.get_ident()
        start = clock.time()

        def note(name: str) -> None:
            assert threading.get_ident() == thread  # on the loop, not in a worker thread
            fired.append((name, clock.time() - start))

        first = clock.call_at(start + 0.05, lambda: note("first"))
        cancelled = clock.call_at(start + 0.05, lambda: note("cancelled"))
        cancelled.cancel()
        await asyncio.sleep(0.3)
        first.cancel()  # it has fired
        assert [name for name, _ in fired] == ["first"]
        assert fired[0][1] < BACKSTOP  # APScheduler's job, not the backstop

        class HourBehind(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> HourBehind:  # type: ignore[override]
                real = dt.datetime.now(tz)
                return cls.fromtimestamp(real.timestamp() - 3600, tz)

        monkeypatch.setattr(base, "datetime", HourBehind)
        async with loop_lateness(0.01) as late:  # how much later than due a timer runs here
            start = clock.time()
            clock.call_at(start + 0.05, lambda: note("stepped"))
            await asyncio.sleep(BACKSTOP + 0.5)
            lateness[0] = late()
        clock.close()
        return fired

    fired = asyncio.run(main())
    assert [name for name, _ in fired] == ["first", "stepped"]
    # Due at 0.05 and run by the backstop BACKSTOP later: never sooner, and late by at most
    # 0.1 s more than the loop itself was at worst (a ticker on the same loop).
    assert BACKSTOP <= fired[1][1] < BACKSTOP + 0.05 + 0.1 + lateness[0], lateness


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


def test_dnspython_seam() -> None:
    """exporter.dns reads its messages itself (exporter.dnswire); dnspython gives it the
    address texts and, with no nameservers configured, the system's resolvers."""
    import dns.ipv4
    import dns.ipv6
    import dns.resolver

    assert dns.ipv4.inet_ntoa(b"\xc0\x00\x02\x01") == "192.0.2.1"
    assert dns.ipv6.inet_ntoa(b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01") == "2001:db8::1"
    # The system's nameservers, as exporter.dns reads them (not read here: configure=False).
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["192.0.2.53", "2001:db8::53"]
    assert [str(ns) for ns in resolver.nameservers] == ["192.0.2.53", "2001:db8::53"]
    assert issubclass(dns.resolver.NoResolverConfiguration, Exception)


def test_prometheus_client_seam() -> None:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
    from prometheus_client.utils import floatToGoString

    assert floatToGoString(1.0) == "1.0" and floatToGoString(float("inf")) == "+Inf"
    registry = CollectorRegistry(auto_describe=False)
    Gauge("a", "A.", registry=registry).set(1)
    assert generate_latest(registry).endswith(b"\na 1.0\n")
    # metrics.Exposition joins two registries' OpenMetrics, each without its end marker.
    assert generate_openmetrics(registry).endswith(b"\na 1.0\n# EOF\n")


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
    """httpx reads URLs in the fetch seam alone; h11 speaks HTTP in the connection (and in
    the exporter's own web server); httpcore and anyio are used nowhere."""
    users: dict[str, set[str]] = {"httpx": set(), "h11": set(), "httpcore": set(), "anyio": set()}
    for path in MODULES:
        for top in {n.split(".")[0] for n, _ in imports(path)} & set(users):
            users[top].add(str(path.relative_to(PACKAGE)))
    assert users == {
        "httpx": {"fetch.py"},
        "h11": {"connection.py", "web.py"},
        "httpcore": set(),
        "anyio": set(),
    }


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


def test_the_module_map_names_every_module() -> None:
    """exporter/__init__.py's docstring maps the package: a new module must find its line."""
    import exporter

    package = ROOT / "exporter"
    modules = {p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    modules |= {f"discovery.{p.stem}" for p in (package / "discovery").glob("*.py")}
    modules.discard("discovery.__init__")
    modules |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    doc = exporter.__doc__ or ""
    assert {m for m in modules if f"``{m}``" not in doc} == set()
