"""Reading calls from output, for every format: whole, one character at a time and at every
split point the same; no call markup ever released as content; cut-off calls kept."""

from __future__ import annotations

import pytest

from chatport.service.tools.format import CUSTOM_BLOCK, CallBlock, ToolCallFormat
from chatport.service.tools.hermes import GenericFormat, HermesFormat
from chatport.service.tools.llama3 import Llama3JsonFormat
from chatport.service.tools.mistral import MistralFormat
from chatport.service.tools.parser import CallArguments, CallParser, CallStart, Content, Event

HERMES, GENERIC, LLAMA3, MISTRAL = HermesFormat(), GenericFormat(), Llama3JsonFormat(), MistralFormat()
NAMES = ["get_weather", "get_time", "open_ticket", "say"]
UNLISTED = '<tool_call>\n{"name": "get_stock", "arguments": {"symbol": "X"}}\n</tool_call>'
BARE_UNLISTED = 'Try {"name": "get_stock", "arguments": {"symbol": "X"}}.'
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>\n'
FORCED = (CallStart("get_weather"), CallStart("get_time"), CallStart("open_ticket", custom=True))
WEATHER = ("get_weather", '{"location": "Paris"}')
TIME = ("get_time", '{"city": "Paris"}')
TICKET = ("open_ticket", "TCK-1 <urgent>")

# (format, output, content, calls as (name, arguments))
CASES: list[tuple[ToolCallFormat, str, str, list[tuple[str, str]]]] = [
    (
        HERMES,
        'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>\n',
        "Sure.",
        [WEATHER],
    ),
    (
        HERMES,
        '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>',
        "",
        [WEATHER, TIME],
    ),
    (GENERIC, 'Here:\n```json\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n```', "Here:", [WEATHER]),
    (
        HERMES,
        "Use <tool_call> tags? <tool_call>not json</tool_call> ok",
        "Use <tool_call> tags? <tool_call>not json</tool_call> ok",
        [],
    ),
    (HERMES, 'Ticket: <custom_call name="open_ticket">TCK-1 <urgent></custom_call>', "Ticket:", [TICKET]),
    (HERMES, "Ticket: <custom_call nam", "Ticket:", []),
    (
        HERMES,
        "<custom_call and more text that is not a call at all, clearly",
        "<custom_call and more text that is not a call at all, clearly",
        [],
    ),
    (HERMES, '<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>\n\nDone.', "Done.", [TIME]),
    (LLAMA3, '{"name": "get_weather", "parameters": {"location": "Paris"}}', "", [WEATHER]),
    (LLAMA3, '{"name": "Ada", "age": 36}', '{"name": "Ada", "age": 36}', []),  # JSON, not a call
    (
        MISTRAL,
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, "id": "a1b2c3d4e"}, '
        '{"name": "get_time", "arguments": {"city": "Paris"}}]',
        "",
        [WEATHER, TIME],
    ),
    (MISTRAL, "Plain answer with [brackets] and {braces}.", "Plain answer with [brackets] and {braces}.", []),
    # Cut off by max_tokens: the call keeps the arguments written so far; no markup is content.
    (
        HERMES,
        'Sure. <tool_call>\n{"name": "get_weather", "arguments": {"location": "Pa',
        "Sure.",
        [("get_weather", '{"location": "Pa')],
    ),
    (
        HERMES,
        '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_ti',
        "",
        [WEATHER],
    ),
    (
        MISTRAL,
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}}, {"name": "get_time", "arguments": {"ci',
        "",
        [WEATHER, ("get_time", '{"ci')],
    ),
    (HERMES, '<custom_call name="open_ticket">TCK-1 <urg', "", [("open_ticket", "TCK-1 <urg")]),
    (HERMES, '<tool_call>\n{"name": "get_weather", "argu', "", [("get_weather", "")]),
    (MISTRAL, '[TOOL_CALLS][{"name": "get_time", ', "", [("get_time", "")]),
    (HERMES, 'Sure.\n<tool_call>\n{"na', "Sure.", []),
    (HERMES, "Sure.\n<tool_call>", "Sure.", []),
    # Only a listed tool's whole name makes a call: anything else is content, as written.
    (HERMES, UNLISTED, UNLISTED, []),
    (HERMES, BARE_UNLISTED, BARE_UNLISTED, []),
    (LLAMA3, '{"name": "get_stock", "parameters": {}}', '{"name": "get_stock", "parameters": {}}', []),
    (HERMES, '{"name": "get_weather_now", "arguments": {}}', '{"name": "get_weather_now", "arguments": {}}', []),
    (HERMES, 'Use {"name": "get_w for that.', 'Use {"name": "get_w for that.', []),
    # A tagged block that does not begin as a call is what the model wrote after the tag
    # (SmolLM2 answers a tool result so), whether it closes or runs to the end.
    (
        HERMES,
        'Here:\n<tool_call>\n{"location": "Paris", "temperature": 21}\nIt is 21 C in Paris.',
        'Here:\n<tool_call>\n{"location": "Paris", "temperature": 21}\nIt is 21 C in Paris.',
        [],
    ),
    (
        HERMES,
        '<tool_call>\n{"location": "Paris"}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"city": "Paris"}}\n</tool_call>',
        '<tool_call>\n{"location": "Paris"}\n</tool_call>',
        [TIME],
    ),
    (
        HERMES,
        '<tool_call>\n[{"name": "get_weather", "arguments": {"location": "Paris"}}]\n</tool_call>',
        "",
        [WEATHER],
    ),
    # Several bare calls, fenced one after another or as an array.
    (
        HERMES,
        '```json\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n```\n'
        '```json\n{"name": "get_time", "arguments": {"city": "Paris"}}\n```',
        "",
        [WEATHER, TIME],
    ),
    (
        HERMES,
        '[{"name": "get_weather", "arguments": {"location": "Paris"}}, {"name": "get_time", "arguments": {"city": "Paris"}}]',
        "",
        [WEATHER, TIME],
    ),
    (HERMES, '{\n  "name": "get_time",\n  "arguments": {"city": "Paris"}\n}', "", [TIME]),
    (HERMES, '{ "name" : "get_time", "arguments": {"city": "Paris"}}', "", [TIME]),
    # A bare call cut after its listed name: the call, with no arguments yet.
    (HERMES, 'Here: {"name": "get_time"', "Here:", [("get_time", "")]),
]


