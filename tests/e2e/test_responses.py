"""The Responses API (issue 31) through the official Python SDK and the OpenAI Agents SDK:
create, stream, parse, retrieve, delete, input items, a function-tool round trip with
previous_response_id, OpenAI's errors, and projects that never see each other's
responses, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.conftest import MODEL, cli_key, start_server, stop_server

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def projects(store_url, tmp_path_factory):
    """A server whose store holds keys of two projects: (server, key of alpha, key of beta)."""
    key_a, _ = cli_key(store_url, "alpha")
    key_b, _ = cli_key(store_url, "beta")
    srv = start_server(str(tmp_path_factory.mktemp("responses")), "--store", store_url)
    yield srv, key_a, key_b
    stop_server(srv)


@pytest.fixture(scope="module")
def sdk(projects):
    srv, key_a, _ = projects
    return OpenAI(base_url=srv.api, api_key=key_a, max_retries=0, timeout=120)


def ask(sdk: OpenAI, **extra):
    return sdk.responses.create(**{"model": MODEL, "input": "Say hello.", "max_output_tokens": 24, "temperature": 0, **extra})


def test_a_response_has_openais_shape_and_is_stored(sdk):
    made = ask(sdk, metadata={"topic": "greeting"}, instructions="Answer in English.")
    assert made.id.startswith("resp_") and made.object == "response"
    assert made.status in ("completed", "incomplete")
    assert made.output_text, "the SDK's output_text gathers the message's text"
    (message,) = made.output
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    usage = made.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert (made.instructions, made.metadata, made.store, made.max_output_tokens) == (
        "Answer in English.",
        {"topic": "greeting"},
        True,
        24,
    )
    assert made.status != "incomplete" or made.incomplete_details.reason == "max_output_tokens"

    got = sdk.responses.retrieve(made.id)
    assert got.model_dump() == made.model_dump()
    (item,) = sdk.responses.input_items.list(made.id).data
    assert item.type == "message" and item.role == "user" and item.content[0].text == "Say hello."

    sdk.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.delete(made.id)


def test_store_false_keeps_nothing(sdk):
    made = ask(sdk, store=False)
    assert made.store is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(made.id)


def test_a_stream_sends_openais_events_and_ends_with_the_whole_response(sdk):
    # The whole answer compared is the second: its prompt was cached, as the stream's will be
    # (llama.cpp's CPU kernels are not batch-invariant: a cold prompt may tip a near-tie).
    whole = [ask(sdk, input="Name a colour.") for _ in range(2)][-1]
    with sdk.responses.stream(model=MODEL, input="Name a colour.", max_output_tokens=24, temperature=0) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert deltas == final.output_text == whole.output_text
    assert final.output[0].id == events[2].item.id, "items keep the ids the stream gave them"
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert sdk.responses.retrieve(final.id).output_text == deltas


def test_parse_reads_a_pydantic_model(sdk):
    class Person(BaseModel):
        name: str
        age: int

    parsed = sdk.responses.parse(model=MODEL, input="Alice is 30 years old. Extract her.", text_format=Person, temperature=0)
    person = parsed.output_parsed
    assert isinstance(person, Person)
    assert parsed.text.format.type == "json_schema"


def test_a_function_call_round_trip_continues_the_stored_conversation(sdk):
    first = ask(
        sdk,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,  # one call, whose output the next request gives
        max_output_tokens=None,
    )
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "get_weather" and call.call_id and call.id.startswith("fc_")
    assert isinstance(call.arguments, str) and "city" in call.arguments

    output = {"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees and sunny"}
    second = ask(sdk, previous_response_id=first.id, input=[output], tools=[WEATHER], tool_choice="none", max_output_tokens=40)
    assert second.previous_response_id == first.id
    assert second.output_text
    # The earlier turns are in the prompt without being sent again: more than the question alone.
    alone = ask(sdk, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="none", store=False)
    assert second.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens
    (item,) = sdk.responses.input_items.list(second.id).data
    assert item.type == "function_call_output" and item.call_id == call.call_id

    with pytest.raises(openai.BadRequestError) as missing:
        ask(sdk, previous_response_id=first.id, input="And in Rome?")
    assert missing.value.param == "input" and call.call_id in missing.value.message


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"previous_response_id": "resp_nothing"}, "previous_response_id", "previous_response_not_found"),
        ({"input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}, "input[0]", None),
        (
            {"input": [{"role": "user", "content": [{"type": "input_txt", "text": "x"}]}]},
            "input[0].content[0].type",
            "invalid_value",
        ),
        ({"max_output_tokens": 4}, "max_output_tokens", "integer_below_min_value"),
        ({"temperature": 3}, "temperature", "decimal_above_max_value"),
        ({"text": {"format": {"type": "json_schema", "name": "a", "schema": {"$ref": "#/nowhere"}}}}, "text.format", None),
        ({"tools": [{**WEATHER, "parameters": {"type": "object", "properties": {"a": {"$ref": "#/no"}}}}]}, "tools", None),
        ({"background": True, "store": False}, "background", "invalid_value"),
        ({"background": True, "stream": True}, "stream", "unsupported_parameter"),
        ({"conversation": "conv_nothing"}, "conversation", "not_found"),
        ({"conversation": "conv_1", "previous_response_id": "resp_1"}, "conversation", "mutually_exclusive_parameters"),
        ({"model": "no-such-model"}, "model", "model_not_found"),
    ],
)
def test_bad_fields_are_refused_by_name(sdk, extra, param, code):
    with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as refused:
        ask(sdk, **extra)
    assert refused.value.param == param
    assert refused.value.code == code


def wait_for(sdk: OpenAI, response_id: str, *statuses: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while True:
        got = sdk.responses.retrieve(response_id)
        if got.status in statuses or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_a_background_response_is_polled_until_it_is_done(sdk):
    made = ask(sdk, background=True, max_output_tokens=40)
    assert made.background is True and made.status in ("queued", "in_progress") and made.output == []
    with pytest.raises(openai.BadRequestError) as early:
        ask(sdk, previous_response_id=made.id)
    assert early.value.param == "previous_response_id" or early.value.code == "previous_response_not_found"
    done = wait_for(sdk, made.id, "completed", "incomplete")
    assert done.status in ("completed", "incomplete") and done.output_text and done.usage.output_tokens > 0
    assert ask(sdk, previous_response_id=made.id, input="Thanks.").previous_response_id == made.id
    assert sdk.responses.cancel(made.id).status == done.status, "a finished response is returned as it is"


def test_a_background_response_can_be_cancelled_and_frees_its_slot(projects, sdk):
    srv, key_a, _ = projects
    made = ask(sdk, background=True, input="Write a very long story about the sea.", max_output_tokens=1500)
    assert wait_for(sdk, made.id, "in_progress", "completed", "incomplete").status == "in_progress"
    cancelled = sdk.responses.cancel(made.id)
    assert cancelled.status == "cancelled" and cancelled.output == []
    assert sdk.responses.retrieve(made.id).status == "cancelled"

    def running() -> float:
        text = httpx.get(srv.base_url + "/metrics", headers={"authorization": f"Bearer {key_a}"}).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("chatport_running_sequences{"))

    deadline = time.monotonic() + 10  # the engine lets the slot go at its next step
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running() == 0
    with pytest.raises(openai.BadRequestError) as foreground:
        sdk.responses.cancel(ask(sdk).id)
    assert foreground.value.param == "response_id"


def test_a_conversation_keeps_its_items_and_lends_them_to_its_responses(projects, sdk):
    srv, _, key_b = projects
    conversation = sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": "My name is Ada."}], metadata={"topic": "names"}
    )
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "names"}
    assert sdk.conversations.retrieve(conversation.id).created_at == conversation.created_at
    assert sdk.conversations.update(conversation.id, metadata={"topic": "people"}).metadata == {"topic": "people"}

    alone = ask(sdk, input="What is my name?", store=False)
    first = ask(sdk, input="What is my name?", conversation=conversation.id)
    assert first.conversation.id == conversation.id
    assert first.usage.input_tokens > alone.usage.input_tokens, "the conversation's items are in the prompt"
    items = sdk.conversations.items.list(conversation.id, order="asc").data
    assert [i.type for i in items] == ["message", "message", "message"]
    assert [i.role for i in items] == ["user", "user", "assistant"]
    assert items[2].id == first.output[0].id and items[2].content[0].text == first.output_text

    second = ask(sdk, input="And again?", conversation={"id": conversation.id})
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    newest = sdk.conversations.items.list(conversation.id, limit=2)
    assert [i.type for i in newest.data] == ["message", "message"] and newest.has_more
    assert newest.data[0].id == second.output[0].id

    added = sdk.conversations.items.create(conversation.id, items=[{"type": "message", "role": "user", "content": "Hi."}])
    (item,) = added.data
    assert sdk.conversations.items.retrieve(item.id, conversation_id=conversation.id).id == item.id
    sdk.conversations.items.delete(item.id, conversation_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.retrieve(item.id, conversation_id=conversation.id)

    other = OpenAI(base_url=srv.api, api_key=key_b, max_retries=0, timeout=120)
    with pytest.raises(openai.NotFoundError):
        other.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        ask(other, conversation=conversation.id)

    deleted = sdk.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.retrieve(conversation.id)


def test_truncation_auto_drops_the_oldest_turns_until_the_input_fits(sdk):
    filler = "The sea was calm and the boats were out. " * 30  # about 300 tokens a turn
    turns = []
    for i in range(8):
        turns += [{"role": "user", "content": f"Turn {i}. {filler}"}, {"role": "assistant", "content": f"Noted {i}."}]
    turns.append({"role": "user", "content": "Which turn came last?"})
    with pytest.raises(openai.BadRequestError) as too_long:
        ask(sdk, input=turns, instructions="Be brief.")
    assert too_long.value.code == "context_length_exceeded" and too_long.value.param == "input"
    fitted = ask(sdk, input=turns, instructions="Be brief.", truncation="auto")
    assert fitted.truncation == "auto" and fitted.output_text
    assert 1000 < fitted.usage.input_tokens + 24 <= 2048, "as many of the newest turns as fit (the server's context: 2048)"


def test_an_unknown_argument_is_named(projects):
    srv, key_a, _ = projects
    reply = httpx.post(
        srv.api + "/responses",
        json={"model": MODEL, "input": "x", "max_tokens": 5},
        headers={"authorization": f"Bearer {key_a}"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "message": "Unrecognized request argument supplied: max_tokens",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unknown_parameter",
    }


def test_a_project_never_sees_another_projects_responses(projects, sdk):
    srv, _, key_b = projects
    other = OpenAI(base_url=srv.api, api_key=key_b, max_retries=0, timeout=120)
    mine = ask(sdk)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError) as continued:
        ask(other, previous_response_id=mine.id)
    assert continued.value.code == "previous_response_not_found"
    assert sdk.responses.retrieve(mine.id).id == mine.id


def test_input_items_come_in_cursor_pages(sdk):
    items = [{"role": "user", "content": f"Line {i}."} for i in range(5)]
    made = ask(sdk, input=items)
    newest_first = sdk.responses.input_items.list(made.id, limit=2)
    assert [i.content[0].text for i in newest_first.data] == ["Line 4.", "Line 3."] and newest_first.has_more
    rest = sdk.responses.input_items.list(made.id, limit=10, after=newest_first.last_id)
    assert [i.content[0].text for i in rest.data] == ["Line 2.", "Line 1.", "Line 0."] and not rest.has_more
    oldest_first = sdk.responses.input_items.list(made.id, order="asc")
    assert [i.content[0].text for i in oldest_first.data] == [f"Line {i}." for i in range(5)]


AGENTS_SCRIPT = """
import asyncio, json, os
import agents
from openai import AsyncOpenAI
agents.set_tracing_disabled(True)
cities = []

