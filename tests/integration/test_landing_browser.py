"""The landing page in a real headless browser (Debian's ``chromium``), at 13 and 10,000 domains.

The browser loads the page from the running exporter (127.0.0.1 only) and prints the DOM it
built (``--dump-dom``) or a screenshot; the tests read the DOM as a person reads the page:
every domain's verdict, problem and fix hint, the counts, the filter and the page links.

``ACME_LANDING_PNG=1`` also writes the demo's screenshot to ``docs/landing.png`` (the
picture in the README); any other non-empty value is taken as the path to write it to.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from exporter.lab.process import cpu_seconds
from exporter.lab.showcase import DEMO_FILE_NAMES, SHOWCASE
from tests.conftest import ROOT
from tests.integration.procs import ExporterProcess, LabProcess, tool, wait_for, write_config

#: The page size the landing page uses unless ``?size=`` says otherwise.
PAGE_SIZE = 100
FLEET = 10_000
#: Chromium as the machine's documentation runs it: headless, no sandbox (root in a
#: container), no GPU, no network of its own beyond the page asked for.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def browser(url: str, *args: str, timeout: float = 90) -> tuple[str, float]:
    """Run Chromium once on ``url`` (a new profile each time); its stdout and wall time."""
    assert url.startswith("http://127.0.0.1:"), url
    chromium = tool("chromium", "chromium")
    profile = tempfile.mkdtemp(prefix="landing-chromium-")
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [chromium, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, elapsed


@dataclass
class Row:
    domain: str
    css: str
    title: str
    cells: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    hint: str | None = None


@dataclass
class Page:
    """What a person sees on the rendered page, read from the browser's DOM."""

    rows: dict[str, Row] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    #: rel (first, prev, next, last) -> href, from the pager (the same above and below).
    pager: dict[str, str] = field(default_factory=dict)
    where: str = ""
    summary: str = ""
    text: str = ""


