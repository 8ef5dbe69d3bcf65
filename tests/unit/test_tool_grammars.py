"""The grammars tool_choice imposes, run by llguidance on a byte vocabulary: each format's
call text is accepted, anything else is not."""

from __future__ import annotations

import json

import pytest

from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.tools.format import ToolCallFormat
from chatport.service.tools.grammar import tool_grammars
from chatport.service.tools.hermes import HermesFormat
from chatport.service.tools.llama3 import Llama3JsonFormat
from chatport.service.tools.mistral import MistralFormat
from chatport.service.tools.plan import ToolPlan, plan_tools
from tests.support.bytes_vocab import accepts
from tests.support.tools import WEATHER

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
    grammar, lazy = tool_grammars(plan(tool_choice="required", **body), fmt, json.dumps)
    assert grammar is not None and lazy == []
    return grammar


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


def test_parallel_calls_stop_at_four_and_parallel_false_allows_one():
    one = CALLS["hermes"]
    assert accepts(required(HermesFormat(), tools=[WEATHER]), one * 4)
    assert not accepts(required(HermesFormat(), tools=[WEATHER]), one * 5)
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
    grammar, _ = tool_grammars(plan(tools=[WEATHER, time_tool], tool_choice=allowed), HermesFormat(), json.dumps)
    assert grammar is not None
    assert accepts(grammar, CALLS["hermes"].replace("get_weather", "get_time"))
    assert not accepts(grammar, CALLS["hermes"])


# What the model writes after each trigger, once the grammar has taken over.
AFTER_TRIGGER = {
    "<tool_call>": CALLS["hermes"].removeprefix("<tool_call>"),
    '{"name"': f': "get_weather", "arguments": {ARGS}}}',
    '{\n  "name"': f': "get_weather", "arguments": {ARGS}}}\n```',
    '{\n    "name"': f':"get_weather",\n  "arguments": {ARGS}\n}}',
    "[TOOL_CALLS]": CALLS["mistral"].removeprefix("[TOOL_CALLS]"),
    "<custom_call": ' name="open_ticket">TCK-9999</custom_call>',
}


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_auto_mode_grammars_take_over_after_each_trigger(fmt):
    grammar, lazy = tool_grammars(plan(tools=[WEATHER, TICKET]), fmt, json.dumps)
    assert grammar is None
    triggers = dict(lazy)
    assert set(triggers) == {t.text for t in fmt.triggers()} | {"<custom_call"}
    for trigger, rest in triggers.items():
        after = AFTER_TRIGGER[trigger]
        if fmt.name == "llama3-json" and trigger == '{"name"':
            after = f': "get_weather", "parameters": {ARGS}}}'
        assert accepts(rest, after), trigger
        unknown_tool = after.replace("get_weather", "get_time").replace("open_ticket", "close_ticket")
        assert not accepts(rest, unknown_tool), trigger


def test_no_grammar_when_tools_are_off():
    assert tool_grammars(plan(tools=[WEATHER], tool_choice="none"), HermesFormat(), json.dumps) == (None, [])
