"""A small Markdown-to-HTML renderer for the runbook served at ``/runbook``.

Rule: pure, and only what the runbook uses: ``#`` headings (each with an ``id``,
its text lowercased with spaces as dashes, so an alert's heading is its anchor),
paragraphs, ``-``/``*`` bullet lists, fenced code blocks, and inline ``code``,
``**bold**`` and ``[links](url)``. Everything else is escaped text.
"""

from __future__ import annotations

import html
import re

__all__ = ["anchor", "render"]

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """The ``id`` of a heading: ``AcmeHttp01RenewalAtRisk`` -> ``acmehttp01renewalatrisk``."""
    return re.sub(r"[^a-z0-9_-]", "", heading.strip().lower().replace(" ", "-"))


def _inline(text: str) -> str:
    out, last = [], 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        code, bold, label, url = match.groups()
        if code is not None:
            out.append(f"<code>{html.escape(code)}</code>")
        elif bold is not None:
            out.append(f"<b>{html.escape(bold)}</b>")
        elif url.startswith(("http://", "https://", "#", "/")):
            out.append(f'<a href="{html.escape(url)}">{html.escape(label)}</a>')
        else:
            out.append(html.escape(match.group(0)))
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def render(text: str) -> str:
    """The HTML body for ``text``."""
    out: list[str] = []
    paragraph: list[str] = []
    in_list = False
    in_code = False

    def flush() -> None:
        nonlocal in_list
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in text.splitlines():
        if in_code:
            if line.startswith("```"):
                out.append("</code></pre>")
                in_code = False
            else:
                out.append(html.escape(line))
            continue
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            out.append("<pre><code>")
            in_code = True
        elif heading := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            flush()
            level, title = len(heading.group(1)), heading.group(2)
            out.append(f'<h{level} id="{anchor(title)}">{_inline(title)}</h{level}>')
        elif item := re.match(r"^[-*]\s+(.*)$", stripped):
            if paragraph:
                out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
                paragraph.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(item.group(1))}</li>")
        elif not stripped:
            flush()
        elif in_list and line.startswith((" ", "\t")):
            out[-1] = out[-1].removesuffix("</li>") + " " + _inline(stripped) + "</li>"
        else:
            if in_list:
                out.append("</ul>")
                in_list = False
            paragraph.append(stripped)
    if in_code:
        out.append("</code></pre>")
    flush()
    return "\n".join(out)