@agents.function_tool
def get_weather(city: str) -> str:
    \"\"\"The weather in a city.\"\"\"
    cities.append(city)
    return f"It is sunny in {city}."

async def run():
    # One event loop for the client: its connections belong to the loop that opened them.
    client = AsyncOpenAI(base_url=os.environ["CHATPORT_BASE_URL"], api_key=os.environ["CHATPORT_API_KEY"], max_retries=0)
    model = agents.OpenAIResponsesModel(os.environ["CHATPORT_MODEL"], client)
    settings = agents.ModelSettings(tool_choice="required", temperature=0)
    agent = agents.Agent(name="weather", model=model, tools=[get_weather], model_settings=settings,
        tool_use_behavior="stop_on_first_tool")
    called = await agents.Runner.run(agent, "What is the weather in Paris?")
    plain = agents.Agent(name="plain", model=model, model_settings=agents.ModelSettings(temperature=0, max_tokens=400))
    await agents.Runner.run(plain, "Say hi.")  # the prompt cached first, so both answers compared are computed alike
    stream = agents.Runner.run_streamed(plain, "Say hi.")
    async for _ in stream.stream_events():
        pass
    whole = await agents.Runner.run(plain, "Say hi.")
    from importlib.metadata import version
    print(json.dumps({"version": version("openai-agents"), "cities": cities, "called": str(called.final_output), "streamed": str(stream.final_output),
        "whole": str(whole.final_output)}))

