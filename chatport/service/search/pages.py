"""A fetched result page -> its readable text: markup, scripts, styles and navigation
dropped, the main content (``<main>`` or ``<article>`` where a page marks it) kept, blank
runs folded. Runs in a worker pool on a body the fetcher has already capped in size; the
parser (Lexbor, through selectolax) is linear in the page."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

# Elements whose text is never the page's content.
_NOISE = ("script", "style", "noscript", "template", "svg", "canvas", "iframe", "nav", "header", "footer", "aside", "form")
_BLOCKS = "p,h1,h2,h3,h4,h5,h6,li,div,br,tr,td,th,pre,blockquote,section,article,dd,dt,table,ul,ol"
_BLANKS = re.compile(r"[ \t\r\f\v]*\n[ \t\r\f\v\n]*")
_SPACES = re.compile(r"[ \t\r\f\v]+")

PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


def page_text(body: bytes, content_type: str | None) -> str:
    """The text of a page whose type is one of ``PAGE_TYPES`` (None: sniffed as HTML)."""
    if content_type == "text/plain":
        text = body.decode("utf-8", errors="replace")
    else:
        tree = LexborHTMLParser(body.decode("utf-8", errors="replace"))
        for tag in _NOISE:
            for node in tree.css(tag):
                node.decompose()
        for node in tree.css(_BLOCKS):  # a block ends a line; inline markup does not
            node.insert_after("\n")
        root = tree.css_first("main") or tree.css_first("article") or tree.body or tree.root
        text = root.text(separator="") if root is not None else ""
    lines = (_SPACES.sub(" ", line).strip() for line in _BLANKS.sub("\n", text).split("\n"))
    return "\n".join(line for line in lines if line)
