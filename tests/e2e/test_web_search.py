"""web_search_options end to end: chatport serve --web-search against a stand-in search
engine on loopback (chatport/bench/search_engine.py), through the official SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from openai import OpenAI

from chatport.bench.search_engine import BRAVE_KEY, INJECTION, PAGES, TAVILY_KEY, SearchEngine
from tests.conftest import MODEL, start_server, stop_server
from tests.support.newest import NEWEST_PYTHON_SDK

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
LOCATION = {
    "type": "approximate",
    "approximate": {"city": "San Francisco", "region": "California", "country": "US", "timezone": "America/Los_Angeles"},
}


@pytest.fixture(scope="module")
def engine():
    engine = SearchEngine()
    yield engine
    engine.stop()


@pytest.fixture(autouse=True)
def _engine_ok(engine):
    engine.mode = "ok"
    engine.slow_pages = set()
    engine.requests.clear()


def _serve(tmp_path_factory, name, *args, env=None):
    # 3,072 tokens: high's sources fit (half the context), and the seed's example, which
    # sets no max_tokens, ends within a minute.
    return start_server(str(tmp_path_factory.mktemp(name)), "--ctx-size", "3072", *args, env=env)


@pytest.fixture(scope="module")
def searxng(tmp_path_factory, engine):
    srv = _serve(
        tmp_path_factory,
        "searxng",
        *("--web-search", f"searxng+{engine.url}/searxng", "--web-search-timeout", "2", "--allow-private-urls"),
        *("--alias", "gpt-4o=" + MODEL),
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def sdk(searxng):
    return OpenAI(base_url=searxng.api, api_key="unused", max_retries=0, timeout=60)


def ask(sdk, **extra):
    return sdk.chat.completions.create(
        model=MODEL, messages=QUESTION, **{"max_tokens": 40, "temperature": 0, "seed": 7, "web_search_options": {}, **extra}
    )


def check_annotations(message, engine):
    urls = {engine.page_url(name): PAGES[name][0] for name in engine.results}
    assert message.annotations, "a searched answer carries at least one annotation"
    for annotation in message.annotations:
        citation = annotation.url_citation
        assert annotation.type == "url_citation"
        assert urls[citation.url] == citation.title
        # The span is the link itself, in code points: [title](url).
        span = message.content[citation.start_index : citation.end_index]
        assert span.startswith("[") and span.endswith(f"({citation.url})")


def test_the_seeds_example_answers_with_url_citations(sdk, engine):
    completion = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What are the best restaurants near me?"}],
        web_search_options={"search_context_size": "high", "user_location": LOCATION},
        max_tokens=60,
    )
    message = completion.choices[0].message
    check_annotations(message, engine)
    (search,) = engine.searches()
    assert search.query["q"] == ["What are the best restaurants near me?"]
    assert search.query["format"] == ["json"] and "country" not in search.query  # SearXNG takes no country


def test_streamed_text_and_annotations_equal_the_whole_answer(sdk, engine):
    # The second answer is compared: its prompt was cached, as the streamed one's will be
    # (llama.cpp's CPU kernels are not batch-invariant: a cold prompt may tip a near-tie).
    whole = [ask(sdk, web_search_options={"search_context_size": "low"}) for _ in range(2)][-1].choices[0]
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            max_tokens=40,
            temperature=0,
            seed=7,
            web_search_options={"search_context_size": "low"},
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.message.content
    holding = [c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get("annotations")]
    assert len(holding) == 1, "the annotations come in one chunk"
    (chunk,) = holding
    delta = chunk.choices[0].delta
    assert delta.content is None and delta.role is None and delta.tool_calls is None
    assert chunk.choices[0].finish_reason is None
    assert chunks.index(chunk) == len(chunks) - 2, "just before the finish chunk"
    assert delta.model_extra["annotations"] == [a.model_dump() for a in whole.message.annotations]


def test_the_sdks_stream_helper_gathers_the_annotations(sdk):
    with sdk.chat.completions.stream(model=MODEL, messages=QUESTION, max_tokens=20, web_search_options={}) as stream:
        for _ in stream:
            pass
        snapshot = stream.current_completion_snapshot
    message = snapshot.choices[0].message
    assert message.annotations and message.content
    for annotation in message.annotations:
        citation = annotation.url_citation
        assert message.content[citation.start_index : citation.end_index].endswith(f"({citation.url})")


def test_context_sizes_give_more_sources_and_tokens_and_pages_only_above_low(sdk, engine):
    prompts = {}
    for size in ("low", "medium", "high"):
        engine.requests.clear()
        raw = sdk.chat.completions.with_raw_response.create(
            model=MODEL, messages=QUESTION, max_tokens=1, web_search_options={"search_context_size": size}
        )
        prompts[size] = raw.parse().usage.prompt_tokens
        fetched = engine.pages_fetched()
        assert raw.headers["x-chatport-search-results"] == str(min(len(engine.results), {"low": 3}.get(size, 8)))
        assert (fetched == []) == (size == "low"), (size, fetched)
    assert prompts["low"] < prompts["medium"] <= prompts["high"]


def test_a_long_page_is_cut_to_the_budget_and_a_missing_one_keeps_its_snippet(sdk, engine):
    engine.results = ["long.html", "missing.html"]
    try:
        low = ask(sdk, max_tokens=1, web_search_options={"search_context_size": "medium"}).usage.prompt_tokens
    finally:
        engine.results = ["paris.html", "eiffel.html", "injection.html", "missing.html"]
    assert set(engine.pages_fetched()) == {"long.html", "missing.html"}
    assert low < 1536 + 300  # the long page (about 18,000 tokens) fits the medium budget


def test_a_page_that_does_not_load_in_time_falls_back_to_its_snippet(sdk, engine):
    engine.slow_pages = {"eiffel.html"}
    engine.delay = 20
    started = time.monotonic()
    try:
        completion = ask(sdk, max_tokens=5)
    finally:
        engine.delay = 30
    assert time.monotonic() - started < 15  # the page time limit (5 s), not the page's 20 s
    assert completion.choices[0].message.annotations


def test_the_server_stays_responsive_while_a_search_waits(searxng, sdk, engine):
    engine.mode = "slow"
    engine.delay = 1.5
    try:
        with httpx.Client(timeout=10) as http:
            result = {}
            worker = threading.Thread(target=lambda: result.setdefault("c", ask(sdk, max_tokens=3)))
            worker.start()
            time.sleep(0.3)
            assert http.get(searxng.base_url + "/health").status_code == 200
            worker.join(30)
    finally:
        engine.delay = 30
    assert result["c"].choices[0].message.annotations


def test_an_engine_that_is_slow_answers_504_and_one_that_breaks_502(sdk, engine):
    engine.mode = "slow"
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        ask(sdk)
    assert time.monotonic() - started < 10  # --web-search-timeout 2, not the engine's 30 s
    assert info.value.status_code == 504
    body = info.value.body
    assert body["type"] == "api_error" and body["param"] == "web_search_options" and "2 seconds" in body["message"]
    engine.mode = "broken"
    with pytest.raises(openai.APIStatusError) as info:
        ask(sdk)
    assert info.value.status_code == 502 and info.value.body["param"] == "web_search_options"


def test_searxng_with_its_json_format_off_says_so(sdk, engine):
    engine.mode = "json-off"
    with pytest.raises(openai.APIStatusError) as info:
        ask(sdk)
    assert info.value.status_code == 502
    assert "JSON format is off" in info.value.message and "settings.yml" in info.value.message


def test_a_prompt_injection_in_a_page_stays_quoted_data(sdk, engine):
    engine.results = ["injection.html"]
    try:
        plain = ask(sdk, max_tokens=1, web_search_options={"search_context_size": "low"}).usage.prompt_tokens
        read = ask(sdk, max_tokens=1, web_search_options={"search_context_size": "medium"}).usage.prompt_tokens
    finally:
        engine.results = ["paris.html", "eiffel.html", "injection.html", "missing.html"]
    assert engine.pages_fetched() == ["injection.html"]
    # The page's <|im_end|> and <|im_start|> are text: many tokens, not two control tokens
    # (tests/unit/test_search.py checks the token ids themselves).
    assert read - plain > len(INJECTION) // 8


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"search_context_size": "huge"}, "web_search_options.search_context_size"),
        ({"user_location": {"type": "exact", "approximate": {}}}, "web_search_options.user_location.type"),
        ({"user_location": {"approximate": {}}}, "web_search_options.user_location.type"),
        (
            {"user_location": {"type": "approximate", "approximate": {"city": 5}}},
            "web_search_options.user_location.approximate.city",
        ),
        (
            {"user_location": {"type": "approximate", "approximate": {"country": "USA"}}},
            "web_search_options.user_location.approximate.country",
        ),
        ("high", "web_search_options"),
    ],
)
def test_bad_options_are_400s_naming_the_nested_parameter(sdk, options, param):
    with pytest.raises(openai.BadRequestError) as info:
        ask(sdk, web_search_options=options)
    assert info.value.param == param, info.value.message


def test_without_a_search_engine_the_option_is_refused_as_openai_refuses_it(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=1, web_search_options={})
    assert info.value.param == "web_search_options"
    assert info.value.body["message"] == "Web search options not supported with this model."


def test_stored_completions_keep_their_annotations(sdk):
    created = ask(sdk, store=True, max_tokens=10)
    stored = sdk.chat.completions.retrieve(created.id)
    assert stored.choices[0].message.annotations == created.choices[0].message.annotations


def test_metrics_count_searches_and_failures_per_engine(searxng, sdk, engine):
    def read() -> dict[str, float]:
        text = httpx.get(searxng.base_url + "/metrics").text
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("chatport_web_search")
        }

    before = read()
    ask(sdk, max_tokens=1)
    engine.mode = "json-off"
    with pytest.raises(openai.APIStatusError):
        ask(sdk, max_tokens=1)
    after = read()
    searches = 'chatport_web_searches_total{backend="searxng"}'
    failures = 'chatport_web_search_failures_total{backend="searxng",kind="down"}'
    assert after[searches] - before.get(searches, 0) == 2
    assert after[failures] - before.get(failures, 0) == 1
    assert after['chatport_web_search_seconds_total{backend="searxng"}'] > 0


# --- the other engines --------------------------------------------------------------


@pytest.fixture(scope="module")
def brave(tmp_path_factory, engine):
    # No --allow-private-urls: the result pages (on loopback) are refused; snippets stand in.
    srv = _serve(
        tmp_path_factory, "brave", "--web-search", f"brave+{engine.url}/brave/res/v1/web/search", env={"BRAVE_API_KEY": BRAVE_KEY}
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def tavily(tmp_path_factory, engine):
    srv = _serve(
        tmp_path_factory,
        "tavily",
        *("--web-search", f"tavily+{engine.url}/tavily/search", "--web-search-queries", "model", "--allow-private-urls"),
        env={"TAVILY_API_KEY": TAVILY_KEY},
    )
    yield srv
    stop_server(srv)


def test_brave_gets_the_country_and_its_pages_stay_unfetched_without_private_urls(brave, engine):
    sdk = OpenAI(base_url=brave.api, api_key="x", max_retries=0)
    completion = ask(sdk, web_search_options={"user_location": LOCATION, "search_context_size": "high"})
    (search,) = engine.searches()
    assert search.query["country"] == ["US"] and search.query["q"] == ["What is the capital of France?"]
    assert search.headers["x-subscription-token"] == BRAVE_KEY
    assert engine.pages_fetched() == []  # loopback pages, refused without --allow-private-urls
    check_annotations(completion.choices[0].message, engine)


def test_tavily_takes_model_written_queries_and_sends_page_text_itself(tavily, engine):
    sdk = OpenAI(base_url=tavily.api, api_key="x", max_retries=0)
    completion = ask(sdk, web_search_options={"user_location": LOCATION})
    searches = engine.searches()
    assert 1 <= len(searches) <= 3
    for search in searches:
        assert "country" not in search.body and search.body["include_raw_content"] is True
        assert search.body["query"] and len(search.body["query"]) <= 100
    # Tavily sent the first page's text: that one is not fetched, the others are.
    assert "paris.html" not in engine.pages_fetched() and "eiffel.html" in engine.pages_fetched()
    check_annotations(completion.choices[0].message, engine)


def test_file_results_answer_offline(tmp_path_factory, engine):
    path = tmp_path_factory.mktemp("results") / "results.json"
    path.write_text(json.dumps({"results": engine.hits()[:2]}))
    srv = _serve(tmp_path_factory, "file", "--web-search", f"file:{path}")
    try:
        sdk = OpenAI(base_url=srv.api, api_key="x", max_retries=0)
        message = ask(sdk, web_search_options={"search_context_size": "low"}).choices[0].message
    finally:
        stop_server(srv)
    assert {a.url_citation.url for a in message.annotations} <= {h["url"] for h in engine.hits()[:2]}
    check_annotations(message, engine)
    assert engine.searches() == []


def test_a_missing_api_key_stops_the_server_at_start_naming_the_variable(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "chatport", "serve", "--web-search", "brave:", "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode != 0 and "BRAVE_API_KEY" in out.stderr + out.stdout


# --- the SDKs -------------------------------------------------------------------------


def spans_hold(report: dict, urls: set[str]) -> None:
    content, annotations = report["content"], report["annotations"]
    assert annotations
    for annotation in annotations:
        citation = annotation["url_citation"]
        assert citation["url"] in urls
        assert content[citation["start_index"] : citation["end_index"]].endswith(f"({citation['url']})")


@pytest.mark.node
def test_the_typescript_seeds_example_runs_unchanged(searxng, engine):
    from tests.e2e.test_node_sdk import run_node_script

    report = run_node_script("web_search_check.mjs", {"CHATPORT_BASE_URL": searxng.api})
    urls = {engine.page_url(name) for name in engine.results}
    spans_hold(report["whole"], urls)
    spans_hold(report["stream"], urls)  # the stream helper gathers the annotations chunk


NEWEST_SCRIPT = """
import json, os, sys
import openai
client = openai.OpenAI(base_url=os.environ["CHATPORT_BASE_URL"], api_key="unused", max_retries=0)
# Asked twice first: the answer compared is one whose prompt was cached, like the streamed one's
# (llama.cpp's CPU kernels are not batch-invariant: a cold prompt may tip a near-tie).
for _ in range(2):
    whole = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Capital of France?"}],
        web_search_options={"search_context_size": "low"}, max_tokens=30, temperature=0, seed=3)
