"""The JavaScript client libraries against the real server (tests/node/libraries_check.mjs):
the Vercel AI SDK 6 (Chat Completions provider: generateText, streamText, a forced tool,
generateObject on a nested zod schema) and @langchain/openai 0.6 (invoke, bindTools with a
named tool, withStructuredOutput by JSON schema). Both on Node 20: their newest majors
need Node 22 (issue 28)."""

from __future__ import annotations

import pytest

from tests.conftest import MODEL
from tests.e2e.test_node_sdk import run_node_script

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def report(server):
    return run_node_script("libraries_check.mjs", {"CHATPORT_BASE_URL": server.api, "CHATPORT_MODEL": MODEL})


def is_person(value: dict) -> bool:
    return (
        isinstance(value["name"], str)
        and isinstance(value["age"], int)
        and isinstance(value["address"]["street"], str)
        and isinstance(value["address"]["city"], str)
    )


def test_ai_sdk_text_and_stream_agree_with_usage(report):
    text = report["aiText"]
    assert text["text"] and text["streamed"] == text["text"]  # greedy: the stream is the whole answer
    assert text["outputTokens"] == text["streamedOutputTokens"] > 0
    assert text["finishReason"] in ("stop", "length")


def test_ai_sdk_forced_tool_and_nested_object(report):
    assert report["aiTool"] and report["aiTool"][0]["name"] == "get_weather"
    assert isinstance(report["aiTool"][0]["input"]["location"], str)
    assert is_person(report["aiObject"])


def test_langchain_js_invoke_named_tool_and_structured_output(report):
    assert report["lcText"]["content"] and report["lcText"]["outputTokens"] > 0
    assert report["lcTool"] and report["lcTool"][0]["name"] == "get_weather"
    assert isinstance(report["lcTool"][0]["args"]["location"], str)
    assert is_person(report["lcObject"])
