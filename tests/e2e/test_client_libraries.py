"""The client libraries people point at local servers, unchanged but for ``base_url``:
langchain-openai, the OpenAI Agents SDK and LiteLLM, each through its common
calls (invoke and stream with usage, tools with a forced and a named choice, structured
output by json_schema and by function calling, nested models, an agent run with a
function tool). Answers come from SmolLM2-135M: what is checked
is what each library builds from chatport's answers, not the model's judgement (issue 28).
instructor and pydantic-ai need a newer openai than the suite pins (and, for openai 1.x,
an older rich or OpenTelemetry than the server's): they run from an installation of their
own (tests/requirements-libraries.txt), against Qwen2.5-Coder-0.5B."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MODEL
from tests.support.models import PERSON_ASK, Address, Person


def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"21 degrees and sunny in {location}"


# --- langchain-openai -----------------------------------------------------------------


@pytest.fixture(scope="module")
def chat(server):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=server.api, api_key="x", model=MODEL, temperature=0, max_tokens=300, max_retries=0)


def test_langchain_invoke_and_stream_with_usage(chat):
    chat = chat.bind(max_tokens=40)
    message = chat.invoke("Say hello.")
    assert isinstance(message.content, str) and message.content
    assert message.usage_metadata["output_tokens"] > 0
    chunks = list(chat.stream("Say hello.", stream_usage=True))
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined += chunk
    assert joined.content == message.content  # greedy: the stream is the whole answer
    assert joined.usage_metadata["output_tokens"] == message.usage_metadata["output_tokens"]


@pytest.mark.parametrize("choice", ["any", "get_weather"])
def test_langchain_bind_tools_with_a_forced_and_a_named_choice(chat, choice):
    # strict: SmolLM2 fills a non-strict schema's open object with keys of its own.
    bound = chat.bind_tools([get_weather], tool_choice=choice, strict=True)
    message = bound.invoke("What's the weather in Paris?")
    assert message.tool_calls, message
    call = message.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"]["location"], str)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output_with_a_nested_model(chat, method):
    structured = chat.with_structured_output(Person, method=method)
    person = structured.invoke(PERSON_ASK)
    assert isinstance(person, Person) and isinstance(person.address, Address)


# --- the OpenAI Agents SDK ------------------------------------------------------------


def test_agents_sdk_runs_a_function_tool_with_nested_arguments(server):
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    recorded: list[Person] = []

    @function_tool
    def record_person(person: Person) -> str:
        """Store a person in the address book."""
        recorded.append(person)
        return "stored"

    async def main() -> object:
        client = AsyncOpenAI(base_url=server.api, api_key="x", max_retries=0)
        agent = Agent(
            name="clerk",
            instructions="Store the person the user describes.",
            model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
            tools=[record_person],
            model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=300),
            tool_use_behavior="stop_on_first_tool",
        )
        return await Runner.run(agent, PERSON_ASK, max_turns=2)

    result = asyncio.run(main())
    assert recorded and isinstance(recorded[0].address, Address)
    assert result.final_output == "stored"


# --- LiteLLM --------------------------------------------------------------------------


def test_litellm_calls_a_tool_and_answers_to_a_schema(server):
    import litellm

    common = {"model": f"openai/{MODEL}", "api_base": server.api, "api_key": "x", "temperature": 0, "max_tokens": 300}
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a location",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
        },
    }
    called = litellm.completion(
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[weather],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        **common,
    )
    call = called.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "location" in call.function.arguments
    answered = litellm.completion(messages=[{"role": "user", "content": PERSON_ASK}], response_format=Person, **common)
    person = Person.model_validate_json(answered.choices[0].message.content)
    assert isinstance(person.address, Address)
    assert answered.usage.completion_tokens > 0


# --- instructor and pydantic-ai, from their own installation ----------------------------

LIBRARIES = os.path.join(os.path.dirname(__file__), "..", "requirements-libraries.txt")


@pytest.fixture(scope="session")
def libraries_dir():
    """tests/requirements-libraries.txt installed into a directory of its own (cached
    between runs, one per version of that file): put first on a child interpreter's path."""
    import hashlib

    with open(LIBRARIES, "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:12]
    target = os.path.join(os.path.expanduser("~"), ".cache", "chatport", "sdk", f"libraries-{tag}")
    if not os.path.isdir(os.path.join(target, "instructor")):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", target, "-r", LIBRARIES],
            check=True,
            capture_output=True,
            timeout=900,
        )
    return target


@pytest.fixture(scope="module")
def libraries_report(qwen_server, libraries_dir):
    from tests.conftest import QWEN

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.libraries_check"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{libraries_dir}:{root}", "CHATPORT_BASE_URL": qwen_server.api, "CHATPORT_MODEL": QWEN},
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["tools", "json_schema"])
def test_instructor_fills_a_nested_model(libraries_report, mode):
    assert libraries_report["openai"].startswith("3.")
    person = Person.model_validate(libraries_report[f"instructor_{mode}"])
    assert isinstance(person.address, Address) and person.address.city


def test_pydantic_ai_structured_output_and_a_function_tool(libraries_report):
    person = Person.model_validate(libraries_report["pydantic_ai_output"])
    assert isinstance(person.address, Address)
    calls = libraries_report["pydantic_ai_tool_calls"]
    assert calls and all(isinstance(location, str) and location for location in calls), "the agent ran its tool"
    answer = libraries_report["pydantic_ai_answer"]
    assert isinstance(answer, str) or libraries_report["pydantic_ai_ended"] in ("UnexpectedModelBehavior", "UsageLimitExceeded")
