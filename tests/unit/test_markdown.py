"""The runbook page: an anchor for every alert, where its runbook_url points; raw HTML in
the Markdown shown as text, never passed through; code blocks kept verbatim."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import yaml

from exporter.markdown import anchor, render

ROOT = Path(__file__).resolve().parents[2]


def ids(page: str) -> list[str]:
    return re.findall(r'<h[1-6] id="([^"]*)">', page)


def test_every_alerts_runbook_url_lands_on_its_section() -> None:
    rules = yaml.safe_load((ROOT / "grafana" / "rules.yaml").read_text())
    links = {
        rule["alert"]: rule["annotations"]["runbook_url"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    page = render((ROOT / "exporter" / "runbook.md").read_text(encoding="utf-8"))
    assert len(links) > 10
    for alert, url in links.items():
        fragment = urllib.parse.urlsplit(url).fragment
        assert fragment == alert.lower(), alert
        assert f'<h2 id="{fragment}">{alert}</h2>' in page, alert
    # Anchors are unique on the page.
    assert len(ids(page)) == len(set(ids(page)))


def test_anchors_are_githubs_slugs() -> None:
    assert anchor("AcmeHttp01RenewalAtRisk") == "acmehttp01renewalatrisk"
    assert anchor("What it means") == "what-it-means"
    assert anchor("Fix (IPv6) & DNS!") == "fix-ipv6--dns"
    assert anchor("under_score and-hyphen") == "under_score-and-hyphen"
    assert anchor("Ünïcode") == "ünïcode"
    # The slug is of the heading's text, without its markup.
    page = render("## `check` and **bold** [docs](https://letsencrypt.org/docs/)\n")
    assert ids(page) == ["check-and-bold-docs"]
    # A repeated heading gets -1, -2, as GitHub numbers them.
    assert ids(render("# Fix\n\n## Fix\n\n## Fix\n\n## Other\n")) == [
        "fix",
        "fix-1",
        "fix-2",
        "other",
    ]


def test_commonmark_blocks_and_inlines() -> None:
    text = (
        "Intro line one\nline two with `code` and **bold**.\n\n"
        "- first item\n  continued\n- second [docs](https://letsencrypt.org/docs/)\n"
    )
    assert render(text) == (
        "<p>Intro line one\nline two with <code>code</code> and <strong>bold</strong>.</p>\n"
        "<ul>\n<li>first item\ncontinued</li>\n"
        '<li>second <a href="https://letsencrypt.org/docs/">docs</a></li>\n</ul>\n'
    )


def test_code_blocks_are_verbatim_and_escaped() -> None:
    text = "```sh\nacme-http01-exporter check <domain> && echo **done**\n  indented `x`\n```\n"
    assert render(text) == (
        '<pre><code class="language-sh">'
        "acme-http01-exporter check &lt;domain&gt; &amp;&amp; echo **done**\n"
        "  indented `x`\n"
        "</code></pre>\n"
    )


def test_raw_html_is_shown_as_text() -> None:
    page = render(
        "<script>alert(1)</script>\n\n"
        'Inline <img src=x onerror="alert(1)"> and <a href="javascript:alert(1)">a</a>.\n\n'
        "## <b>Heading</b>\n"
    )
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "<a " not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert '<h2 id="bheadingb">&lt;b&gt;Heading&lt;/b&gt;</h2>' in page


def test_unsafe_links_are_not_links() -> None:
    for url in ("javascript:alert(1)", "vbscript:msgbox(1)", "data:text/html;base64,PHNjcmlwdD4="):
        assert "<a " not in render(f"[a]({url})\n"), url
    # A quote in a URL cannot end the attribute.
    page = render('[a](https://example.com/"onmouseover=alert(1))\n')
    assert page == '<p><a href="https://example.com/%22onmouseover=alert(1)">a</a></p>\n'
