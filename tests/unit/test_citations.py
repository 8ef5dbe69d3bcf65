"""The citation rewriter (service/search/citations.py) over whole answers and over the
same answers split into pieces at every position, as streamed tokens split them."""

from __future__ import annotations

import pytest

from chatport.service.search.citations import CitationWriter
from chatport.service.search.sources import Source

SOURCES = [
    Source(1, "Paris - Wikipedia", "https://en.wikipedia.org/wiki/Paris", "Paris is the capital of France."),
    Source(2, "France [official]", "https://example.org/fr (info)", "France is in Europe."),
    Source(12, "Twelfth", "https://twelve.example/", "The twelfth source."),
]


def rewrite(pieces: list[str]) -> tuple[str, list[dict]]:
    writer = CitationWriter(SOURCES)
    text = "".join(writer.feed(piece) for piece in pieces) + writer.finish()
    assert writer.written == len(text)
    return text, writer.annotations


def spans(text: str, annotations: list[dict]) -> list[str]:
    return [text[a["url_citation"]["start_index"] : a["url_citation"]["end_index"]] for a in annotations]


def every_split(answer: str) -> list[list[str]]:
    return [[answer[:k], answer[k:]] for k in range(len(answer) + 1)] + [list(answer)]


@pytest.mark.parametrize(
    "answer",
    [
        "Paris is the capital of France [1].",
        "It is in Europe [2] and has the twelfth [12].",
        "Both [1, 2] say so; see also [1][12].",
        "🇫🇷 Paris 🗼 [1] is ünïcode-heavy [2].",
        "Code `a[1]` and\n```\nx = y[2]\n```\nstay [1].",
        "Unknown [7] goes, known [1] stays.",
        "No citation at all.",
        "Cut at the end [1",
    ],
)
def test_any_split_gives_the_whole_answers_text_and_spans(answer):
    whole = rewrite([answer])
    for pieces in every_split(answer):
        assert rewrite(pieces) == whole, pieces
    text, annotations = whole
    assert annotations, "every searched answer carries an annotation"
    for span, annotation in zip(spans(text, annotations), annotations, strict=True):
        citation = annotation["url_citation"]
        assert annotation["type"] == "url_citation"
        assert span.startswith("[") and span.endswith(")")
        assert {s.url: s.title for s in SOURCES}[citation["url"]] == citation["title"]


def test_markers_become_links_and_unknown_ones_go_with_their_space():
    text, annotations = rewrite(["Paris is the capital [1]. Unknown [7] goes."])
    assert text == "Paris is the capital ([Paris - Wikipedia](https://en.wikipedia.org/wiki/Paris)). Unknown goes."
    assert annotations == [
        {
            "type": "url_citation",
            "url_citation": {
                "start_index": 22,
                "end_index": 22 + len("[Paris - Wikipedia](https://en.wikipedia.org/wiki/Paris)"),
                "url": "https://en.wikipedia.org/wiki/Paris",
                "title": "Paris - Wikipedia",
            },
        }
    ]


def test_titles_and_urls_are_escaped_in_the_link_and_kept_in_the_annotation():
    text, annotations = rewrite(["In Europe [2]."])
    assert text == "In Europe ([France \\[official\\]](https://example.org/fr%20%28info%29))."
    assert annotations[0]["url_citation"]["url"] == "https://example.org/fr (info)"
    assert annotations[0]["url_citation"]["title"] == "France [official]"


def test_a_marker_split_inside_its_number_is_held_back_until_complete():
    writer = CitationWriter(SOURCES)
    assert writer.feed("See [1") == "See"
    assert writer.feed("2") == ""
    out = writer.feed("] now")
    assert out == " ([Twelfth](https://twelve.example/)) now"


def test_offsets_count_code_points_after_emoji():
    text, annotations = rewrite(["😀😀 [1]"])
    start = annotations[0]["url_citation"]["start_index"]
    assert start == 4  # two emoji, a space, the parenthesis: code points, not UTF-16 units or bytes
    assert text[start:].startswith("[Paris - Wikipedia]")


def test_an_answer_without_citations_ends_with_its_sources_each_annotated():
    text, annotations = rewrite(["Nothing cited."])
    assert text.startswith("Nothing cited.\n\nSources: [Paris - Wikipedia](https://en.wikipedia.org/wiki/Paris), ")
    assert [a["url_citation"]["url"] for a in annotations] == [s.url for s in SOURCES]


def test_indexing_and_code_are_not_citations():
    text, annotations = rewrite(["a[1] f(x)[2] `[1]`\n```\n[2]\n```\n"])
    assert text.startswith("a[1] f(x)[2] `[1]`\n```\n[2]\n```\n\n\nSources:")
    assert len(annotations) == len(SOURCES)


def test_an_empty_answer_gets_no_sources_line():
    assert rewrite([""]) == ("", [])
