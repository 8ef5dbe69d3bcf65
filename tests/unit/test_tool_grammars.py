"""The grammars tool_choice imposes, run by llguidance on a byte vocabulary: each format's
call text is accepted, anything else is not."""

from __future__ import annotations

import json
import re

import pytest

from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.json_grammar import grammar_schema
from chatport.service.tools.format import MAX_PARALLEL_CALLS, ToolCallFormat
from chatport.service.tools.grammar import answer_or_calls_grammar, required_grammar, triggered_grammars
from chatport.service.tools.hermes import HermesFormat
from chatport.service.tools.llama3 import Llama3JsonFormat
from chatport.service.tools.mistral import MistralFormat
from chatport.service.tools.plan import ToolPlan, plan_tools
from tests.support.bytes_vocab import accepts
from tests.support.tools import WEATHER

COUNTER = {
    "type": "function",
    "function": {"name": "count", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
}
TICKET = {
    "type": "custom",
    "custom": {
        "name": "open_ticket",
        "format": {"type": "grammar", "grammar": {"syntax": "regex", "definition": "TCK-[0-9]{4}"}},
    },
}


def plan(**body) -> ToolPlan:
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})
    result = plan_tools(request)
    assert result is not None
    return result


def required(fmt: ToolCallFormat, **body) -> str:
    return required_grammar(plan(tool_choice="required", **body), fmt, json.dumps)


ARGS = '{"location":"Paris","unit":"celsius"}'
CALLS = {
    "hermes": f'<tool_call>\n{{"name":"get_weather","arguments":{ARGS}}}\n</tool_call>\n',
    "llama3-json": f'{{"name":"get_weather","parameters":{ARGS}}}',
    "mistral": f'[TOOL_CALLS][{{"name":"get_weather","arguments":{ARGS}}}]',
}
FORMATS = [HermesFormat(), Llama3JsonFormat(), MistralFormat()]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_a_required_call_follows_the_format_and_the_schema(fmt):
    grammar = required(fmt, tools=[WEATHER])
    assert accepts(grammar, CALLS[fmt.name])
    assert not accepts(grammar, "Sure, the weather is nice.")
    assert not accepts(grammar, CALLS[fmt.name].replace('"celsius"', '"kelvin"'))  # outside the enum
    assert not accepts(grammar, CALLS[fmt.name].replace("get_weather", "get_time"))  # not a tool


def test_parallel_calls_go_as_far_as_the_request_allows_and_parallel_false_allows_one():
    one = CALLS["hermes"]
    assert accepts(required(HermesFormat(), tools=[WEATHER]), one * 8)
    assert not accepts(required(HermesFormat(), tools=[WEATHER]), one * (MAX_PARALLEL_CALLS + 1))
    assert not accepts(required(HermesFormat(), tools=[WEATHER], parallel_tool_calls=False), one * 2)
    call = f'{{"name":"get_weather","arguments":{ARGS}}}'
    assert accepts(required(MistralFormat(), tools=[WEATHER]), f"[TOOL_CALLS][{call}, {call}]")
    assert not accepts(required(MistralFormat(), tools=[WEATHER], parallel_tool_calls=False), f"[TOOL_CALLS][{call}, {call}]")


def test_a_custom_tool_input_follows_its_own_grammar():
    grammar = required(HermesFormat(), tools=[WEATHER, TICKET])
    assert accepts(grammar, '<custom_call name="open_ticket">TCK-1234</custom_call>')
    assert not accepts(grammar, '<custom_call name="open_ticket">TCK-12</custom_call>')
    assert accepts(grammar, CALLS["hermes"] + '<custom_call name="open_ticket">TCK-0001</custom_call>')


def test_allowed_tools_narrow_the_grammar():
    time_tool = json.loads(json.dumps(WEATHER).replace("get_weather", "get_time"))
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "get_time"}}]},
    }
    grammar = required_grammar(plan(tools=[WEATHER, time_tool], tool_choice=allowed), HermesFormat(), json.dumps)
    assert accepts(grammar, CALLS["hermes"].replace("get_weather", "get_time"))
    assert not accepts(grammar, CALLS["hermes"])


