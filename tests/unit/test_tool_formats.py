"""Tool-call formats against the real chat templates of their families (templates are
text; no weights needed): the right format is chosen, an earlier call renders in the
family's own syntax, and that syntax parses back to the same call."""

from __future__ import annotations

import json
import re

import pytest

from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.messages import to_template_messages
from chatport.service.template import CHATML, ChatTemplate
from chatport.service.tools import add_tool_notes, format_for
from chatport.service.tools.format import CUSTOM_BLOCK
from chatport.service.tools.hermes import GenericFormat, HermesFormat
from chatport.service.tools.llama3 import Llama3JsonFormat
from chatport.service.tools.mistral import MistralFormat, mistral_id
from chatport.service.tools.parser import CallArguments, CallParser, CallStart, Content
from chatport.service.tools.plan import plan_tools
from tests.support.templates import family_template

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
CALL_ID = "call_" + "x" * 24
BODY = {
    "model": "m",
    "tools": [WEATHER],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": CALL_ID, "content": '{"temperature": 21}'},
    ],
}

# Where each family's template writes the assistant's call.
ASSISTANT_TURN = {
    "llama3.2": r"<\|start_header_id\|>assistant<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>",
    "mistral-nemo": r"\[/INST\](\[TOOL_CALLS\].*?)</s>",
    "qwen2.5": r"<\|im_start\|>assistant\n(.*?)<\|im_end\|>",
    "qwen3": r"<\|im_start\|>assistant\n(.*?)<\|im_end\|>",
}
EXPECTED_FORMAT = {"llama3.2": Llama3JsonFormat, "mistral-nemo": MistralFormat, "qwen2.5": HermesFormat, "qwen3": HermesFormat}


def render(family: str) -> tuple[str, object]:
    tpl = family_template(family)
    fmt = format_for(tpl.source)
    request = ChatCompletionRequest.model_validate(BODY)
    plan = plan_tools(request)
    assert plan is not None
    template = ChatTemplate(tpl.source, bos_token=tpl.bos_token, eos_token=tpl.eos_token)
    messages = to_template_messages(request.messages, model="m", template=template)
    messages = fmt.prepare_history(add_tool_notes(messages, plan, fmt))
    return template.render(messages, tools=plan.template_tools if fmt.native else None), fmt


@pytest.mark.parametrize("family", list(EXPECTED_FORMAT))
def test_the_template_picks_its_familys_format(family):
    assert type(format_for(family_template(family).source)) is EXPECTED_FORMAT[family]


def test_templates_without_tools_get_the_generic_format():
    assert type(format_for(CHATML)) is GenericFormat
    assert type(format_for(None)) is GenericFormat


@pytest.mark.parametrize("family", list(EXPECTED_FORMAT))
def test_an_earlier_call_renders_in_the_familys_syntax_and_parses_back(family):
    text, fmt = render(family)
    assert "get_weather" in text and "Get the weather" in text  # the tool definitions
    assert "21" in text  # the tool result
    (turn,) = re.findall(ASSISTANT_TURN[family], text, re.DOTALL)
    parser = CallParser((*fmt.blocks(["get_weather"]), CUSTOM_BLOCK), ["get_weather"])
    events = parser.feed(turn) + parser.finish()
    assert not [e for e in events if isinstance(e, Content)]
    names = [e.name for e in events if isinstance(e, CallStart)]
    arguments = "".join(e.text for e in events if isinstance(e, CallArguments))
    assert (names, json.loads(arguments)) == (["get_weather"], {"location": "Paris"})


def test_mistral_ids_are_nine_characters_and_the_result_names_the_same_call():
    text, _ = render("mistral-nemo")
    short = mistral_id(CALL_ID)
    assert re.fullmatch(r"[a-zA-Z0-9]{9}", short)
    assert f'"id": "{short}"' in text and f'"call_id": "{short}"' in text
    assert mistral_id(CALL_ID) == short != mistral_id(CALL_ID + "y")


def test_the_generic_format_writes_earlier_calls_into_the_content():
    template = ChatTemplate(CHATML)
    request = ChatCompletionRequest.model_validate(BODY)
    plan = plan_tools(request)
    assert plan is not None
    fmt = GenericFormat()
    messages = fmt.prepare_history(
        add_tool_notes(to_template_messages(request.messages, model="m", template=ChatTemplate(CHATML)), plan, fmt)
    )
    text = template.render(messages)
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>' in text
    assert text.startswith("<|im_start|>system\nYou can call functions")


@pytest.mark.parametrize("family", list(EXPECTED_FORMAT))
def test_call_markers_that_are_control_tokens_are_the_ones_shown_in_output(family):
    tpl = family_template(family)
    fmt = format_for(tpl.source)
    for marker in fmt.markers:
        assert tpl.added_tokens.get(marker) is True  # a control token: invisible unless asked for