asyncio.run(run())
"""


@pytest.mark.parametrize("release", ["pinned", "newest"])
def test_the_agents_sdk_runs_a_function_tool_on_its_default_responses_model(projects, release):
    from tests.support.newest import NEWEST_AGENTS_SDK, newest_python_sdk

    srv, key_a, _ = projects
    env = {"CHATPORT_BASE_URL": srv.api, "CHATPORT_API_KEY": key_a, "CHATPORT_MODEL": MODEL}
    if release == "newest":
        env["PYTHONPATH"] = newest_python_sdk(NEWEST_AGENTS_SDK)
    out = subprocess.run(
        [sys.executable, "-c", AGENTS_SCRIPT], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=300
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if release == "newest":
        assert report["version"] == NEWEST_AGENTS_SDK.split("==")[1]
    assert report["cities"] and report["called"] == f"It is sunny in {report['cities'][0]}."
    assert report["streamed"] == report["whole"] and report["whole"]


NEWEST_SCRIPT = """
import json, os
import openai
from pydantic import BaseModel
client = openai.OpenAI(base_url=os.environ["CHATPORT_BASE_URL"], api_key=os.environ["CHATPORT_API_KEY"], max_retries=0)
model = os.environ["CHATPORT_MODEL"]
made = client.responses.create(model=model, input="Say hello.", max_output_tokens=24, temperature=0)
with client.responses.stream(model=model, input="Name a colour.", max_output_tokens=200, temperature=0) as stream:
    deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    final = stream.get_final_response()
