"""The runbook's Markdown renderer: just what the runbook uses, everything else escaped."""

from __future__ import annotations

from exporter.markdown import anchor, render


def test_headings_carry_their_anchor() -> None:
    assert anchor("AcmeHttp01RenewalAtRisk") == "acmehttp01renewalatrisk"
    assert anchor("What it means") == "what-it-means"
    assert render("## AcmeHttp01RenewalAtRisk") == (
        '<h2 id="acmehttp01renewalatrisk">AcmeHttp01RenewalAtRisk</h2>'
    )


def test_paragraphs_lists_and_code() -> None:
    text = (
        "Intro line one\nline two with `code` and **bold**.\n\n"
        "- first item\n  continued\n- second [docs](https://letsencrypt.org/docs/)\n\n"
        "```sh\nacme-http01-exporter check <domain>\n```\n"
    )
    assert render(text) == (
        "<p>Intro line one line two with <code>code</code> and <b>bold</b>.</p>\n"
        "<ul>\n<li>first item continued</li>\n"
        '<li>second <a href="https://letsencrypt.org/docs/">docs</a></li>\n</ul>\n'
        "<pre><code>\nacme-http01-exporter check &lt;domain&gt;\n</code></pre>"
    )


def test_html_and_unsafe_links_are_escaped() -> None:
    assert render("<script>x</script> [a](javascript:alert(1))") == (
        "<p>&lt;script&gt;x&lt;/script&gt; [a](javascript:alert(1))</p>"
    )
