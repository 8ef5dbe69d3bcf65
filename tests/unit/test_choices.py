"""What a choice shows, step by step and whole: for every way the output is cut into
deltas, the streamed pieces, accumulated as the SDKs do, are the final message."""

from __future__ import annotations

import itertools

import pytest

from chatport.protocol.backend import ChoiceDelta, TokenLogprob
from chatport.protocol.requests import ChatCompletionRequest
from chatport.service.choices import Choices
from chatport.service.tools.format import CUSTOM_BLOCK
from chatport.service.tools.hermes import GenericFormat
from chatport.service.tools.mistral import MistralFormat
from chatport.service.tools.plan import plan_tools
from tests.support.tools import WEATHER

OUTPUTS = [
    "Just text, no call at all.",
    'Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Rome", "unit": "celsius"}}\n</tool_call>\n',
    '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Rome", "unit": "cel',  # cut off
    '```json\n{"name": "get_weather", "arguments": {"location": "Rome", "unit": "celsius"}}\n```',
]


def tools(**extra):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER], **extra}
    return plan_tools(ChatCompletionRequest.model_validate(body))


def run(output: str, cuts: list[int], *, fmt=None, legacy=False, logprobs=False, reason="stop"):
    plan = tools()
    if legacy:
        plan.legacy = True
    fmt = fmt or GenericFormat()
    choices = Choices(1, logprobs=logprobs, tools=plan, blocks=(*fmt.blocks(plan.callable), CUSTOM_BLOCK))
    bounds = [0, *cuts, len(output)]
    seen = []
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        last = k == len(bounds) - 2
        lp = [TokenLogprob(output[lo:hi], list(output[lo:hi].encode()), -1.0)] if logprobs else None
        delta = ChoiceDelta(0, output[lo:hi], lp, reason if last else None, len(bounds) - 1 if last else 0)
        seen.append(choices.add(delta))
    return choices, seen


def accumulate(seen) -> tuple[str | None, list[tuple[str, str]]]:
    """What an SDK's stream accumulator builds from the deltas."""
    content, calls = None, {}
    for visible in seen:
        for kind, piece in visible.pieces:
            if kind == "content":
                content = (content or "") + piece
                continue
            for delta in piece["tool_calls"]:
                call = calls.setdefault(delta["index"], ["", ""])
                call[0] += delta["function"].get("name", "")
                call[1] += delta["function"].get("arguments", "")
    return content, [tuple(c) for _, c in sorted(calls.items())]


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_stream_accumulates_to_the_message_at_every_split(output):
    for cut in range(1, len(output)):
        for cuts in ([cut], [cut, min(cut + 7, len(output) - 1)] if cut + 7 < len(output) else [cut]):
            choices, seen = run(output, cuts)
            message = choices.message(0)
            calls = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])]
            content = message["content"] if calls else (message["content"] or None)
            assert accumulate(seen) == (content, calls), cuts


def test_a_cut_off_call_keeps_its_arguments_and_the_length_reason():
    choices, _ = run(OUTPUTS[2], [5, 30], reason="length")
    (choice,) = choices.choice_objects()
    assert choice["finish_reason"] == "length" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"location": "Rome", "unit": "cel'


def test_calls_turn_stop_into_tool_calls_and_legacy_into_function_call():
    assert run(OUTPUTS[1], [20])[0].choice_objects()[0]["finish_reason"] == "tool_calls"
    legacy, seen = run(OUTPUTS[1], [20], legacy=True)
    assert legacy.choice_objects()[0]["finish_reason"] == "function_call"
    assert legacy.message(0)["function_call"]["name"] == "get_weather"
    assert any(kind == "call" and "function_call" in piece for v in seen for kind, piece in v.pieces)


def test_logprobs_follow_content_and_leave_markup_out():
    output = OUTPUTS[1]
    cuts = list(range(3, len(output), 3))
    choices, _ = run(output, cuts, logprobs=True)
    (choice,) = choices.choice_objects()
    shown = "".join(entry["token"] for entry in choice["logprobs"]["content"])
    assert shown.startswith("Let me look.") and "<tool_call>" not in shown and "get_weather" not in shown


def test_mistral_calls_in_one_array():
    output = '[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Rome"}}, {"name": "get_weather", "arguments": {"location": "Paris"}}]'
    choices, seen = run(output, [13, 40, 77], fmt=MistralFormat())
    assert accumulate(seen)[1] == [("get_weather", '{"location": "Rome"}'), ("get_weather", '{"location": "Paris"}')]
    assert choices.message(0)["content"] is None


# --- a thinking model's answers -----------------------------------------------------------

THOUGHT = '<think>\nThe user wants the weather.\n</think>\n\nLet me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Rome", "unit": "celsius"}}\n</tool_call>'


def run_thinking(output: str, cuts: list[int], *, with_tools: bool, show: bool = True):
    choices = Choices(
        1,
        logprobs=True,
        tools=tools() if with_tools else None,
        blocks=(*GenericFormat().blocks(["get_weather"]), CUSTOM_BLOCK) if with_tools else (),
        think_tags=("<think>", "</think>"),
        show_reasoning=show,
    )
    bounds = [0, *cuts, len(output)]
    seen = []
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        last = k == len(bounds) - 2
        lp = [TokenLogprob(output[lo:hi], list(output[lo:hi].encode()), -1.0)]
        seen.append(
            choices.add(
                ChoiceDelta(0, output[lo:hi], lp, "stop" if last else None, 9 if last else 0, reasoning_tokens=5 if last else 0)
            )
        )
    return choices, seen


@pytest.mark.parametrize("cuts", [[], [3], [9, 30, 40], list(range(1, len(THOUGHT), 7)), list(range(1, len(THOUGHT)))])
def test_reasoning_is_apart_from_content_and_calls_however_the_output_is_cut(cuts):
    choices, seen = run_thinking(THOUGHT, cuts, with_tools=True)
    message = choices.message(0)
    assert message["reasoning_content"] == "The user wants the weather."
    assert message["content"] == "Let me look."
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"
    streamed = "".join(p for v in seen for k, p in v.pieces if k == "reasoning")
    assert streamed == message["reasoning_content"]
    assert choices.reasoning_tokens == 5
    # Logprobs of content only: none of the tokens that wrote only the think block or a call
    # (a token that wrote both goes with the content).
    logprobs = "".join(lp.token for v in seen for lp in v.logprobs or [])
    if cuts == list(range(1, len(THOUGHT))):  # one character per token
        assert logprobs == "Let me look."


def test_without_tools_the_answer_after_the_block_is_the_content():
    choices, _ = run_thinking("<think>hm</think>\n\nIt is 4.", [5, 12], with_tools=False)
    message = choices.message(0)
    assert (message["reasoning_content"], message["content"]) == ("hm", "It is 4.")


def test_reasoning_format_none_counts_reasoning_but_returns_no_text():
    choices, seen = run_thinking("<think>hm</think>It is 4.", [4], with_tools=False, show=False)
    message = choices.message(0)
    assert "reasoning_content" not in message and message["content"] == "It is 4."
    assert not any(k == "reasoning" for v in seen for k, _ in v.pieces)
    assert choices.reasoning_tokens == 5
