"""Bad input gets OpenAI's error shape naming the parameter; the server keeps serving."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.conftest import MODEL, start_server, stop_server

OK_MESSAGES = [{"role": "user", "content": "hi"}]


def body(**extra):
    return {"model": MODEL, "messages": OK_MESSAGES, **extra}


BAD_BODIES = [
    (body(temperature="hot"), "temperature", "invalid_type"),
    (body(max_tokens="10"), "max_tokens", "invalid_type"),
    (body(stream="yes"), "stream", "invalid_type"),
    (body(temperature=3), "temperature", "decimal_above_max_value"),
    (body(top_p=1.5), "top_p", "decimal_above_max_value"),
    (body(n=0), "n", "integer_below_min_value"),
    (body(logprobs=True, top_logprobs=21), "top_logprobs", "integer_above_max_value"),
    (body(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length"),
    (body(stop=7), "stop", "invalid_type"),
    (body(max_tokens=0), "max_tokens", "integer_below_min_value"),
    (body(top_logprobs=3), "top_logprobs", "invalid_value"),
    (body(stream_options={"include_usage": True}), "stream_options", "invalid_value"),
    (body(logit_bias={"abc": 1}), "logit_bias", "invalid_value"),
    (body(logit_bias={"5": 101}), "logit_bias.5", "invalid_value"),
    (body(logit_bias={"99999999": 1}), "logit_bias", "invalid_value"),
    ({"model": MODEL, "messages": []}, "messages", "empty_array"),
    ({"model": MODEL}, "messages", "missing_required_parameter"),
    ({"messages": OK_MESSAGES}, "model", "missing_required_parameter"),
    ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"model": MODEL, "messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
    ({"model": MODEL, "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
    (
        {"model": MODEL, "messages": [OK_MESSAGES[0], {"role": "tool", "content": "42"}]},
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    (
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ],
        },
        "messages[0].content[1]",
        "unsupported_content_type",
    ),
    (
        {
            "model": MODEL,
            "messages": [
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}
            ],
        },
        "messages[0].content[0]",
        "invalid_input_audio",  # three bytes are no wav
    ),
    (
        {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
        "messages[0].content[0].file.file_id",
        "unsupported_file_reference",
    ),
    (body(metadata={"k" * 65: "v"}), "metadata", "string_above_max_length"),
    (body(metadata={f"k{i}": "v" for i in range(17)}), "metadata", "object_above_max_properties"),
    (body(metadata={"k": "v" * 513}), "metadata.k", "string_above_max_length"),
    (body(frobnicate=True), "frobnicate", "unknown_parameter"),
    (body(response_format={"type": "json_object"}), "messages", None),  # json mode needs the word json
    (body(modalities=["text", "audio"]), "audio", "missing_required_parameter"),
    (body(audio={"voice": "alloy", "format": "wav"}), "audio", "invalid_value"),  # without modalities: audio
    (body(modalities=["audio"], audio={"voice": "nobody", "format": "wav"}), "audio.voice", "invalid_value"),
    (body(prediction={"type": "text", "content": "x"}), "prediction.type", "invalid_value"),
    (body(prediction={"type": "content"}), "prediction.content", "missing_required_parameter"),
    (body(reasoning_effort="high"), "reasoning_effort", "unsupported_parameter"),
    (body(n=9), "n", "integer_above_max_value"),
]


@pytest.mark.parametrize("payload,param,code", BAD_BODIES, ids=[f"{p}-{c}" for _, p, c in BAD_BODIES])
def test_bad_input_is_a_400_naming_the_parameter(server, payload, param, code):
    response = httpx.post(server.api + "/chat/completions", json=payload, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code), error["message"]
    assert error["message"]


@pytest.mark.parametrize(
    "raw,content_type",
    [
        (b"{not json", "application/json"),
        (b'{"model": "x", "messages": "\xff\xfe"}', "application/json"),
        (b"[1, 2]", "application/json"),
    ],
    ids=["malformed", "invalid-utf8", "array-body"],
)
def test_unparseable_bodies_are_400(server, raw, content_type):
    response = httpx.post(server.api + "/chat/completions", content=raw, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_sdk_raises_matching_classes(client):
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-4", messages=OK_MESSAGES, n=0)
    assert bad.value.param == "n"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=OK_MESSAGES)
    assert missing.value.code == "model_not_found"
    assert missing.value.body["message"] == "The model `no-such-model` does not exist or you do not have access to it."
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_context_length_exceeded(client):
    long_text = "word " * 5000
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": long_text}])
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4", messages=OK_MESSAGES, max_tokens=5000)
    assert info.value.code == "context_length_exceeded"


async def test_ten_megabyte_body_fails_cleanly_while_others_are_served(server):
    # 10.8 MB in two messages (one string of it would pass OpenAI's 10 MiB limit for a string).
    huge = {"model": MODEL, "messages": [{"role": "user", "content": "lorem ipsum " * 450_000}] * 2}
    async with httpx.AsyncClient(timeout=120) as http:
        big = asyncio.ensure_future(http.post(server.api + "/chat/completions", json=huge))
        await asyncio.sleep(0.2)
        small = await http.post(server.api + "/chat/completions", json=body(max_tokens=3))
        assert small.status_code == 200
        big_response = await big
    assert big_response.status_code == 400
    assert big_response.json()["error"]["code"] == "context_length_exceeded"


def test_models_endpoints(client):
    listed = client.models.list()
    assert [m.id for m in listed.data] == [MODEL, "gpt-4o", "gpt-4", "gpt-4o-audio-preview"]  # the model, then its aliases
    model = client.models.retrieve(MODEL)
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "chatport")
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"  # an alias is a model of its own name


def test_headers_and_unknown_routes(server):
    ok = httpx.post(server.api + "/chat/completions", json=body(max_tokens=2))
    assert ok.headers["x-request-id"].startswith("req_")
    assert int(ok.headers["openai-processing-ms"]) >= 0
    bad = httpx.post(server.api + "/chat/completions", json=body(n=0))
    assert bad.headers["x-request-id"] != ok.headers["x-request-id"]
    assert httpx.get(server.api + "/nowhere").status_code == 404
    wrong_method = httpx.delete(server.api + "/models")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    srv = start_server(
        str(tmp_path_factory.mktemp("keyed")),
        "--api-key",
        "sk-first-key-123",
        "--max-body-mb",
        "1",
        env={"CHATPORT_API_KEYS": "sk-from-env-456"},
    )
    yield srv
    stop_server(srv)


def test_api_keys_are_required_when_configured(keyed_server):
    from openai import OpenAI

    for key in ("sk-first-key-123", "sk-from-env-456"):
        ok = OpenAI(base_url=keyed_server.api, api_key=key, max_retries=0)
        assert ok.chat.completions.create(model=MODEL, messages=OK_MESSAGES, max_tokens=2).choices
    wrong = OpenAI(base_url=keyed_server.api, api_key="sk-wrong-key-000", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert info.value.code == "invalid_api_key"
    assert "sk-wrong-key-000" not in info.value.body["message"]
    missing = httpx.get(keyed_server.api + "/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"


def test_body_over_the_limit_is_413(keyed_server):
    payload = body(messages=[{"role": "user", "content": "x" * (2 * 1024 * 1024)}])
    response = httpx.post(
        keyed_server.api + "/chat/completions", json=payload, headers={"authorization": "Bearer sk-first-key-123"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
