"""The exporter behind a reverse proxy's path: ``--web.external-url``, ``--web.route-prefix``
and ``--web.telemetry-path``, with Prometheus' semantics.

The rules first (Prometheus' ``computeExternalURL`` and route prefix defaulting), then the
real exporter behind a small reverse proxy written here (asyncio, on 127.0.0.1) that serves
it under ``/acme/``: once keeping the prefix (the exporter started with
``--web.external-url http://127.0.0.1:<proxy>/acme/``, so its routes are under ``/acme``),
once stripping it (the same external URL and ``--web.route-prefix /``). Every link on the
landing page, and on the pages it links to, is followed through the proxy, by ``urllib``
and by Chromium.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from exporter.endpoints import Routes, external_url, route_prefix, telemetry_path
from exporter.lab.showcase import SHOWCASE
from tests.integration.procs import (
    ExporterProcess,
    run_cli,
    start_prometheus,
    tool,
    wait_for,
    write_config,
)
from tests.integration.test_exposition import query
from tests.integration.test_landing_browser import browser, read_page

PREFIX = "/acme"

# --- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("https://tools.example.net/acme/", "https://tools.example.net/acme"),
        ("https://tools.example.net/acme", "https://tools.example.net/acme"),
        ("https://tools.example.net/acme///", "https://tools.example.net/acme"),
        ("https://tools.example.net/a/b/", "https://tools.example.net/a/b"),
        ("https://tools.example.net/", "https://tools.example.net"),
        ("http://tools.example.net", "http://tools.example.net"),
        ("http://[::1]:9469/x/?q=1", "http://[::1]:9469/x?q=1"),
    ],
)
def test_external_url_loses_trailing_slashes(raw: str, want: str) -> None:
    assert external_url(raw, 9469) == want


def test_external_url_defaults_to_the_hostname_and_listen_port() -> None:
    assert external_url("", 9469) == f"http://{socket.gethostname()}:9469"


@pytest.mark.parametrize(
    "raw", ['"https://h/acme/"', "'https://h/acme/'", "h/acme", "/acme", "ftp://h/acme"]
)
def test_external_url_refuses_quotes_and_relative_urls(raw: str) -> None:
    with pytest.raises(ValueError):
        external_url(raw, 9469)


@pytest.mark.parametrize(
    ("raw", "external", "want"),
    [
        ("", "https://h/acme", "/acme"),  # defaults to the external URL's path
        (None, "https://h/a/b", "/a/b"),
        ("", "https://h", "/"),  # an external URL without a path: the root
        ("acme", "https://h", "/acme"),  # no leading slash: one is added
        ("/acme/", "https://h", "/acme"),  # trailing slashes go
        ("//acme//", "https://h/other", "/acme"),  # given: the external path is not used
        ("/", "https://h/acme", "/"),  # a proxy that strips the prefix
    ],
)
def test_route_prefix(raw: str | None, external: str, want: str) -> None:
    assert route_prefix(raw, external) == want


@pytest.mark.parametrize(
    ("raw", "want"), [("/metrics", "/metrics"), ("telemetry", "/telemetry"), ("/a/b", "/a/b")]
)
def test_telemetry_path(raw: str, want: str) -> None:
    assert telemetry_path(raw) == want


@pytest.mark.parametrize("raw", ["", "/", "/probe", "/config", "/domains/x", "/-/ready", "/m?x"])
def test_telemetry_path_cannot_take_another_endpoint(raw: str) -> None:
    with pytest.raises(ValueError):
        telemetry_path(raw)


def test_routes_within_the_prefix() -> None:
    routes = Routes("https://h/acme", "/acme")
    assert routes.within("/acme/") == "/"
    assert routes.within("/acme/metrics") == "/metrics"
    assert routes.within("/acme/-/reload") == "/-/reload"
    assert routes.within("/acme") is None  # redirected to /acme/ by the endpoints
    assert routes.within("/acmefoo/metrics") is None
    assert routes.within("/metrics") is None
    assert Routes().within("/metrics") == "/metrics"


# --- a reverse proxy -------------------------------------------------------------------------


@dataclass
class PathProxy:
    """An HTTP reverse proxy on 127.0.0.1 that serves ``upstream`` under ``prefix``.

    One request per connection (``Connection: close`` both ways). ``strip``: the prefix is
    taken off the path before forwarding (``/acme/metrics`` -> ``/metrics``), as an ingress
    with a rewrite does; otherwise the path is forwarded as it came. A path outside the
    prefix is the proxy's own 404. ``log`` holds (method, target, status) of every request.
    """

    strip: bool
    prefix: str = PREFIX
    upstream: tuple[str, int] = ("127.0.0.1", 0)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        start = asyncio.start_server(self._client, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}/"

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, target, _ = request_line.split(" ")
            headers = [line for line in lines if line]
            length = next(
                (int(h.split(":")[1]) for h in headers if h.lower().startswith("content-length:")),
                0,
            )
            body = await reader.readexactly(length)
            path = target.split("?", 1)[0]
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                self.log.append((method, target, 404))
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            forwarded = (target[len(self.prefix) :] or "/") if self.strip else target
            if forwarded.startswith("?"):
                forwarded = "/" + forwarded
            kept = [h for h in headers if not h.lower().startswith(("connection:", "keep-alive:"))]
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                self.log.append((method, target, 502))
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                up_writer.write(
                    f"{method} {forwarded} HTTP/1.1\r\n".encode("latin-1")
                    + "".join(f"{h}\r\n" for h in kept).encode("latin-1")
                    + b"Connection: close\r\n\r\n"
                    + body
                )
                response = await up_reader.read()  # until the exporter closes
            finally:
                up_writer.close()
                await up_writer.wait_closed()
            self.log.append((method, target, int(response.split(b" ", 2)[1])))
            writer.write(response)
        finally:
            writer.close()
            await writer.wait_closed()


@dataclass
class Served:
    exporter: ExporterProcess
    proxy: PathProxy


def direct(exporter: ExporterProcess, path: str, method: str = "GET") -> http.client.HTTPResponse:
    """A request straight to the exporter (no proxy), redirects not followed."""
    assert exporter.base is not None
    host, port = urllib.parse.urlsplit(exporter.base).netloc.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(method, path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def get(url: str, method: str = "GET") -> tuple[int, str, str]:
    """``url`` through urllib: (status, content type, body)."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"] or "", error.read().decode()


