"""Reasoning on the real templates of the families that think (Qwen3 from npm, DeepSeek-R1
and its distills from trl's files): detection, reasoning_effort -> template switch, prompt
markup and budget, earlier turns' reasoning, and the split of an answer's think block."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatport.protocol import requests as rq
from chatport.service.messages import to_template_messages
from chatport.service.reasoning import BUDGETS, ReasoningSplitter, ReasoningTemplate
from chatport.service.template import CHATML, ChatTemplate
from tests.support.templates import DEEPSEEK_BOS, family_template, trl_template


class CharBackend:
    """Tokenizes text as one token per character: enough to see what a plan forces."""

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        return [ord(c) for c in text]


def detokenize(tokens) -> str:
    return "".join(map(chr, tokens))


def qwen3() -> ChatTemplate:
    f = family_template("qwen3")
    return ChatTemplate(f.source, bos_token=f.bos_token, eos_token=f.eos_token)


def deepseek(name: str = "deepseek-r1") -> ChatTemplate:
    return ChatTemplate(trl_template(name), bos_token=DEEPSEEK_BOS)


TEMPLATES = {"qwen3": qwen3, "deepseek-r1": deepseek, "deepseek-r1-distill": lambda: deepseek("deepseek-r1-distill")}
USER = [{"role": "user", "content": "What is 2 + 2?"}]


def prompt(template: ChatTemplate, effort: str | None, messages=USER) -> tuple[str, object]:
    reasoning = ReasoningTemplate.detect(template)
    assert reasoning is not None
    plan = reasoning.plan(effort, CharBackend())
    return template.render(messages, variables=plan.variables) + plan.suffix, plan


def test_qwen3_thinks_through_its_switch_and_the_model_opens_the_block():
    reasoning = ReasoningTemplate.detect(qwen3())
    assert reasoning is not None
    assert (reasoning.start, reasoning.end, reasoning.switch) == ("<think>", "</think>", "enable_thinking")
    assert (reasoning.when_on, reasoning.when_off) == ("none", "closed")


@pytest.mark.parametrize("name", ["deepseek-r1", "deepseek-r1-distill"])
def test_deepseek_r1_always_opens_the_block_in_its_prompt(name):
    reasoning = ReasoningTemplate.detect(TEMPLATES[name]())
    assert reasoning is not None
    assert (reasoning.start, reasoning.end, reasoning.switch) == ("<think>", "</think>", None)
    assert (reasoning.when_on, reasoning.when_off) == ("open", "open")


@pytest.mark.parametrize("family", ["llama3.2", "mistral-nemo", "qwen2.5"])
def test_templates_that_cannot_think_are_not_reasoning_templates(family):
    f = family_template(family)
    assert ReasoningTemplate.detect(ChatTemplate(f.source, bos_token=f.bos_token, eos_token=f.eos_token)) is None
    assert ReasoningTemplate.detect(ChatTemplate(CHATML)) is None


def test_qwen3_effort_none_renders_the_templates_own_empty_block():
    text, plan = prompt(qwen3(), "none")
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert plan.suffix == "" and plan.thinking is None


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high", None])
def test_qwen3_thinking_efforts_leave_the_prompt_open_and_force_the_start_tag(effort):
    text, plan = prompt(qwen3(), effort)
    assert text.endswith("<|im_start|>assistant\n")
    thinking = plan.thinking
    assert detokenize(thinking.open_tokens) == "<think>\n"
    assert detokenize(thinking.close_tokens) == "\n</think>"
    assert thinking.end == "</think>"
    assert thinking.budget == BUDGETS[effort or "medium"]


def test_budgets_grow_with_effort_and_high_has_none():
    assert BUDGETS["minimal"] < BUDGETS["low"] < BUDGETS["medium"]
    assert BUDGETS["high"] is None


@pytest.mark.parametrize("name", ["deepseek-r1", "deepseek-r1-distill"])
def test_deepseek_effort_none_closes_the_block_the_template_opened(name):
    text, plan = prompt(TEMPLATES[name](), "none")
    assert text.endswith("<｜Assistant｜><think>\n\n</think>\n\n")
    assert plan.thinking is None


@pytest.mark.parametrize("name", ["deepseek-r1", "deepseek-r1-distill"])
def test_deepseek_thinking_needs_no_forced_start(name):
    text, plan = prompt(TEMPLATES[name](), "low")
    assert text.endswith("<｜Assistant｜><think>\n")
    assert plan.thinking.open_tokens == () and plan.thinking.budget == BUDGETS["low"]


def history(content: str, reasoning: str | None = None) -> list:
    return [
        rq.UserMessage(role="user", content="What is 2 + 2?"),
        rq.AssistantMessage(role="assistant", content=content, reasoning_content=reasoning),
        rq.UserMessage(role="user", content="And 3 + 3?"),
    ]


@pytest.mark.parametrize("name", ["qwen3", "deepseek-r1", "deepseek-r1-distill"])
@pytest.mark.parametrize(
    "content,reasoning",
    [("<think>\nadd them up\n</think>\n\nIt is 4.", None), ("It is 4.", "add them up")],
    ids=["in-content", "reasoning_content"],
)
def test_earlier_turns_reasoning_is_dropped_from_the_prompt(name, content, reasoning):
    template = TEMPLATES[name]()
    detected = ReasoningTemplate.detect(template)
    messages = to_template_messages(history(content, reasoning), model="m", template=template, reasoning=detected)
    text, _ = prompt(template, "medium", messages)
    assert "It is 4." in text and "add them up" not in text


def test_qwen3_keeps_reasoning_within_the_current_turns_tool_calls():
    template = qwen3()
    detected = ReasoningTemplate.detect(template)
    call = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'}}
    messages = [
        rq.UserMessage(role="user", content="What is 2 + 2?"),
        rq.AssistantMessage(role="assistant", content=None, reasoning_content="use the tool", tool_calls=[call]),
        rq.ToolMessage(role="tool", content="4", tool_call_id="call_1"),
    ]
    rendered = to_template_messages(messages, model="m", template=template, reasoning=detected)
    text, _ = prompt(template, "medium", rendered)
    assert "<think>\nuse the tool\n</think>" in text


# --- splitting an answer ------------------------------------------------------------------


def split(pieces: list[str], start: str = "<think>", end: str = "</think>") -> tuple[str, str]:
    splitter = ReasoningSplitter(start, end)
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.finish()
    return "".join(t for k, t in out if k == "reasoning"), "".join(t for k, t in out if k == "content")


@pytest.mark.parametrize(
    "output,reasoning,content",
    [
        ("<think>\nadd them\n</think>\n\nIt is 4.", "add them", "It is 4."),
        ("add them\n</think>\n\nIt is 4.", "add them", "It is 4."),  # the prompt opened the block
        ("<think>\n\n</think>\n\nIt is 4.", "", "It is 4."),
        ("</think>It is 4.", "", "It is 4."),
        ("<think>\nstill thinking when cut", "still thinking when cut", ""),
        ("<think>a < b, and </thin is not the end</think>ok", "a < b, and </thin is not the end", "ok"),
        ("  <thought>not a tag</think>x", "<thought>not a tag", "x"),
    ],
)
def test_the_think_block_is_split_from_the_answer(output, reasoning, content):
    assert split([output]) == (reasoning, content)


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_any_split_of_the_stream_gives_the_same_parts(cuts):
    output = "<think>\nfirst, 2 + 2\nthen  </think>\n\nIt is 4 </think> at most."
    points = sorted({min(c, len(output)) for c in cuts})
    pieces = [output[a:b] for a, b in zip([0, *points], [*points, len(output)], strict=True)]
    assert split(pieces) == split([output]) == ("first, 2 + 2\nthen", "It is 4 </think> at most.")


def test_content_start_is_where_the_answer_begins_in_the_output():
    splitter = ReasoningSplitter("<think>", "</think>")
    output = "<think>x</think>\n\nIt"
    splitter.feed(output)
    assert output[splitter.content_start :] == "It"
