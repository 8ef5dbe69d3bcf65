"""Audio through the official SDKs against the real server (Whisper tiny.en in, Piper out):
speech made in the test by two independent synthesizers (Piper, and espeak-ng) heard as
the words spoken, spoken answers in every format at a length that fits their words and
heard back as those words, streamed speech that joins into valid pcm16, earlier spoken
answers referred to by id, the audio endpoints, and every bad input a 400 naming it."""

from __future__ import annotations

import asyncio
import base64
import difflib
import io
import re
import shutil
import subprocess
import time

import av
import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.e2e.test_cancellation import reused
from tests.e2e.test_node_sdk import run_node_script
from tests.support.streams import stream_to_length

pytestmark = pytest.mark.audio

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
# espeak-ng's voice is rougher; Whisper tiny.en hears this one whole at its default settings.
ESPEAK_SENTENCE = "I would like to order a large coffee with milk and sugar."


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_accuracy(heard: str, said: str) -> float:
    """1 - word error rate, by the longest matching blocks of words."""
    said_words = words(said)
    matcher = difflib.SequenceMatcher(a=said_words, b=words(heard), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(len(said_words), 1)


def piper_wav(text: str) -> bytes:
    from piper import PiperVoice

    from chatport.speech.piper import default_voice

    voice = PiperVoice.load(default_voice())
    buf = io.BytesIO()
    import wave

    with wave.open(buf, "wb") as out:
        voice.synthesize_wav(text, out)
    return buf.getvalue()


def espeak_wav(text: str, tmp_path) -> bytes:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for the audio tests: apt-get install espeak-ng (the README's test setup)")
    path = tmp_path / "espeak.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    return path.read_bytes()


def to_mp3(wav: bytes) -> bytes:
    from chatport.service.audio_codec import decode_input, encode_output

    samples = decode_input(wav, "wav", 22_050, "test")
    return encode_output((samples * 32_767).astype("int16"), 22_050, "mp3")


def audio_part(data: bytes, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def seconds_of(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return sum(frame.samples / frame.sample_rate for frame in container.decode(audio=0))


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("speech")
    piper = piper_wav(SENTENCE)
    return {"piper": piper, "espeak": espeak_wav(ESPEAK_SENTENCE, tmp), "piper-mp3": to_mp3(piper)}


@pytest.mark.parametrize("source", ["piper", "espeak", "piper-mp3"])
def test_speech_from_two_synthesizers_is_heard_as_the_words_spoken(server, client, spoken, source):
    data = spoken[source]
    said = ESPEAK_SENTENCE if source == "espeak" else SENTENCE
    heard = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", data)).text
    assert word_accuracy(heard, said) >= 0.9, heard
    # The transcript takes the part's place: the same prompt as the words typed in.
    fmt = "mp3" if source.endswith("mp3") else "wav"
    question = {"type": "text", "text": "What did I say?"}
    with_audio = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": [question, audio_part(data, fmt)]}], max_tokens=3
    )
    typed, cached = reused(
        server,
        lambda: client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": [question, {"type": "text", "text": heard}]}], max_tokens=3
        ),
    )
    assert with_audio.usage.prompt_tokens == typed.usage.prompt_tokens
    assert cached == typed.usage.prompt_tokens - 1
    assert with_audio.usage.prompt_tokens_details.audio_tokens >= len(words(said))
    assert typed.usage.prompt_tokens_details.audio_tokens == 0


def test_the_python_seed_example(client, spoken):
    # "Audio input and output", as the seed writes it (its audio_data_base64 made here).
    audio_data_base64 = base64.b64encode(spoken["piper"]).decode()
    response = client.chat.completions.create(
        model="gpt-4o-audio-preview",
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Please respond with audio"},
                    {"type": "input_audio", "input_audio": {"data": audio_data_base64, "format": "wav"}},
                ],
            }
        ],
    )
    audio = response.choices[0].message.audio
    assert audio.transcript and seconds_of(base64.b64decode(audio.data)) > 0.5
    assert response.usage.prompt_tokens_details.audio_tokens >= len(words(SENTENCE))