class _Links(HTMLParser):
    """Every address a page makes: ``a href`` and ``form action``."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "form": "action"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.links.append(value)


def links_of(text: str) -> list[str]:
    parser = _Links()
    parser.feed(text)
    parser.close()
    return parser.links


def crawl(start: str) -> dict[str, int]:
    """Every page reachable from ``start`` by its links within ``start`` -> its status.

    The links of each HTML page are resolved against that page's URL, as a browser does;
    a link that leaves ``start`` is a failure. ``/probe`` runs a validation each.
    """
    statuses: dict[str, int] = {}
    pending = [start]
    while pending:
        batch = [url for url in dict.fromkeys(pending) if url not in statuses]
        pending = []
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(get, batch))
        for url, (status, content_type, body) in zip(batch, answers, strict=True):
            statuses[url] = status
            if not content_type.startswith("text/html"):
                continue
            for href in links_of(body):
                target = urllib.parse.urljoin(url, href).split("#", 1)[0]
                assert target.startswith(start), (url, href, target)  # never leaves the path
                pending.append(target)
    return statuses


def serve(strip: bool, *flags: str) -> Iterator[Served]:
    proxy = PathProxy(strip)
    try:
        exporter = ExporterProcess(
            "--demo", "--web.external-url", f"http://127.0.0.1:{proxy.port}{PREFIX}/", *flags
        )
        try:
            assert exporter.base is not None
            host, port = urllib.parse.urlsplit(exporter.base).netloc.rsplit(":", 1)
            proxy.upstream = (host, int(port))
            wait_for(lambda: get(proxy.url + "-/ready")[0] == 200, 40, "never ready", exporter)
            yield Served(exporter, proxy)
        finally:
            assert exporter.stop() == 0
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def kept() -> Iterator[Served]:
    """The proxy keeps ``/acme``; the exporter's routes are under it (from the external URL)."""
    yield from serve(False)


@pytest.fixture(scope="module")
def stripped() -> Iterator[Served]:
    """The proxy strips ``/acme``; the exporter's routes are at the root."""
    yield from serve(True, "--web.route-prefix", "/")


# --- behind the proxy ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["kept", "stripped"])
def test_every_link_answers_through_the_proxy(mode: str, request: pytest.FixtureRequest) -> None:
    served: Served = request.getfixturevalue(mode)
    seen = len(served.proxy.log)
    statuses = crawl(served.proxy.url)
    origin = served.proxy.url
    # The landing page, its header links, the state filters, each domain's trace and "run
    # now", the runbook: all found by following links, all under /acme/.
    wanted = {"", "metrics", "config", "runbook", "-/ready", "?state=failing"}
    wanted |= {f"domains/{d.name}" for d in SHOWCASE}
    wanted |= {f"probe?target={d.name}&debug=true" for d in SHOWCASE}
    assert {origin + path for path in wanted} <= set(statuses), sorted(statuses)
    assert {url: status for url, status in statuses.items() if status != 200} == {}
    # The proxy saw each of them, and none outside the prefix.
    assert {status for _, _, status in served.proxy.log[seen:]} == {200}
    print(f"\n{mode}: {len(statuses)} links followed through the proxy, all 200")


@pytest.mark.parametrize("mode", ["kept", "stripped"])
def test_every_endpoint_through_the_proxy(mode: str, request: pytest.FixtureRequest) -> None:
    served: Served = request.getfixturevalue(mode)
    url = served.proxy.url
    status, content_type, body = get(url + "metrics")
    assert status == 200 and "acme_http01_validation_success{" in body, content_type
    assert get(url + "-/healthy")[0] == 200
    assert get(url + "-/reload")[0] == 405
    assert get(url + "-/reload", "POST")[0] == 200
    status, _, document = get(url + "domains/healthy.example.com")
    assert status == 200 and '"domain": "healthy.example.com"' in document
    assert get(url + "domains/not-configured.example.com")[0] == 404
    assert get(url + "nothing-here")[0] == 404