class _DomReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self._row: Row | None = None
        self._hint_of: str | None = None
        self._cell: list[str] | None = None
        self._capture: list[str] | None = None
        self._where: list[str] | None = None
        self._summary: list[str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "data-domain" in a:
            name = a["data-domain"]
            if a.get("class") == "hint":
                self._hint_of = name
                self._capture = []
            else:
                self._row = Row(name, a.get("class", ""), a.get("title", ""))
                self.page.rows[name] = self._row
                self.page.order.append(name)
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "a" and "href" in a:
            self.page.links.append(a["href"])
            if self._row is not None:
                self._row.links.append(a["href"])
            if "rel" in a:
                self.page.pager.setdefault(a["rel"], a["href"])
        elif tag == "span" and a.get("class") == "where" and not self.page.where:
            self._where = []
        elif tag == "p" and a.get("class") == "summary":
            self._summary = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            if self._hint_of is not None and self._capture is not None:
                self.page.rows[self._hint_of].hint = " ".join("".join(self._capture).split())
            self._row, self._hint_of, self._capture = None, None, None
        elif tag == "span" and self._where is not None:
            self.page.where = " ".join("".join(self._where).split())
            self._where = None
        elif tag == "p" and self._summary is not None:
            self.page.summary = " ".join("".join(self._summary).split())
            self._summary = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        for sink in (self._cell, self._capture, self._where, self._summary):
            if sink is not None:
                sink.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = " ".join("".join(self._text).split())


def address(exporter: ExporterProcess, path: str) -> str:
    """The URL of ``path``, or of a link on the landing page (relative to ``/``)."""
    assert exporter.base is not None
    return urllib.parse.urljoin(exporter.base + "/", path)


def read_page(url: str) -> tuple[Page, float]:
    """The page at ``url`` as the browser rendered it, and how long the browser took."""
    dom, elapsed = browser(url, "--dump-dom")
    reader = _DomReader()
    reader.feed(dom)
    reader.close()
    assert "acme-http01-exporter" in reader.page.text, dom[:2000]
    return reader.page, elapsed


def rendered(exporter: ExporterProcess, path: str) -> tuple[Page, float]:
    """The page at ``path`` (or a landing page link) as the browser rendered it."""
    return read_page(address(exporter, path))


def counts(page: Page) -> dict[str, int]:
    """``{"all": n, "failing": n, "warning": n, "ok": n, "pending": n}`` from the counts
    line."""
    found = re.findall(r"([\d,]+) (all|failing|warning|ok|pending)", page.summary)
    return {state: int(number.replace(",", "")) for number, state in found}


def fetch_status(exporter: ExporterProcess, href: str) -> tuple[str, int]:
    """The status of a landing page link (relative to ``/``)."""
    return href, exporter.request(urllib.parse.urljoin("/", href))[0]


def normalised(text: str) -> str:
    return " ".join(text.split())


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- the demo: 13 showcase domains ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[ExporterProcess]:
    tool("chromium", "chromium")  # fail (CI) or skip before starting anything
    exporter = ExporterProcess("--demo")
    try:
        exporter.wait_ready(40)
        # The certificates are read on their own schedule; the screenshot should show them.
        wait_for(
            lambda: "renewal due in 2 d" in exporter.request("/")[1],
            20,
            "no certificate on the landing page",
            exporter,
        )
        yield exporter
    finally:
        assert exporter.stop() == 0


def test_demo_every_verdict_problem_and_hint_in_the_browser(demo: ExporterProcess) -> None:
    page, _ = rendered(demo, "/")
    assert set(page.rows) == {domain.name for domain in SHOWCASE}
    # Passing with a warning is a state of its own: the three showcase domains that pass
    # through the IPv4 fallback or despite a hidden AAAA lookup failure.
    warned = {"aaaa-timeout.example.com", "aaaa-refused.example.com", "aaaa-servfail.example.com"}
    passing = {d.name for d in SHOWCASE if d.expect_success}
    assert warned <= passing
    assert counts(page) == {
        "all": len(SHOWCASE),
        "failing": len(SHOWCASE) - len(passing),
        "warning": len(warned),
        "ok": len(passing - warned),
        "pending": 0,
    }
    assert page.where == f"page 1 of 1 · rows 1–{len(SHOWCASE)} of {len(SHOWCASE)}"
    # Failing first, then the passing ones (the ones with a warning before the clean ones).
    verdicts = [page.rows[name].cells[1] for name in page.order]
    assert verdicts == sorted(verdicts, key=["FAIL", "WARN", "OK"].index)

    # The same validation, run now through the row's own "run now" link, and the stored
    # result through its "trace" link: the page says what they say.
    def probe(row: Row) -> tuple[Row, str, dict[str, object]]:
        trace, run_now = row.links
        assert trace == f"./domains/{row.domain}"
        assert run_now == f"./probe?target={row.domain}&debug=true"
        status, text, _ = demo.request(run_now[1:])
        assert status == 200, (run_now, text)
        status, document, _ = demo.request(trace[1:])
        assert status == 200, (trace, document)
        return row, text, json.loads(document)

    with concurrent.futures.ThreadPoolExecutor(len(page.rows)) as pool:
        checked = list(pool.map(probe, page.rows.values()))
    for row, debug, stored in checked:
        expected = next(d for d in SHOWCASE if d.name == row.domain)
        domain, verdict, problem = row.cells[:3]
        if row.domain in DEMO_FILE_NAMES:  # found in the demo's file too: said under the name
            assert domain.startswith(row.domain + "file /") and domain.endswith("/names.yaml")
        else:
            assert domain == row.domain
        want = ("WARN" if row.domain in warned else "OK") if expected.expect_success else "FAIL"
        assert verdict == want, row
        assert row.css == {"WARN": "warning", "OK": "ok", "FAIL": "fail"}[want], row
        assert bool(stored["warnings"]) == (want == "WARN"), stored  # the same function
        if want == "WARN":
            assert "with a warning: " in row.title, row
        assert row.title and normalised(row.title) in normalised(debug), (row.title, debug)
        stored_problem = stored["problem"]
        if expected.expect_success:
            assert problem == "" and stored_problem is None, row
        else:
            assert isinstance(stored_problem, dict), stored
            want = f"{stored_problem['type']}/{stored_problem['reason']}: "
            assert problem.startswith(want), (problem, want)
            assert normalised(str(stored_problem["detail"])) in problem
            assert row.hint, f"{row.domain}: a failing domain without a fix hint"
        if row.hint:
            assert row.hint in normalised(debug), (row.hint, debug)
        elif expected.expect_success:
            assert "fallback" not in row.title, row  # a warning always comes with a hint
    hinted = {name for name, row in page.rows.items() if row.hint}
    assert {"aaaa-timeout.example.com", "aaaa-servfail.example.com"} <= hinted
    assert "healthy.example.com" not in hinted


def test_demo_links_answer(demo: ExporterProcess) -> None:
    page, _ = rendered(demo, "/")
    expected = {"./metrics", "./config", "./runbook", "./-/ready"}
    assert expected <= set(page.links)
    others = [href for href in dict.fromkeys(page.links) if not href.startswith("./probe")]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = dict(pool.map(lambda href: fetch_status(demo, href), others))
    # Every link is relative to the page (so it works under any path prefix): no off-site link.
    assert all(href.startswith("./") for href in statuses), statuses
    assert {href: s for href, s in statuses.items() if s != 200} == {}
    # The counts are links to their filter, and the filter is what the browser shows.
    failing = next(h for h in page.links if h == "./?state=failing")
    page, _ = rendered(demo, failing)
    assert page.rows and {row.css for row in page.rows.values()} == {"fail"}
    assert {r.domain for r in page.rows.values()} == {
        d.name for d in SHOWCASE if not d.expect_success
    }


def test_demo_screenshot_reads_well(demo: ExporterProcess, tmp_path: Path) -> None:
    target = os.environ.get("ACME_LANDING_PNG", "")
    out = tmp_path / "landing.png"
    _, elapsed = browser(
        address(demo, "/"), f"--screenshot={out}", "--window-size=1400,1000", timeout=90
    )
    data = out.read_bytes()
    assert png_size(data) == (1400, 1000)
    assert len(data) > 20_000  # a page with text, not a blank one
    if target:
        path = ROOT / "docs" / "landing.png" if target == "1" else Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"demo screenshot: {elapsed:.2f} s")


