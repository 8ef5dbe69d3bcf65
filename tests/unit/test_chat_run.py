"""A ChatRun over a scripted generation handle, without a model: the exact sequence of
chunks OpenAI sends (role first, logprobs with the first content, a call's head then its
pieces, the finish, usage last), the whole completion, and a spoken stream's own shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import numpy as np
import pytest

from chatport.catalog import default_model
from chatport.engine.llama import LlamaModel
from chatport.protocol.backend import ChoiceDelta, GenerationRequest, SamplingParams, TokenLogprob
from chatport.protocol.prompt import Prompt
from chatport.protocol.requests import ChatCompletionRequest
from chatport.protocol.speech import Speech
from chatport.service.audio import AudioService
from chatport.service.decoding import plan_decoding
from chatport.service.models import ServedModel
from chatport.service.run import ChatRun, PreparedChat
from chatport.service.structured import schema_error
from chatport.service.tools.plan import plan_tools
from tests.support.tools import WEATHER
from tests.unit.test_prompt_safety import VocabBackend


class ScriptedHandle:
    """A generation handle that yields the steps it was given."""

    def __init__(self, steps: list[list[ChoiceDelta]], prompt_tokens: int = 300, cached_tokens: int = 200) -> None:
        self.steps = steps
        self.prompt_tokens = prompt_tokens
        self.cached_tokens = cached_tokens
        self.cancelled = False

    async def wait_admitted(self) -> None:
        return None

    async def __aiter__(self) -> AsyncIterator[list[ChoiceDelta]]:
        for step in self.steps:
            yield step

    def cancel(self) -> None:
        self.cancelled = True


class SilentVoice:
    """Speaks every sentence as 0.1 s of silence."""

    voices = ("default",)

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> Speech:
        return Speech(np.zeros(2400, dtype=np.int16), 24_000)


@pytest.fixture(scope="module")
def model() -> ServedModel:
    return ServedModel.create("m", VocabBackend(LlamaModel(default_model().path, vocab_only=True)))


def lp(text: str) -> list[TokenLogprob]:
    return [TokenLogprob(text, list(text.encode()), -0.5)]


def prepared(model: ServedModel, n: int = 1, logprobs: bool = False, **body) -> PreparedChat:
    request = ChatCompletionRequest.model_validate(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True, **body}
    )
    generation = GenerationRequest(Prompt.of_tokens([1, 2, 3]), SamplingParams(logprobs=logprobs), n=n)
    return PreparedChat(
        request=request,
        model=model,
        generation=generation,
        tools=plan_tools(request),
        decoding=plan_decoding(
            None, schema_error(request), plan_tools(request), model.tool_format, json.dumps, model.backend.vocabulary
        ),
        raw_messages=body.get("messages", []),
        id="chatcmpl-test",
        created=1,
        service_tier="default",
        voice="default" if body.get("modalities") else None,
    )


class Finished:
    def __init__(self) -> None:
        self.completions: list[dict] = []

    async def __call__(self, chat, completion) -> None:
        self.completions.append(completion)


async def stream_of(chat: PreparedChat, steps: list[list[ChoiceDelta]], audio: AudioService | None = None):
    finished = Finished()
    handle = ScriptedHandle(steps)
    run = ChatRun(chat, handle, audio or AudioService(None, None), "p", finished)
    chunks = [c async for c in run.stream()]
    assert handle.cancelled  # the slots are freed however the stream ends
    return chunks, finished.completions


def deltas(chunks):
    return [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]]


async def test_a_text_stream_is_role_then_content_with_its_logprobs_then_finish_then_usage(model):
    chat = prepared(model, logprobs=True, stream_options={"include_usage": True, "include_obfuscation": False})
    steps = [
        [ChoiceDelta(0, "Hel", lp("Hel"))],
        [ChoiceDelta(0, "lo", lp("lo"))],
        [ChoiceDelta(0, "", [], finish_reason="stop", completion_tokens=2)],
    ]
    chunks, [completion] = await stream_of(chat, steps)
    assert deltas(chunks) == [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        ({}, "stop"),
    ]
    logprobs = [c["choices"][0]["logprobs"] for c in chunks if c["choices"]]
    assert logprobs[0] is None and logprobs[1]["content"][0]["token"] == "Hel" and logprobs[2]["content"][0]["token"] == "lo"
    assert all("obfuscation" not in c for c in chunks) and all(c["usage"] is None for c in chunks[:-1])
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"] == completion["usage"]
    assert (
        usage["usage"]["prompt_tokens"] == 300 and usage["usage"]["prompt_tokens_details"]["cached_tokens"] == 128
    )  # whole blocks
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and {c["id"] for c in chunks} == {"chatcmpl-test"}
    assert {c["model"] for c in chunks} == {"gpt-4o"}  # the name asked for
    assert completion["choices"][0]["message"]["content"] == "Hello"


async def test_a_call_is_its_head_with_the_role_then_its_argument_pieces(model):
    chat = prepared(model, tools=[WEATHER])
    written = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>'
    pieces = [written[:30], written[30:55], written[55:]]
    steps = [[ChoiceDelta(0, p)] for p in pieces] + [[ChoiceDelta(0, "", finish_reason="stop", completion_tokens=9)]]
    chunks, [completion] = await stream_of(chat, steps)
    seen = deltas(chunks)
    head, *rest = seen
    assert head[0]["role"] == "assistant" and head[0]["content"] is None
    (call,) = head[0]["tool_calls"]
    assert call["index"] == 0 and call["type"] == "function" and call["function"] == {"name": "get_weather", "arguments": ""}
    assert call["id"].startswith("call_")
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d, _ in rest[:-1])
    assert arguments == '{"location": "Paris"}' and all(set(d["tool_calls"][0]) == {"index", "function"} for d, _ in rest[:-1])
    assert rest[-1] == ({}, "tool_calls")
    assert all("obfuscation" in c for c in chunks)  # OpenAI's default
    message = completion["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["function"]["arguments"] == arguments


async def test_each_choice_opens_with_its_own_role(model):
    chat = prepared(model, n=2)
    steps = [
        [ChoiceDelta(0, "A"), ChoiceDelta(1, "B")],
        [
            ChoiceDelta(1, "", finish_reason="stop", completion_tokens=1),
            ChoiceDelta(0, "", finish_reason="length", completion_tokens=1),
        ],
    ]
    chunks, _ = await stream_of(chat, steps)
    by_choice = [(c["choices"][0]["index"], d) for c, (d, _) in zip(chunks, deltas(chunks), strict=True)]
    assert by_choice[:4] == [
        (0, {"role": "assistant", "content": "", "refusal": None}),
        (0, {"content": "A"}),
        (1, {"role": "assistant", "content": "", "refusal": None}),
        (1, {"content": "B"}),
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[4:]] == ["stop", "length"]


async def test_a_whole_completion_is_the_stream_joined(model):
    chat = prepared(model, stream=False)
    finished = Finished()
    run = ChatRun(
        chat,
        ScriptedHandle([[ChoiceDelta(0, "Hi there", finish_reason="stop", completion_tokens=2)]]),
        AudioService(None, None),
        "p",
        finished,
    )
    completion = await run.complete()
    assert completion["object"] == "chat.completion" and completion["choices"][0]["message"]["content"] == "Hi there"
    assert completion["choices"][0]["finish_reason"] == "stop" and finished.completions == [completion]
    assert completion["usage"]["completion_tokens"] == 2 and completion["usage"]["total_tokens"] == 302


async def test_a_spoken_stream_writes_transcripts_and_audio_in_place_of_content(model):
    audio = AudioService(None, SilentVoice())
    chat = prepared(model, modalities=["text", "audio"], audio={"voice": "alloy", "format": "pcm16"})
    steps = [
        [ChoiceDelta(0, "Hello there, this is one sentence. ")],
        [ChoiceDelta(0, "And a second one")],
        [ChoiceDelta(0, "", finish_reason="stop", completion_tokens=12)],
    ]
    chunks, _ = await stream_of(chat, steps, audio)
    seen = deltas(chunks)
    assert seen[0] == ({"role": "assistant", "content": None, "refusal": None}, None)
    first = seen[1][0]["audio"]
    assert first["id"].startswith("audio_") and first["transcript"] == "Hello there, this is one sentence. "
    assert {"transcript": "And a second one"} in [d.get("audio") for d, _ in seen]
    assert all("content" not in d for d, _ in seen[1:])
    data = "".join(d["audio"]["data"] for d, _ in seen if "data" in d.get("audio", {}))
    assert len(base64.b64decode(data)) == 2 * 2 * 2400  # two sentences of 2,400 samples, 16-bit
    assert "expires_at" in seen[-2][0]["audio"] and seen[-1] == ({}, "stop")
    audio.close()