@pytest.mark.parametrize("mode", ["kept", "stripped"])
def test_prometheus_scrapes_through_the_proxy(
    mode: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A real Prometheus scrapes ``metrics_path: /acme/metrics`` through the proxy."""
    binary = tool("prometheus")
    served: Served = request.getfixturevalue(mode)
    job = {
        "job_name": "acme",
        "metrics_path": f"{PREFIX}/metrics",
        "static_configs": [{"targets": [f"127.0.0.1:{served.proxy.port}"]}],
    }
    document = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}}
    write_config(tmp_path / "prometheus.yml", document | {"scrape_configs": [job]})
    seen = len(served.proxy.log)
    proc, base = start_prometheus(binary, tmp_path)
    try:
        wait_for(
            lambda: [r["value"][1] for r in query(base, 'up{job="acme"}')] == ["1"],
            60,
            f"never up: {query(base, 'up')}",
        )
        healthy = 'acme_http01_validation_success{job="acme",domain="healthy.example.com"}'
        wait_for(lambda: bool(query(base, healthy)), 20, f"no {healthy}")
        assert [r["value"][1] for r in query(base, healthy)] == ["1"]
    finally:
        proc.terminate()
        proc.wait(20)
    scrapes = [status for _, target, status in served.proxy.log[seen:] if target == "/acme/metrics"]
    assert scrapes and set(scrapes) == {200}, served.proxy.log[seen:]


def test_routes_under_the_prefix_only(kept: Served) -> None:
    """Without the proxy: the routes are under /acme; the root leads there (as Prometheus)."""
    exporter = kept.exporter
    for path in ("/acme/", "/acme/metrics", "/acme/-/healthy", "/acme/-/ready", "/acme/runbook"):
        assert direct(exporter, path).status == 200, path
    for path in ("/metrics", "/-/healthy", "/-/ready", "/config", "/acmefoo/metrics", "/x/"):
        assert direct(exporter, path).status == 404, path
    assert direct(exporter, "/-/reload", "POST").status == 404
    root = direct(exporter, "/")
    assert (root.status, root.getheader("Location")) == (302, "/acme/")
    bare = direct(exporter, "/acme")  # the landing page is /acme/: its links are relative
    assert (bare.status, bare.getheader("Location")) == (301, "acme/")
    assert urllib.parse.urljoin(kept.proxy.url[:-1], "acme/") == kept.proxy.url


def test_routes_at_the_root_when_stripped(stripped: Served) -> None:
    exporter = stripped.exporter
    for path in ("/", "/metrics", "/-/healthy", "/runbook"):
        assert direct(exporter, path).status == 200, path
    assert direct(exporter, "/acme/metrics").status == 404


def test_telemetry_path_under_the_route_prefix() -> None:
    exporter = ExporterProcess(
        "--demo", "--web.route-prefix", "x/", "--web.telemetry-path", "telemetry"
    )
    try:
        assert direct(exporter, "/x/telemetry").status == 200
        assert direct(exporter, "/x/metrics").status == 404
        assert direct(exporter, "/telemetry").status == 404
        status, page, _ = exporter.request("/x/")
        assert status == 200
        assert '<a href="./telemetry">Metrics</a>' in page
        assert 'href="./metrics"' not in page
    finally:
        assert exporter.stop() == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--web.external-url", "'http://h/acme/'"), "--web.external-url: URL must not begin"),
        (("--web.external-url", "h/acme"), "--web.external-url: 'h/acme' is not an absolute"),
        (("--web.telemetry-path", "/probe"), "--web.telemetry-path: '/probe' is not a free path"),
    ],
)
def test_bad_path_flags_are_usage_errors(flags: tuple[str, ...], message: str) -> None:
    done = run_cli("--demo", *flags)
    assert done.returncode == 2 and message in done.stderr, done.stderr


# --- in a real browser -----------------------------------------------------------------------


def test_browser_follows_every_link_through_the_proxy(kept: Served) -> None:
    """Chromium loads the landing page through the proxy, then each link on it (resolved
    against the page, as the browser resolves it); the proxy saw every one answered 200."""
    tool("chromium", "chromium")
    start = kept.proxy.url
    page, _ = read_page(start)
    assert {d.name for d in SHOWCASE} == set(page.rows)
    targets = list(dict.fromkeys(urllib.parse.urljoin(start, href) for href in page.links))
    assert all(url.startswith(start) for url in targets), targets
    assert len(targets) >= 2 * len(SHOWCASE) + 4
    seen = len(kept.proxy.log)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda url: browser(url, "--dump-dom"), targets))
    answered = {target: status for _, target, status in kept.proxy.log[seen:]}
    wanted = {urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl() for url in targets}
    assert wanted <= set(answered), (sorted(wanted - set(answered)), sorted(answered))
    assert {target: answered[target] for target in wanted if answered[target] != 200} == {}
    print(f"\nchromium through the proxy: {len(targets)} links, all 200")
