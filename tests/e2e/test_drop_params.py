"""Apps written for other models: parameters a local model cannot honour keep OpenAI's 400
unless the operator drops them, and then every answer says what was dropped."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest
from openai import OpenAI

from tests.conftest import MODEL, start_server, stop_server

USER = [{"role": "user", "content": "Say one word."}]


def test_reasoning_effort_and_verbosity_are_400_by_default(client):
    for extra in ({"reasoning_effort": "low"}, {"verbosity": "low"}):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, **extra)
        assert info.value.param == next(iter(extra)) and info.value.code == "unsupported_parameter"


@pytest.fixture(scope="module")
def dropping(tmp_path_factory):
    srv = start_server(
        str(tmp_path_factory.mktemp("drop")),
        "--alias",
        "gpt-5=" + MODEL,
        "--drop-params",
        "reasoning_effort,verbosity,web_search_options",
    )
    yield srv
    stop_server(srv)


def test_a_gpt5_app_runs_unchanged_with_the_parameters_dropped_and_said(dropping):
    client = OpenAI(base_url=dropping.api, api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5", messages=USER, max_completion_tokens=3, reasoning_effort="minimal", verbosity="low"
    )
    assert raw.headers["x-chatport-dropped-params"] == "reasoning_effort, verbosity"
    answer = raw.parse()
    assert answer.model == "gpt-5" and answer.choices[0].message.content
    with client.chat.completions.with_streaming_response.create(
        model="gpt-5", messages=USER, max_completion_tokens=3, reasoning_effort="high", stream=True
    ) as streamed:
        assert streamed.headers["x-chatport-dropped-params"] == "reasoning_effort"
        assert any(chunk.choices and chunk.choices[0].delta.content for chunk in streamed.parse())
    plain = client.chat.completions.with_raw_response.create(model="gpt-5", messages=USER, max_completion_tokens=1)
    assert "x-chatport-dropped-params" not in plain.headers  # only when something was dropped


def test_dropping_is_still_validated(dropping):
    client = OpenAI(base_url=dropping.api, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-5", messages=USER, max_tokens=1, reasoning_effort="extreme")
    assert info.value.param == "reasoning_effort"


def test_only_parameters_that_do_not_change_the_answers_shape_can_be_dropped(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "chatport", "serve", "--drop-params", "audio", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = " ".join(out.stderr.split())
    assert out.returncode == 2 and "audio cannot be dropped" in said and "reasoning_effort" in said


def test_web_search_options_is_dropped_and_said_without_a_search_engine(dropping):
    client = OpenAI(base_url=dropping.api, api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=USER, max_tokens=3, web_search_options={"search_context_size": "low"}
    )
    assert raw.headers["x-chatport-dropped-params"] == "web_search_options"
    assert "x-chatport-search-results" not in raw.headers
    assert raw.parse().choices[0].message.annotations == []