chunks = list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Capital of France?"}],
    web_search_options={"search_context_size": "low"}, max_tokens=30, temperature=0, seed=3, stream=True))
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
        web_search_options={"search_context_size": "huge"})
    param = None
except openai.BadRequestError as exc:
    param = exc.param
message = whole.choices[0].message
print(json.dumps({"version": openai.__version__, "content": message.content, "streamed": streamed, "param": param,
    "annotations": [a.model_dump() for a in message.annotations]}))
"""


def test_the_newest_python_sdk_reads_annotations_and_errors(searxng, engine, newest_python_sdk):
    out = subprocess.run(
        [sys.executable, "-c", NEWEST_SCRIPT],
        env={**os.environ, "PYTHONPATH": newest_python_sdk, "CHATPORT_BASE_URL": searxng.api},
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["version"] == NEWEST_PYTHON_SDK.split("==")[1]
    assert report["streamed"] == report["content"]
    assert report["param"] == "web_search_options.search_context_size"
    spans_hold(report, {engine.page_url(name) for name in engine.results})


def test_a_client_that_leaves_during_the_search_gets_no_generation(searxng, engine):
    def first_tokens() -> float:
        text = httpx.get(searxng.base_url + "/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("chatport_first_tokens_total"))

    before = first_tokens()
    engine.latency = 1.5
    try:
        impatient = OpenAI(base_url=searxng.api, api_key="x", max_retries=0, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):
            ask(impatient)
        time.sleep(2.5)  # the engine has answered by now; a request still running would have its first token
    finally:
        engine.latency = 0.0
    assert first_tokens() == before


def test_the_responses_web_search_tool_gives_a_search_call_and_citations(sdk, engine):
    """The Responses API's web_search tool (issue 31) runs the same search: a
    web_search_call item before the message, url_citation annotations on its text, and
    the same items streamed."""
    urls = {engine.page_url(name) for name in engine.results}
    ask = {
        "model": MODEL,
        "input": QUESTION[0]["content"],
        "tools": [{"type": "web_search", "search_context_size": "low"}],
        "include": ["web_search_call.action.sources"],
        "max_output_tokens": 60,
        "temperature": 0,
    }
    whole = [sdk.responses.create(**ask) for _ in range(2)][-1]  # the second: its prompt cached, as the stream's
    search, message = whole.output
    assert search.type == "web_search_call" and search.status == "completed" and search.id.startswith("ws_")
    assert search.action.query == QUESTION[0]["content"]
    assert {s.url for s in search.action.sources} <= urls and search.action.sources
    text = message.content[0]
    assert text.annotations
    for citation in text.annotations:
        assert citation.type == "url_citation" and citation.url in urls
        assert text.text[citation.start_index : citation.end_index].endswith(f"({citation.url})")

    with sdk.responses.stream(**ask) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[2:7] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    # openai 1.106 types the event's annotation loosely (a dict); the item's are models.
    added = [e.annotation for e in events if e.type == "response.output_text.annotation.added"]
    final = events[-1].response
    assert added == [a.model_dump() for a in final.output[1].content[0].annotations]
    assert final.output[1].content[0].text == text.text
    assert final.output[0].id == events[2].item.id


def test_a_web_search_tool_without_a_search_engine_is_refused_by_name(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="x", tools=[{"type": "web_search"}])
    assert refused.value.param == "tools"
