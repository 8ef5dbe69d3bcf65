"""What one request may make the server do, through the real server (issue 26): grammars
that would overflow the compiler's stack are refused by their size (and those allowed
compile on a stack that fits them), work proportional to what a client sends never
holds the event loop, and a PDF bomb is cut by its budget and stops when its client
leaves. Each test checks that /health kept answering meanwhile."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import psutil
import pytest

from chatport.bench.attacks import custom_tool, definition_chain, file_part, pdf_bomb, rule_chain
from tests.conftest import MODEL, start_server, stop_server
from tests.support.responsive import RESPONSIVE_SECONDS, slowest_health_answer

USER = [{"role": "user", "content": "Say yes."}]


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """A server of this module's own: a request that crashed it would take no other test with it."""
    srv = start_server(str(tmp_path_factory.mktemp("bounds")))
    yield srv
    stop_server(srv)


def alive(srv) -> None:
    assert srv.process.poll() is None, "the server process died:\n" + srv.log()[-3000:]
    done = httpx.post(srv.api + "/chat/completions", json={"model": MODEL, "messages": USER, "max_tokens": 2}, timeout=60)
    assert done.status_code == 200


async def post(srv, path: str, body: dict, timeout: float = 300) -> tuple[httpx.Response, float]:
    async with httpx.AsyncClient(base_url=srv.base_url, timeout=timeout) as http:
        return await slowest_health_answer(srv.base_url, http.post(path, json=body))


# --- grammars that used to crash the process --------------------------------------------


async def test_a_grammar_of_5000_chained_rules_is_refused_and_the_server_lives(target):
    # Before: llguidance's compiler recursed 5,000 deep on the event loop's thread: a segfault in 0.31 s.
    body = {
        "model": MODEL,
        "messages": USER,
        "max_tokens": 8,
        "tools": [custom_tool(rule_chain(5000))],
        "tool_choice": "required",
    }
    response, slowest = await post(target, "/v1/chat/completions", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "tools[0].custom.format.grammar.definition" and error["code"] == "invalid_grammar"
    assert "5002 rules; at most 2000" in error["message"]
    assert slowest < RESPONSIVE_SECONDS
    alive(target)


async def test_the_deepest_schema_allowed_compiles_on_a_stack_that_fits_it(target):
    # 1,000 definitions, each referring to the next: over 8 MiB of the compiler's stack,
    # which killed the process on an ordinary thread; within the bounds, so it is served.
    fmt = {"type": "json_schema", "json_schema": {"name": "deep", "schema": definition_chain(1000)}}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Answer in JSON."}], "max_tokens": 4, "response_format": fmt}
    response, slowest = await post(target, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    written = response.json()["choices"][0]["message"]["content"]
    assert "".join(written.split()).startswith('{"a'), written  # under the schema (whitespace is the model's)
    assert slowest < RESPONSIVE_SECONDS
    alive(target)


@pytest.mark.parametrize(
    "body_extra,param,says",
    [
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "deep", "schema": definition_chain(1001)}}},
            "response_format",
            "more than 1000 definitions",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": definition_chain(1001)}}]},
            "tools[0].function.parameters",
            "more than 1000 definitions",
        ),
        ({"tools": [custom_tool("(" * 33 + "a" + ")" * 33, "regex")]}, "tools[0].custom.format.grammar.definition", "33 levels"),
        ({"tools": [custom_tool("start: " + '"a" ' * 40_000)]}, "tools[0].custom.format.grammar.definition", "string too long"),
    ],
)
async def test_grammars_and_schemas_over_their_bounds_are_400s_naming_them(target, body_extra, param, says):
    response, slowest = await post(target, "/v1/chat/completions", {"model": MODEL, "messages": USER, **body_extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"], error
    assert slowest < RESPONSIVE_SECONDS
    alive(target)


def test_a_deeply_nested_schema_is_a_400_not_a_500(target):
    schema: dict = {"type": "string"}
    for _ in range(200):
        schema = {"type": "array", "items": schema}
    client = openai.OpenAI(base_url=target.api, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            response_format={"type": "json_schema", "json_schema": {"name": "nest", "schema": schema}},
        )
    assert "nests more than 64 levels" in caught.value.body["message"]


# --- work proportional to what a client sends never holds the event loop ------------------


async def test_100k_tools_are_refused_by_count_while_health_answers(target):
    tools = [{"type": "function", "function": {"name": f"f{i}", "parameters": {"type": "object"}}} for i in range(100_000)]
    response, slowest = await post(target, "/v1/chat/completions", {"model": MODEL, "messages": USER, "tools": tools})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length 100000 instead.",
        "type": "invalid_request_error",
        "param": "tools",
        "code": "array_above_max_length",
    }
    assert slowest < RESPONSIVE_SECONDS


async def test_900k_text_parts_are_refused_by_count_while_health_answers(target):
    parts = [{"type": "text", "text": ""}] * 900_000
    response, slowest = await post(
        target, "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": parts}]}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "array_above_max_length" and error["param"] == "messages[0].content"
    assert "at most 2048 content parts" in error["message"]
    assert slowest < RESPONSIVE_SECONDS


