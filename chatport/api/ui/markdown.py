"""Markdown to HTML for the web UI's answers, rendered on the server so the page needs no
script from elsewhere: markdown-it-py (CommonMark, tables, strikethrough) with raw HTML
off, so a model's output can never become markup, and images off, so an answer cannot
make the page fetch an address (a prompt-injected image URL that carries data away), and Pygments for code blocks, marked
with classes (the page's Content-Security-Policy allows no inline styles)."""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

# Where Pygments' classes apply: code blocks inside rendered answers.
CODE_SCOPE = ".md pre"


def _highlight(code: str, lang: str, _attrs: str) -> str:
    if not lang:
        return ""  # markdown-it escapes it as plain code
    try:
        lexer = get_lexer_by_name(lang.split()[0])
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, HtmlFormatter(nowrap=True)))


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
        .enable(["table", "strikethrough"])
        .disable("image")
    )


def render(text: str) -> str:
    html: str = _renderer().render(text)
    return html


@lru_cache(maxsize=1)
def code_css() -> str:
    """The stylesheet for the classes ``render`` puts on code."""
    return str(HtmlFormatter(style="default").get_style_defs(CODE_SCOPE))