def test_every_value_is_escaped(demo: ExporterProcess) -> None:
    # The query is echoed into the page: it stays text, in the DOM and in the links.
    nasty = '"><script>alert(1)</script><b x="'
    path = "/?" + urllib.parse.urlencode({"q": nasty, "state": "ok", "size": "2"})
    status, body, _ = demo.request(path)
    assert status == 200
    assert "<script>" not in body and "alert(1)</script>" not in body
    page, _ = rendered(demo, path)
    assert nasty.lower() in page.text  # shown as typed (lower case), never run as markup
    assert page.rows == {}  # no domain has that in its name
    status, _, _ = demo.request("/?state=<b>")
    assert status == 400


# --- 10,000 domains ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    """10,000 domains: the showcase's 13 (some pass) and names the lab's DNS answers
    NXDOMAIN for (fast failures), validated once (a long interval). CAA and certificate
    reading are off: the page is under test here, not the lab DNS server's speed. The
    timeouts are generous so that a busy machine does not turn a showcase domain's pass
    into a timeout; the NXDOMAIN names fail at once whatever they are."""
    tool("chromium", "chromium")
    directory = tmp_path_factory.mktemp("fleet")
    lab = LabProcess(directory)
    try:
        domains = list(lab.document["domains"])
        domains += [{"name": f"n{i:05d}.nxdomain.example.com"} for i in range(FLEET - len(domains))]
        document = lab.config(
            interval="1h",
            jitter="2s",
            concurrency=300,
            timeouts={"dial": "3s", "validation": "20s"},
            caa={"enabled": False},
            certificates={"enabled": False},
            domains=domains,
        )
        exporter = ExporterProcess(
            "--config.file", str(write_config(directory / "c.yml", document))
        )
        try:
            exporter.wait_ready(60)
            yield exporter
        finally:
            exporter.stop()
    finally:
        lab.stop()


def test_fleet_first_page_paging_and_filters(fleet: ExporterProcess) -> None:
    page, _ = rendered(fleet, "/")
    total = counts(page)
    assert total["all"] == FLEET and total["pending"] == 0
    assert total["failing"] + total["warning"] + total["ok"] == FLEET
    # The counts are the stored results' (the same function decides a warning), and both
    # kinds of pass are there, so the order of the last page below says something.
    stored = [json.loads(fleet.request(f"/domains/{d.name}")[1]) for d in SHOWCASE]
    passed = [doc for doc in stored if doc["problem"] is None and doc["success"]]
    assert total["warning"] == sum(1 for doc in passed if doc["warnings"]) >= 1
    assert total["ok"] == sum(1 for doc in passed if not doc["warnings"]) >= 1
    assert len(page.rows) == PAGE_SIZE
    pages = -(-FLEET // PAGE_SIZE)
    assert page.where == f"page 1 of {pages} · rows 1–{PAGE_SIZE} of {FLEET:,}"
    assert all(row.css == "fail" for row in page.rows.values())  # failing first
    for row in page.rows.values():  # each with its problem, and its fix where one is known
        assert row.cells[2].startswith(("dns/", "connection/", "unauthorized/")), row
        if row.cells[2].startswith("dns/dns_nxdomain:"):
            assert row.hint == f"Create an A and/or AAAA record for {row.domain}.", row
    assert "prev" not in page.pager and page.pager["next"] == "./?page=2"

    # Next, then previous, by the page's own links: no domain twice, back where it began.
    second, _ = rendered(fleet, page.pager["next"])
    assert len(second.rows) == PAGE_SIZE and not set(second.rows) & set(page.rows)
    assert second.where.startswith(f"page 2 of {pages} · rows 101–200")
    assert second.pager["prev"] == "./" and second.pager["next"] == "./?page=3"
    last, _ = rendered(fleet, second.pager["last"])
    assert len(last.rows) == FLEET - (pages - 1) * PAGE_SIZE
    assert "next" not in last.pager
    tail = [row.css for row in last.rows.values()][-(total["ok"] + total["warning"]) :]
    assert tail == ["warning"] * total["warning"] + ["ok"] * total["ok"]  # the passing ones last

    # A filter, then paging within it: the links keep the filter.
    filtered, _ = rendered(fleet, "/?state=failing&q=n01")
    want = sum(1 for i in range(FLEET - len(SHOWCASE)) if "n01" in f"n{i:05d}.nxdomain")
    assert counts(filtered)["failing"] == want
    assert all("n01" in name and row.css == "fail" for name, row in filtered.rows.items())
    assert filtered.pager["next"] == "./?state=failing&q=n01&page=2"
    after, _ = rendered(fleet, filtered.pager["next"])
    assert after.rows and all("n01" in name for name in after.rows)
    assert not set(after.rows) & set(filtered.rows)
    assert after.pager["prev"] == "./?state=failing&q=n01"

    one, _ = rendered(fleet, "/?q=N04242")  # any case
    assert list(one.rows) == ["n04242.nxdomain.example.com"]
    assert one.rows["n04242.nxdomain.example.com"].hint == (
        "Create an A and/or AAAA record for n04242.nxdomain.example.com."
    )
    ok, _ = rendered(fleet, "/?state=ok")
    assert ok.rows and len(ok.rows) == counts(ok)["ok"]
    assert {row.cells[1] for row in ok.rows.values()} == {"OK"}
    big, _ = rendered(fleet, "/?size=1000&page=3")
    assert len(big.rows) == 1000 and big.where.startswith("page 3 of 10 · rows 2,001–3,000")
    clamped, _ = rendered(fleet, "/?page=100000")
    assert clamped.where.startswith(f"page {pages} of {pages}")


def test_fleet_page_is_fast(fleet: ExporterProcess) -> None:
    """Only the page shown is rendered: the server's time and the bytes stay small at
    10,000 domains, and the browser renders it about as fast as the 13-domain demo's.
    The server's time is its CPU time, which a busy machine does not stretch."""
    server = []
    cpu_before = cpu_seconds(fleet.proc.pid)
    for _ in range(20):
        started = time.perf_counter()
        status, body, _ = fleet.request("/")
        server.append(time.perf_counter() - started)
        assert status == 200
    cpu = (cpu_seconds(fleet.proc.pid) - cpu_before) / len(server)
    size = len(body.encode())
    browser_times = [rendered(fleet, "/")[1] for _ in range(3)]
    served = statistics.median(server)
    shown = statistics.median(browser_times)
    print(
        f"\n10,000 domains, GET /: median {served * 1000:.1f} ms, "
        f"{cpu * 1000:.1f} ms of CPU, {size / 1024:.0f} KiB; "
        f"chromium --dump-dom: median {shown:.2f} s "
        f"(of {', '.join(f'{t:.2f}' for t in browser_times)})"
    )
    assert size < 250_000  # a page of 100 domains (10,000 rows were 9.7 MB)
    assert cpu < 0.5
    assert served < 2.0  # and no wait of its own
    assert shown < 20  # a browser start included; 10,000 rows took about 6.5 s