@pytest.mark.parametrize(
    ("input_", "param"),
    [
        ([{"role": "user", "content": "x"}] * 300_000, "input"),
        ([{"role": "user", "content": [{"type": "input_text", "text": ""}] * 900_000}], "input[0].content"),
        (
            [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": ""}] * 900_000}],
            "input[0].output",
        ),
        ("x" * (10 * 1024 * 1024 + 1), "input"),
    ],
    ids=["items", "parts", "output-parts", "string"],
)
async def test_a_responses_input_is_bounded_before_it_is_read(target, input_, param):
    response, slowest = await post(target, "/v1/responses", {"model": MODEL, "input": input_})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert slowest < RESPONSIVE_SECONDS


async def test_a_message_over_openais_string_limit_is_refused(target):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (10 * 1024 * 1024 + 1)}]}
    response, slowest = await post(target, "/v1/chat/completions", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages[0].content" and error["code"] == "string_above_max_length"
    assert "maximum length 10485760" in error["message"]
    assert slowest < RESPONSIVE_SECONDS


async def test_markdown_bombs_never_hold_the_event_loop(target):
    # 512 KB of "[" took markdown-it 21 s on the event loop; now longer text is refused and
    # the longest allowed renders in a worker thread.
    too_long, slowest = await post(target, "/ui/markdown", {"text": "[" * 512 * 1024})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "text"
    assert slowest < RESPONSIVE_SECONDS
    rendered, slowest = await post(target, "/ui/markdown", {"text": "[" * 64 * 1024})
    assert rendered.status_code == 200 and rendered.json()["html"].startswith("<p>[[[")
    assert slowest < RESPONSIVE_SECONDS


# --- a PDF bomb: its budget, its own pool, and it stops when its client leaves -------------


def pdf_body(pdf: bytes) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Sum it up."}, file_part(pdf)]}],
        "max_tokens": 2,
    }


async def test_a_pdf_bomb_is_cut_by_its_budget_while_plain_prompts_are_served(target):
    # 18 KB whose 100 pages share one deflated stream of 200,000 operators: 270 s of CPU before.
    bomb = pdf_bomb(pages=100, operators=200_000)
    assert len(bomb) < 20_000
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=target.api, timeout=300) as http:
        attack = asyncio.ensure_future(http.post("/chat/completions", json=pdf_body(bomb)))
        await asyncio.sleep(0.5)
        plain = await http.post("/chat/completions", json={"model": MODEL, "messages": USER, "max_tokens": 2})
        assert plain.status_code == 200 and not attack.done()  # served beside it, not behind it
        response = await attack
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "file_too_large" and error["param"] == "messages[0].content[1].file.file_data"
    assert "300,000 content operators" in error["message"]
    assert time.monotonic() - began < 60


def test_a_pdf_bomb_stops_when_its_client_leaves(target):
    process = psutil.Process(target.process.pid)
    # Within every budget (290,000 operators), about 4 s of reading: only the client's leaving stops it early.
    bomb = pdf_bomb(pages=100, operators=2_900)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(target.api + "/chat/completions", json=pdf_body(bomb), timeout=1.0)
    time.sleep(0.5)  # the operators being read when the client left are finished
    before = sum(process.cpu_times()[:2])
    time.sleep(2.0)
    spent = sum(process.cpu_times()[:2]) - before
    assert spent < 0.5, f"the server spent {spent:.1f} CPU-s in 2 s after the client left"
    alive(target)