def blocks(fmt: ToolCallFormat) -> tuple[CallBlock, ...]:
    return (*fmt.blocks(NAMES), CUSTOM_BLOCK)


def read(
    fmt: ToolCallFormat, pieces: list[str], *, cut: bool = False, forced: tuple[CallStart, ...] = ()
) -> tuple[str, list[tuple[str, str]], list[Event]]:
    parser = CallParser(blocks(fmt), NAMES, forced)
    events: list[Event] = []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.finish(cut=cut)
    content, calls = "", []
    for event in events:
        if isinstance(event, Content):
            content += event.text
        elif isinstance(event, CallStart):
            calls.append([event.name, ""])
        else:
            calls[-1][1] += event.text
    return content, [tuple(c) for c in calls], events


def splits(text: str):
    yield [text]
    yield list(text)
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]


@pytest.mark.parametrize(("fmt", "output", "content", "calls"), CASES)
def test_every_way_of_cutting_the_output_reads_the_same(fmt, output, content, calls):
    for pieces in splits(output):
        assert read(fmt, pieces)[:2] == (content, calls), pieces


@pytest.mark.parametrize(("fmt", "output", "content", "calls"), [c for c in CASES if c[3]])
def test_no_part_of_call_markup_is_ever_content(fmt, output, content, calls):
    _, _, events = read(fmt, list(output))
    shown = "".join(e.text for e in events if isinstance(e, Content))
    assert shown == content
    for marker in ("<tool_call>", "</tool_call>", "[TOOL_CALLS]", "<custom_call", '"arguments"'):
        assert marker not in shown or marker in content


@pytest.mark.parametrize(("fmt", "output", "content", "calls"), CASES)
def test_content_events_say_where_they_sit_in_the_output(fmt, output, content, calls):
    _, _, events = read(fmt, list(output))
    for event in events:
        if isinstance(event, Content):
            assert output[event.start : event.start + len(event.text)] == event.text


def test_arguments_arrive_as_they_are_written():
    output = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}\n</tool_call>'
    _, _, events = read(HERMES, list(output))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "CallStart" and kinds.count("CallArguments") > 10
    assert "".join(e.text for e in events if isinstance(e, CallArguments)) == '{"location": "Paris", "unit": "celsius"}'


def test_string_arguments_and_escapes():
    output = '<tool_call>\n{"name": "say", "arguments": "he said \\"}\\" and left"}\n</tool_call>'
    assert read(HERMES, list(output))[1] == [("say", '"he said \\"}\\" and left"')]


# --- cut off by max_tokens ------------------------------------------------------------------

# (output cut off, content, calls): the start of an opener is never content beside calls.
CUT: list[tuple[str, str, list[tuple[str, str]]]] = [
    (CALL + "<tool", "", [WEATHER]),
    (CALL + "<", "", [WEATHER]),
    ("Sure. <tool_c", "Sure.", []),
    ('Sure. {"name": "get_', "Sure.", []),
    ("Sure. <custom_ca", "Sure.", []),
    ("Sure. 3 < 4", "Sure. 3 < 4", []),
    ('<tool_call>\n{"location": "Pa', '<tool_call>\n{"location": "Pa', []),
]


@pytest.mark.parametrize(("output", "content", "calls"), CUT)
def test_a_cut_off_output_never_ends_in_the_start_of_an_opener(output, content, calls):
    for pieces in splits(output):
        assert read(GENERIC, pieces, cut=True)[:2] == (content, calls), pieces


def test_an_output_that_ends_by_itself_keeps_its_text():
    assert read(GENERIC, ["Compare: a <tool"])[:2] == ("Compare: a <tool", [])


def test_a_required_call_cut_at_every_length_carries_a_listed_name():
    mistral = '[TOOL_CALLS][{"name": "get_time", "arguments": {"city": "Paris"}}]'
    for fmt, call in ((HERMES, CALL), (LLAMA3, '{"name": "get_time", "parameters": {"city": "Paris"}}'), (MISTRAL, mistral)):
        for end in range(len(call) + 1):
            content, calls, _ = read(fmt, [call[:end]], cut=end < len(call), forced=FORCED)
            assert content == "" and len(calls) == 1, (fmt.name, call[:end])
            name, _ = calls[0]
            assert name in NAMES and call.startswith(call[:end]), (fmt.name, call[:end])
            written = call[:end]
            if '"name": "get_t' in written:  # the name begun is the one completed
                assert name == "get_time", written


def test_a_required_custom_call_cut_before_its_name_is_the_custom_call():
    content, calls, events = read(HERMES, ['<custom_call name="open_t'], cut=True, forced=FORCED)
    assert content == "" and calls == [("open_ticket", "")]
    assert any(isinstance(e, CallStart) and e.custom for e in events)


def test_markup_alone_is_markup():
    parser = CallParser(blocks(GENERIC), NAMES)
    parser.feed(CALL[:20])
    parser.finish(cut=True)
    assert parser.markup
    plain = CallParser(blocks(GENERIC), NAMES)
    plain.feed("Hello there.")
    plain.finish()
    assert not plain.markup
