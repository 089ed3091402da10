"""The landing page's tables read their columns by name: every row has a cell under each
header, the cell under a header is that column's value, and the style sheet's column
rules and the hint row's span fit the header."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import cast

from exporter.config import Config
from exporter.discovery.status import SourceName
from exporter.endpoints import Endpoints
from exporter.metrics import ResultStore, ServiceState
from exporter.records import (
    CaaCheck,
    FallbackPolicy,
    Mode,
    Outcome,
    Problem,
    ProblemType,
    Reason,
    Record,
    ValidationResult,
)
from exporter.service import Exporter
from exporter.web import WebRequest

ADDRESS = "2001:db8::1"
URL = "http://fail.example.com/.well-known/acme-challenge/t0k3n"
DETAIL = f"{ADDRESS}: Fetching {URL}: Timeout during connect (likely firewall problem)"
FAILED = dataclasses.replace(
    ValidationResult.unreached("fail.example.com", FallbackPolicy.BOULDER, Mode.CANARY),
    problem=Problem(ProblemType.CONNECTION, Reason.CONNECT_TIMEOUT, DETAIL),
    records=(Record(URL, "fail.example.com", 80, (ADDRESS,), ADDRESS, 0, Outcome.FAILED),),
    failed_hop=0,
    aaaa_mismatch=True,
    caa=CaaCheck(("fail.example.com", "example.com", "com"), False, None, "example.com"),
    finished_at=1700000000.0,
)

#: A cell: the tag (th, td), its attributes and those of its row (``tr.class``), its text.
Cell = tuple[str, dict[str, str], str]


class _Tables(HTMLParser):
    """The style sheet, and each table's rows of cells."""

    def __init__(self) -> None:
        super().__init__()
        self.style = ""
        self.tables: list[list[list[Cell]]] = []
        self._in_style = False
        self._row: dict[str, str] = {}
        self._cell: tuple[str, dict[str, str], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "style":
            self._in_style = True
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self._row = {f"tr.{key}": value for key, value in found.items()}
        elif tag in ("th", "td"):
            self._cell = (tag, {**self._row, **found}, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        elif tag in ("th", "td") and self._cell is not None:
            kind, found, text = self._cell
            self.tables[-1][-1].append((kind, found, " ".join("".join(text).split())))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        if self._cell is not None:
            self._cell[2].append(data)


async def landing(*results: ValidationResult, pending: bool = True, down: str = "") -> _Tables:
    """The landing page of an exporter that holds ``results`` (and a domain not validated
    yet); with ``down``, two discovery sources: one up, one down with that error."""
    store = ResultStore()
    store.set_domains([r.domain for r in results] + ["pending.example.com"] * pending)
    for result in results:
        store.record(result)
    state = ServiceState(resolver_validating=True)
    if down:
        state.discovery.get(SourceName.KUBERNETES, "Ingress").up = True
        state.discovery.get(SourceName.FILE, "File").last_error = down
    exporter = SimpleNamespace(
        config=Config(), store=store, state=state, origins={}, acme_servers={}, skipped=[]
    )
    endpoints = Endpoints(cast(Exporter, exporter))
    response = await endpoints.handle(WebRequest("GET", "/", {}, {}))
    assert response.status == 200
    page = _Tables()
    page.feed(response.body.decode())
    return page


DOMAIN_HEADER = [
    "domain",
    "verdict",
    "problem",
    "IPv4 fallback",
    "AAAA mismatch",
    "redirect-hop failure",
    "CAA",
    "certificate",
    "hidden DNS failure",
    "last run",
    "",  # the links
]


async def test_each_cell_of_a_domain_is_under_its_header() -> None:
    table = (await landing(FAILED)).tables[-1]
    header = [text for kind, _, text in table[0] if kind == "th"]
    assert header == DOMAIN_HEADER
    rows: dict[str, dict[str, str]] = {}
    hints: dict[str, list[Cell]] = {}
    for row in table[1:]:
        attributes = row[0][1]
        if attributes["tr.class"] == "hint":
            hints[attributes["tr.data-domain"]] = row
            continue
        assert len(row) == len(header), row  # no cell missing, none too many
        cells = dict(zip(header, (text for _, _, text in row), strict=True))
        rows[attributes["tr.data-domain"]] = cells
    failed = rows["fail.example.com"]
    assert failed["domain"] == "fail.example.com"
    assert failed["verdict"] == "FAIL"
    assert failed["problem"] == f"connection/connect_timeout: {DETAIL}"
    assert (failed["IPv4 fallback"], failed["AAAA mismatch"]) == ("", "yes")
    assert failed["redirect-hop failure"] == ""
    assert failed["CAA"] == "forbids (example.com)"
    assert (failed["certificate"], failed["hidden DNS failure"]) == ("", "")
    assert failed["last run"] == "2023-11-14 22:13:20 UTC"
    assert failed[""] == "trace run now"
    pending = rows["pending.example.com"]
    assert pending["verdict"] == "pending"
    assert [pending[name] for name in header[2:-1]] == [""] * (len(header) - 3)
    # The hint: under the domain nothing, then one cell across every other column.
    under_domain, hint = hints["fail.example.com"]
    assert under_domain[2] == "" and int(hint[1]["colspan"]) == len(header) - 1
    assert hint[2].startswith("Let's Encrypt connects to the first AAAA address first")


async def test_the_style_sheet_names_the_columns_it_means() -> None:
    style = (await landing(FAILED)).style

    def column(pattern: str) -> list[str]:
        found = re.search(pattern, style)
        assert found is not None, pattern
        return [DOMAIN_HEADER[int(n) - 1] for n in found.groups()]

    for state in ("ok", "fail", "pending", "warning"):
        assert column(rf"tr\.{state} td:nth-child\((\d+)\)\{{") == ["verdict"]
    assert column(r"\ntd:nth-child\((\d+)\)\{min-width") == ["problem"]
    assert column(r"td:is\(:nth-child\((\d+)\),:nth-child\((\d+)\)\)") == ["domain", ""]
    assert column(r"td:nth-child\((\d+)\) a\{display:block") == [""]


async def test_an_empty_table_has_one_cell_across_every_column() -> None:
    (table,) = (await landing(pending=False)).tables
    (header, (empty,)) = table[0], table[1:]
    assert [text for _, _, text in header] == DOMAIN_HEADER
    ((_, attributes, text),) = empty
    assert int(attributes["colspan"]) == len(DOMAIN_HEADER)
    assert text == "no domain is configured"


async def test_each_cell_of_a_source_is_under_its_header() -> None:
    sources, _ = (await landing(FAILED, down="no such file")).tables
    header = [text for kind, _, text in sources[0] if kind == "th"]
    assert header == ["source", "state", "objects", "names", "skipped", "last sync", "last error"]
    rows = {}
    for row in sources[1:]:
        assert len(row) == len(header), row
        rows[row[0][2]] = {
            h: (a.get("class"), text) for h, (_, a, text) in zip(header, row, strict=True)
        }
    assert rows["file File"]["state"] == ("down", "DOWN")
    assert rows["file File"]["last error"] == ("", "no such file")
    assert rows["file File"]["last sync"] == ("", "never")
    assert rows["kubernetes Ingress"]["state"] == ("", "up")
    assert {cls for cls, _ in rows["kubernetes Ingress"].values()} == {""}