class Person(BaseModel):
    name: str
    age: int
parsed = client.responses.parse(model=model, input="Alice is 30 years old. Extract her.", text_format=Person, temperature=0)
weather = json.loads(os.environ["CHATPORT_TOOL"])
first = client.responses.create(model=model, input="What is the weather in Paris?", tools=[weather], tool_choice="required",
    parallel_tool_calls=False, temperature=0)
call = next(o for o in first.output if o.type == "function_call")
second = client.responses.create(model=model, previous_response_id=first.id, tools=[weather], tool_choice="none", max_output_tokens=40,
    temperature=0,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees and sunny"}])
items = [i.type for i in client.responses.input_items.list(second.id)]
client.responses.delete(made.id)
try:
    client.responses.retrieve(made.id)
    deleted = False
except openai.NotFoundError:
    deleted = True
print(json.dumps({"version": openai.__version__, "text": made.output_text, "deltas": deltas,
    "final": final.output_text, "parsed": parsed.output_parsed.model_dump(), "call": call.name, "answer": second.output_text,
    "items": items, "deleted": deleted}))
"""


def test_the_newest_python_sdk(projects, newest_python_sdk):
    from tests.support.newest import NEWEST_PYTHON_SDK

    srv, key_a, _ = projects
    env = {"PYTHONPATH": newest_python_sdk, "CHATPORT_BASE_URL": srv.api, "CHATPORT_API_KEY": key_a}
    env |= {"CHATPORT_MODEL": MODEL, "CHATPORT_TOOL": json.dumps(WEATHER)}
    out = subprocess.run(
        [sys.executable, "-c", NEWEST_SCRIPT], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=300
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["version"] == NEWEST_PYTHON_SDK.split("==")[1]
    assert report["text"] and report["deltas"] == report["final"]
    assert set(report["parsed"]) == {"name", "age"}
    assert report["call"] == "get_weather" and report["answer"]
    assert report["items"] == ["function_call_output"] and report["deleted"]


def node_env(projects) -> dict[str, str]:
    srv, key_a, _ = projects
    return {"CHATPORT_BASE_URL": srv.api, "CHATPORT_API_KEY": key_a, "CHATPORT_MODEL": MODEL}


def check_node_report(report: dict) -> None:
    assert report["created"]["text"] and report["retrieved"] == report["created"]["text"]
    assert report["items"] == ["Say hello."]
    stream = report["stream"]
    assert stream["kinds"][0] == "response.created" and stream["kinds"][-1] in ("response.completed", "response.incomplete")
    assert stream["deltas"] == stream["text"]
    assert set(report["parsed"]) == {"name", "age"}
    assert report["call"]["name"] == "get_weather" and "city" in report["call"]["arguments"] and report["call"]["answered"]
    assert report["deleted"]


@pytest.mark.node
def test_the_npm_sdk(projects):
    from tests.e2e.test_node_sdk import run_node_script

    report = run_node_script("responses_check.mjs", node_env(projects))
    assert report["version"].startswith("6.")
    check_node_report(report)


@pytest.mark.node
def test_the_newest_npm_sdk(projects, newest_node_sdk):
    from tests.support.newest import NEWEST_NODE_SDK, run_node_beside

    report = run_node_beside(newest_node_sdk, "responses_check.mjs", node_env(projects))
    assert report["version"] == NEWEST_NODE_SDK.split("@")[1]
    check_node_report(report)


@pytest.mark.node
def test_the_js_agents_sdk_runs_a_function_tool_on_its_default_responses_model(projects):
    from tests.support.newest import NEWEST_NODE_AGENTS, newest_node_sdk, run_node_beside

    report = run_node_beside(newest_node_sdk(NEWEST_NODE_AGENTS), "agents_check.mjs", node_env(projects))
    assert report["cities"] and report["called"] == f"It is sunny in {report['cities'][0]}."
    assert report["streamed"] == report["whole"] and report["whole"]


@pytest.mark.node
def test_the_vercel_ai_sdk_speaks_responses_by_default(projects):
    from tests.e2e.test_node_sdk import run_node_script

    report = run_node_script("responses_ai_sdk_check.mjs", node_env(projects))
    assert report["text"] and report["streamed"] == report["text"]
    assert report["finish"] in ("stop", "length")
