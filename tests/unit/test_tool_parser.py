"""Reading calls back from output, for every format, whole and one character at a time."""

from __future__ import annotations

import pytest

from chatport.service.tools.format import CUSTOM_BLOCK, ParsedCall, ToolCallFormat
from chatport.service.tools.hermes import GenericFormat, HermesFormat
from chatport.service.tools.llama3 import Llama3JsonFormat
from chatport.service.tools.mistral import MistralFormat
from chatport.service.tools.parser import CallParser

WEATHER = ParsedCall("get_weather", '{"location":"Paris"}')
TIME = ParsedCall("get_time", '{"city":"Paris"}')
TICKET = ParsedCall("open_ticket", "TCK-1 <urgent>", custom=True)

CASES: list[tuple[ToolCallFormat, str, str, list[ParsedCall]]] = [
    (
        HermesFormat(),
        'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>\n',
        "Sure.\n",
        [WEATHER],
    ),
    (
        HermesFormat(),
        '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>',
        "",
        [WEATHER, TIME],
    ),
    (GenericFormat(), '```json\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n```', "```json\n", [WEATHER]),
    (
        HermesFormat(),
        "Use <tool_call> tags? <tool_call>not json</tool_call> ok",
        "Use <tool_call> tags? <tool_call>not json</tool_call> ok",
        [],
    ),
    (HermesFormat(), '<tool_call>\n{"name": "get_weather", "argu', '<tool_call>\n{"name": "get_weather", "argu', []),
    (HermesFormat(), 'Ticket: <custom_call name="open_ticket">TCK-1 <urgent></custom_call>', "Ticket: ", [TICKET]),
    (Llama3JsonFormat(), '{"name": "get_weather", "parameters": {"location": "Paris"}}', "", [WEATHER]),
    (
        Llama3JsonFormat(),
        '{"name": "get_weather", "parameters": {"location": "Paris"}} and more',
        '{"name": "get_weather", "parameters": {"location": "Paris"}} and more',
        [],
    ),
    (
        MistralFormat(),
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, "id": "a1b2c3d4e"}, '
        '{"name": "get_time", "arguments": {"city": "Paris"}}]',
        "",
        [WEATHER, TIME],
    ),
    (MistralFormat(), "Plain answer with [brackets] and {braces}.", "Plain answer with [brackets] and {braces}.", []),
    (MistralFormat(), '[TOOL_CALLS][{"name": "get_weather"', '[TOOL_CALLS][{"name": "get_weather"', []),
]


def parse(fmt: ToolCallFormat, pieces: list[str]) -> tuple[str, list[ParsedCall], list[str]]:
    parser = CallParser((*fmt.blocks, CUSTOM_BLOCK))
    content, calls, released = "", [], []
    for piece in pieces:
        text, found = parser.feed(piece)
        content += text
        released.append(text)
        calls += found
    rest, last = parser.finish()
    return content + rest, calls + last, released


@pytest.mark.parametrize(("fmt", "output", "content", "calls"), CASES)
def test_whole_and_one_character_at_a_time_agree(fmt, output, content, calls):
    assert parse(fmt, [output])[:2] == (content, calls)
    assert parse(fmt, list(output))[:2] == (content, calls)


@pytest.mark.parametrize(("fmt", "output", "content", "calls"), [c for c in CASES if c[3]])
def test_no_part_of_a_call_marker_is_ever_released_as_content(fmt, output, content, calls):
    _, _, released = parse(fmt, list(output))
    shown = "".join(released)
    assert shown == content[: len(shown)]
    for block in (*fmt.blocks, CUSTOM_BLOCK):
        assert block.opener not in shown.removeprefix(content) or block.opener in content


def test_a_call_then_more_text_after_it():
    fmt = HermesFormat()
    output = '<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>\n\nDone.'
    assert parse(fmt, list(output))[:2] == ("Done.", [TIME])