# What a model writes in auto mode, one sample per trigger of each format (with spaces
# after colons and commas, as models write JSON).
SPACED = '{"location": "Paris", "unit": "celsius"}'
WRITTEN = {
    "hermes": [
        f'Let me check.\n<tool_call>\n{{"name": "get_weather", "arguments": {SPACED}}}\n</tool_call>\n',
        f'{{"name": "get_weather", "arguments": {SPACED}}}',
        f'```json\n{{\n  "name": "get_weather",\n  "arguments": {SPACED}\n}}\n```',
        f'[{{"name": "get_weather", "arguments": {SPACED}}}, {{"name": "get_weather", "arguments": {ARGS}}}]',
        f'```json\n{{"name": "get_weather", "arguments": {SPACED}}}\n```\n```json\n{{"name": "get_weather", "arguments": {ARGS}}}\n```',
        'Ticket: <custom_call name="open_ticket">TCK-9999</custom_call>',
    ],
    "llama3-json": [
        f'{{"name": "get_weather", "parameters": {SPACED}}}',
        '<custom_call name="open_ticket">TCK-9999</custom_call>',
    ],
    "mistral": [
        f'[TOOL_CALLS][{{"name": "get_weather", "arguments": {SPACED}}}]',
        '<custom_call name="open_ticket">TCK-0001</custom_call>',
    ],
}