def spoken_answer(client, question: str, fmt: str, *, max_tokens: int):
    return client.chat.completions.create(
        model=MODEL,
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": fmt},
        messages=[{"role": "user", "content": question}],
        max_tokens=max_tokens,
        temperature=0,
    )


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "opus", "aac", "pcm16"])
def test_a_spoken_answer_in_every_format(client, fmt):
    answer = spoken_answer(client, "Describe a sunny day at the beach in two sentences.", fmt, max_tokens=40)
    message = answer.choices[0].message
    assert message.content is None
    audio = message.audio
    assert audio.id.startswith("audio_") and audio.expires_at > answer.created + 3000
    data = base64.b64decode(audio.data)
    if fmt == "pcm16":
        assert len(data) % 2 == 0
        seconds = len(data) / 2 / 24_000
    else:
        seconds = seconds_of(data)
    n_words = len(words(audio.transcript))
    assert n_words >= 5
    assert 0.15 * n_words <= seconds <= 1.0 * n_words + 1.0  # speech at a human pace
    assert answer.usage.completion_tokens_details.audio_tokens == answer.usage.completion_tokens
    if fmt in ("wav", "mp3"):
        heard = client.audio.transcriptions.create(model="whisper-1", file=(f"answer.{fmt}", data)).text
        assert word_accuracy(heard, audio.transcript) >= 0.75, (heard, audio.transcript)


def test_a_streamed_spoken_answer_joins_into_valid_pcm16(client):
    with client.chat.completions.stream(
        model=MODEL,
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "pcm16"},
        messages=[{"role": "user", "content": "Give me three tips for staying healthy, as full sentences."}],
        max_tokens=200,
        temperature=0,
    ) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    # openai 1.x hands delta.audio over as a dict; newer SDKs as a model with the same fields.
    audio = [a if isinstance(a, dict) else a.model_dump(exclude_unset=True) for d in deltas if (a := getattr(d, "audio", None))]
    assert all(d.content is None for d in deltas)  # the answer is audio: no content deltas
    ids = [a["id"] for a in audio if "id" in a]
    assert len(ids) == 1 and ids[0].startswith("audio_")
    transcript = "".join(a.get("transcript", "") for a in audio)
    pieces = [a["data"] for a in audio if "data" in a]
    assert len(pieces) >= 2  # spoken sentence by sentence, not once at the end
    pcm = b"".join(base64.b64decode(p) for p in pieces)
    assert len(pcm) % 2 == 0 and len(pcm) / 48_000 > 0.15 * len(words(transcript))
    expires = [a["expires_at"] for a in audio if "expires_at" in a]
    assert len(expires) == 1
    # The SDK's stream helper joins the same pieces into the same message.
    message = final.choices[0].message
    assert message.audio.transcript == transcript
    assert base64.b64decode(message.audio.data) == pcm
    assert message.audio.id == ids[0] and message.audio.expires_at == expires[0]


def test_an_earlier_spoken_answer_is_referred_to_by_id(server, client):
    answer = spoken_answer(client, "Say hello.", "wav", max_tokens=20)
    audio = answer.choices[0].message.audio
    follow = [{"role": "user", "content": "Say hello."}, None, {"role": "user", "content": "Again, louder."}]
    by_id = client.chat.completions.create(
        model=MODEL, messages=[follow[0], {"role": "assistant", "audio": {"id": audio.id}}, follow[2]], max_tokens=3
    )
    typed, cached = reused(
        server,
        lambda: client.chat.completions.create(
            model=MODEL, messages=[follow[0], {"role": "assistant", "content": audio.transcript}, follow[2]], max_tokens=3
        ),
    )
    assert by_id.usage.prompt_tokens == typed.usage.prompt_tokens
    assert cached == typed.usage.prompt_tokens - 1
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[follow[0], {"role": "assistant", "audio": {"id": "audio_unknown"}}, follow[2]], max_tokens=3
        )
    assert caught.value.body["param"] == "messages[1].audio.id"
    assert "not found" in caught.value.body["message"]


