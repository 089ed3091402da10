"""The runbook served at ``/runbook``, rendered from Markdown by markdown-it-py.

Rule: CommonMark as markdown-it-py parses it, with raw HTML in the source shown as
text, never passed through, and links to ``javascript:``, ``vbscript:``, ``file:`` or
``data:`` left as text (markdown-it-py's own link check). Each heading carries an
``id``: its slug as GitHub makes it for a Markdown file, so that an alert's section
has the same anchor on the page as in the repository, where the alert rules'
``runbook_url`` points (``## AcmeHttp01RenewalAtRisk`` -> ``#acmehttp01renewalatrisk``).

markdown-it-py is imported on the first render, not with the exporter: the page is
rendered once, when it is first asked for.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_core import StateCore

__all__ = ["anchor", "render"]

# What GitHub drops from a heading's text to make its anchor: all but letters, digits,
# underscores, hyphens and spaces.
_NOT_IN_SLUG = re.compile(r"[^\w\- ]")


def anchor(heading: str) -> str:
    """The slug of a heading's text: ``What it means`` -> ``what-it-means``."""
    return _NOT_IN_SLUG.sub("", heading.strip().lower()).replace(" ", "-")


def _heading_ids(state: StateCore) -> None:
    """Give each heading its ``id``; a repeated slug gets ``-1``, ``-2``... as on GitHub."""
    seen: dict[str, int] = {}
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        inline = tokens[index + 1]
        text = "".join(
            " " if child.type in ("softbreak", "hardbreak") else child.content
            for child in inline.children or []
            if child.type in ("text", "code_inline", "softbreak", "hardbreak")
        )
        slug = base = anchor(text)
        while slug in seen:
            seen[base] += 1
            slug = f"{base}-{seen[base]}"
        seen[slug] = 0
        token.attrSet("id", slug)


@functools.cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False, "xhtmlOut": False})
    parser.core.ruler.push("heading_ids", _heading_ids)
    return parser


def render(text: str) -> str:
    """The HTML body for the Markdown ``text``."""
    html: str = _parser().render(text)  # typed Any: the renderer is pluggable
    return html