def triggered(fmt: ToolCallFormat, text: str, lazy: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(grammar, the text it takes) for the earliest trigger ``text`` matches, as the engine finds it."""
    hits = [(m.start(), m, g) for p, g in lazy if (m := re.search(p, text))]
    if not hits:
        return None
    _, match, grammar = min(hits, key=lambda h: h[0])
    start = match.start("call") if "call" in match.re.groupindex else match.end()
    return grammar, text[start:]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_auto_mode_grammars_take_over_once_a_listed_name_is_written(fmt):
    lazy = triggered_grammars(plan(tools=[WEATHER, TICKET]), fmt, json.dumps)
    for text in WRITTEN[fmt.name]:
        hit = triggered(fmt, text, lazy)
        assert hit is not None, text
        grammar, rest = hit
        assert accepts(grammar, rest), text
        broken = rest.replace('"unit": "celsius"', '"unit": "kelvin"').replace("TCK-", "TICKET-")
        assert not accepts(grammar, broken), text
        # A tool that is not listed triggers nothing: the model's text stays its own.
        assert triggered(fmt, text.replace("get_weather", "get_time").replace("open_ticket", "close_ticket"), lazy) is None


def test_a_bare_call_may_not_run_on_after_its_object():
    grammar = dict((p, g) for p, g in triggered_grammars(plan(tools=[WEATHER]), HermesFormat(), json.dumps))
    bare = next(g for p, g in grammar.items() if not p.startswith("<"))
    assert not accepts(bare, f'{{"name": "get_weather", "arguments": {ARGS}}} and then some words')


def test_bare_calls_end_at_a_newline_and_repeat_only_in_fences():
    grammar = dict((p, g) for p, g in triggered_grammars(plan(tools=[WEATHER]), HermesFormat(), json.dumps))
    bare = next(g for p, g in grammar.items() if not p.startswith("<"))
    call = f'{{"name": "get_weather", "arguments": {ARGS}}}'
    assert accepts(bare, call + "\n")  # Qwen's `"}}\n` token, then the end
    assert accepts(bare, call + "\n```\n")
    assert accepts(bare, f"{call}\n```\n```json\n{call}\n```")
    # On a plain new line, `{"` is not read as a second call: the model was writing the
    # tool result it imagined, and a grammar that took it for a call forced call after call.
    assert not accepts(bare, f"{call}\n{call}")


def test_beside_a_schema_the_answer_or_a_call():
    answer = grammar_schema(
        {"type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"]}, lenient=False
    )
    for fmt in FORMATS:
        grammar = answer_or_calls_grammar(plan(tools=[WEATHER]), fmt, json.dumps, answer)
        assert accepts(grammar, '{"result": 42}'), fmt.name
        assert accepts(grammar, CALLS[fmt.name]), fmt.name
        if fmt.bare_rule:
            assert accepts(grammar, f'{{"name": "get_weather", "arguments": {SPACED}}}'), fmt.name
        assert not accepts(grammar, "The result is 42."), fmt.name
        assert not accepts(grammar, '{"result": "42"}'), fmt.name


def test_numbers_and_whitespace_are_bounded_in_calls():
    grammar = required(HermesFormat(), tools=[WEATHER, COUNTER])
    call = '<tool_call>\n{"name": "count", "arguments": {"n": %s}}\n</tool_call>'
    assert accepts(grammar, call % ("9" * 16))
    assert not accepts(grammar, call % ("9" * 17))
    assert accepts(grammar, call.replace('"n": ', '"n":\n    ') % "1")
    assert not accepts(grammar, call.replace('"n": ', '"n":  ') % "1")  # two spaces: no run of whitespace


def test_nested_and_recursive_schemas_compile_and_hold_in_every_form():
    tree = {
        "type": "function",
        "function": {
            "name": "plant",
            "parameters": {
                "type": "object",
                "properties": {"root": {"$ref": "#/$defs/Node"}, "owner": {"$ref": "#/definitions/Person"}},
                "required": ["root", "owner"],
                "$defs": {
                    "Node": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                        },
                        "required": ["name", "children"],
                    }
                },
                "definitions": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
            },
        },
    }
    args = '{"root": {"name": "a", "children": [{"name": "b", "children": []}]}, "owner": {"name": "Ada"}}'
    bad = '{"root": {"name": "a", "children": [{"name": "b"}]}, "owner": {"name": "Ada"}}'
    calls = {
        "hermes": '<tool_call>\n{"name": "plant", "arguments": %s}\n</tool_call>',
        "llama3-json": '{"name": "plant", "parameters": %s}',
        "mistral": '[TOOL_CALLS][{"name": "plant", "arguments": %s}]',
    }
    for fmt in FORMATS:
        grammar = required(fmt, tools=[tree])
        assert accepts(grammar, calls[fmt.name] % args), fmt.name
        assert not accepts(grammar, calls[fmt.name] % bad), fmt.name
    bare = dict(triggered_grammars(plan(tools=[tree]), HermesFormat(), json.dumps))
    hit = triggered(HermesFormat(), f'{{"name": "plant", "arguments": {args}}}', list(bare.items()))
    assert hit is not None and accepts(*hit)


def test_no_grammar_when_tools_are_off():
    assert not plan(tools=[WEATHER], tool_choice="none").active


def test_values_a_schema_leaves_open_have_bounded_numbers_too():
    import llguidance as llg

    loose = {
        "type": "function",
        "function": {
            "name": "log",
            "parameters": {"type": "object", "properties": {"tags": {"type": "array"}, "extra": {}}, "required": ["tags"]},
        },
    }
    grammar = required(HermesFormat(), tools=[loose])
    call = '<tool_call>\n{"name": "log", "arguments": %s}\n</tool_call>'
    assert accepts(grammar, call % '{"tags": [1, "a", {"k": [2.5, null]}], "extra": {"x": true}}')
    assert not accepts(grammar, call % '{"tags": [], "other": 7}')  # listed properties only, as llama.cpp
    for endless in ('{"tags": [%s]}', '{"tags": [], "extra": %s}', '{"tags": [], "extra": {"deep": [%s]}}'):
        assert accepts(grammar, call % (endless % ("9" * 16)))
        assert not accepts(grammar, call % (endless % ("9" * 17))), endless
    answer = str(llg.LLMatcher.grammar_from_json_schema(grammar_schema({"type": "object"}, lenient=False)))
    assert accepts(answer, '{"a": {"b": {"c": {"d": [1, {"e": null}]}}}}')  # json_object: any depth
    assert not accepts(answer, '{"population": %s}' % ("1" * 17))