@pytest.mark.parametrize(
    "part,code,says",
    [
        ({"data": "@@@@", "format": "wav"}, "invalid_input_audio", "not valid base64"),
        (
            {"data": base64.b64encode(b"not audio at all, just bytes" * 10).decode(), "format": "wav"},
            "invalid_input_audio",
            "not wav audio",
        ),
        ({"data": "", "format": "wav"}, "invalid_input_audio", "empty"),
    ],
)
def test_bad_audio_is_a_400_naming_the_part(client, part, code, says):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "Hm?"}, {"type": "input_audio", "input_audio": part}]}
            ],
        )
    body = caught.value.body
    assert (body["param"], body["code"]) == ("messages[0].content[1]", code)
    assert says in body["message"]


def test_audio_declared_as_another_format_is_a_400(client, spoken):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": [audio_part(spoken["piper-mp3"], "wav")]}]
        )
    assert "the data is mp3 audio, not wav as 'format' says" in caught.value.body["message"]
    assert caught.value.body["param"] == "messages[0].content[0]"


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_the_speech_endpoint(client, fmt):
    speech = client.audio.speech.create(model="tts-1", voice="coral", input=SENTENCE, response_format=fmt)
    data = speech.content
    seconds = len(data) / 48_000 if fmt == "pcm" else seconds_of(data)
    assert 0.15 * len(words(SENTENCE)) <= seconds <= len(words(SENTENCE))
    faster = client.audio.speech.create(model="tts-1", voice="coral", input=SENTENCE, response_format="wav", speed=2.0)
    if fmt == "wav":
        assert seconds_of(faster.content) < 0.7 * seconds


def test_the_transcription_endpoint_formats_and_refusals(client, server, spoken):
    text = client.audio.transcriptions.create(model="whisper-1", file=("s.wav", spoken["piper"]), response_format="text")
    assert word_accuracy(text, SENTENCE) >= 0.9
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("s.wav", spoken["piper"]), response_format="srt")
    assert caught.value.body["param"] == "response_format"
    # A form without an Authorization header is what any web page could post: refused.
    refused = httpx.post(
        server.api + "/audio/transcriptions", files={"file": ("s.wav", spoken["piper"])}, data={"model": "whisper-1"}
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "missing_authorization"


async def test_several_requests_transcribe_while_streams_run(async_client, spoken, eog_bias):
    async def hear(source: str):
        return await async_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": [audio_part(spoken[source])]}], max_tokens=2
        )

    streams = [asyncio.create_task(stream_to_length(async_client, 40, eog_bias)) for _ in range(4)]
    heard = await asyncio.gather(*(hear(s) for s in ("piper", "espeak", "piper", "espeak")))
    assert all(h.usage.prompt_tokens_details.audio_tokens > 5 for h in heard)
    assert await asyncio.gather(*streams) == [(40, "length")] * 4


@pytest.mark.node
def test_the_typescript_seed_example(server):
    report = run_node_script("audio_check.mjs", {"CHATPORT_BASE_URL": server.api})
    assert report["content"] is None
    assert report["transcript"] and report["bytes"] > 1000
    assert report["mp3"]  # the data is an MP3 stream


# --- issue 26: a request's audio, budgeted --------------------------------------------------


def silence(seconds: float, rate: int = 16_000) -> bytes:
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buf.getvalue()


def ask_with_audio(server, parts: list[dict]) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": parts}], "max_tokens": 2}
    return httpx.post(server.api + "/chat/completions", json=body, timeout=120)


def test_audio_parts_and_seconds_are_capped_before_anything_is_transcribed(server):
    from chatport.service.audio import MAX_AUDIO_PARTS, MAX_AUDIO_SECONDS

    too_many = ask_with_audio(server, [audio_part(silence(0.5))] * (MAX_AUDIO_PARTS + 1))
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "too_many_audio_parts"
    started = time.monotonic()
    half = silence(MAX_AUDIO_SECONDS / 2 + 1)
    too_long = ask_with_audio(server, [audio_part(half), audio_part(half)])
    assert too_long.status_code == 400, too_long.text
    error = too_long.json()["error"]
    assert error["code"] == "audio_too_long" and error["param"] == "messages[0].content[1]"
    # Decoded, not transcribed: ten minutes of speech would take Whisper far longer.
    assert time.monotonic() - started < 30
