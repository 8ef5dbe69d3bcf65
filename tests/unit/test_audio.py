"""Audio without a server: every output format encoded and decoded back at the right
length, the input checks (declared format, empty, too long, not audio), spoken sentences
streamed as base64 pieces that join into the whole answer, and voice names."""

from __future__ import annotations

import asyncio
import base64
import io

import av
import numpy as np
import pytest

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.speech import Speech
from chatport.service import audio_codec
from chatport.service.audio import OPENAI_VOICES, AudioService, MemoryAnswers, SentenceSpeaker
from chatport.service.audio_codec import OUTPUT_RATE, decode_input, encode_output

PARAM = "messages[0].content[1]"


def tone(seconds: float, rate: int = 22_050) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 12_000).astype(np.int16)


def duration(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return sum(frame.samples / frame.sample_rate for frame in container.decode(audio=0))


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "opus", "aac"])
def test_every_output_format_decodes_back_at_its_length(fmt):
    data = encode_output(tone(1.5), 22_050, fmt)
    assert abs(duration(data) - 1.5) < 0.08  # codecs pad a frame or so


def test_pcm16_is_raw_24khz_little_endian():
    data = encode_output(tone(1.0), 22_050, "pcm16")
    assert len(data) == 2 * OUTPUT_RATE  # one second, two bytes a sample
    samples = np.frombuffer(data, dtype="<i2")
    assert 10_000 < np.abs(samples).max() <= 12_100


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_input_is_decoded_to_the_transcribers_rate(fmt):
    samples = decode_input(encode_output(tone(2.0), 22_050, fmt), fmt, 16_000, PARAM)
    assert samples.dtype == np.float32 and abs(samples.size / 16_000 - 2.0) < 0.08
    assert 0.3 < np.abs(samples).max() <= 0.4  # 12,000 / 32,768


@pytest.mark.parametrize(
    "data,declared,says",
    [
        (b"RIFF but not really a wave file at all", "wav", "not wav audio"),
        (encode_output(tone(1.0), 22_050, "mp3"), "wav", "the data is mp3 audio, not wav as 'format' says"),
        (encode_output(tone(1.0), 22_050, "wav"), "mp3", "the data is wav audio, not mp3 as 'format' says"),
        (encode_output(tone(0.004), 22_050, "wav"), "wav", "the audio is empty"),
    ],
)
def test_bad_input_is_a_400_naming_the_part(data, declared, says):
    with pytest.raises(InvalidRequestError) as caught:
        decode_input(data, declared, 16_000, PARAM)
    assert caught.value.param == PARAM and says in caught.value.message


def test_input_longer_than_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(audio_codec, "MAX_INPUT_SECONDS", 1.0)
    with pytest.raises(InvalidRequestError, match="longer than 1 seconds") as caught:
        decode_input(encode_output(tone(3.0), 22_050, "wav"), "wav", 16_000, PARAM)
    assert caught.value.code == "audio_too_long"


class CountingVoice:
    """Speaks each text as one sample per character (value = the character's code)."""

    def __init__(self) -> None:
        self.voices = ["default", "deep"]
        self.spoken: list[str] = []

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> Speech:
        self.spoken.append(text)
        return Speech(np.array([ord(c) for c in text], dtype=np.int16), OUTPUT_RATE)


async def test_a_stream_is_spoken_sentence_by_sentence_and_its_pieces_join_into_the_whole():
    voice = CountingVoice()
    speaker = SentenceSpeaker(AudioService(None, voice), "default")
    pieces = []
    text = ["1. Hello the", "re. How are", " you? Fine, th", "anks! And the rest"]
    for part in text:
        speaker.feed(part)
        await asyncio.sleep(0.05)
        pieces += [p async for p in speaker.ready()]
    pieces += [p async for p in speaker.finish()]
    # "1. " alone is no sentence worth a clip: pieces hold a few words at least.
    assert voice.spoken == ["1. Hello there. ", "How are you? ", "Fine, thanks! ", "And the rest"]
    assert all(not p.endswith("=") for p in pieces[:-1])  # whole 3-sample groups: no padding
    joined = base64.b64decode("".join(pieces))  # as the SDKs' stream helpers join them
    assert np.frombuffer(joined, dtype="<i2").tolist() == [ord(c) for c in "".join(text)]


def test_openai_voice_names_speak_with_the_default_unless_given_their_own():
    audio = AudioService(None, CountingVoice(), voices={"nova": "deep", "narrator": "deep"})
    assert {audio.voice_for(name, "audio.voice") for name in OPENAI_VOICES if name != "nova"} == {"default"}
    assert audio.voice_for("nova", "audio.voice") == "deep"
    assert audio.voice_for({"id": "narrator"}, "audio.voice") == "deep"
    for unknown in ("robot", {"id": "voice_1234"}):
        with pytest.raises(InvalidRequestError, match="is not a voice of this server") as caught:
            audio.voice_for(unknown, "audio.voice")
        assert caught.value.param == "audio.voice" and "narrator" in caught.value.message


async def test_spoken_answers_are_kept_per_project_until_they_expire():
    answers = MemoryAnswers()
    await answers.save("p1", "audio_1", "hello", expires_at=2_000)
    assert await answers.transcript("p1", "audio_1", now=1_000) == "hello"
    assert await answers.transcript("p2", "audio_1", now=1_000) is None
    assert await answers.transcript("p1", "audio_1", now=2_000) is None


class CountingTranscriber:
    """Hears a long sentence in any audio, and counts how often it was asked."""

    sample_rate = 16_000

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, samples, stop=None) -> str:
        self.calls += 1
        return "word " * 500


def wav_part(seconds: float) -> dict:
    data = encode_output(tone(seconds, 16_000), 16_000, "wav")
    return {
        "role": "user",
        "content": [{"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": "wav"}}],
    }


async def test_transcribing_stops_once_the_transcripts_cannot_fit():
    from chatport.protocol.errors import context_length_exceeded
    from chatport.protocol.requests import ChatCompletionRequest

    transcriber = CountingTranscriber()
    service = AudioService(transcriber, None)
    request = ChatCompletionRequest.model_validate({"model": "m", "messages": [wav_part(0.5)] * 5})
    heard: list[str] = []

    async def fits(transcript: str) -> None:
        heard.append(transcript)
        if len(heard) >= 2:
            raise context_length_exceeded(100, 1000)

    with pytest.raises(InvalidRequestError) as caught:
        await service.transcripts(request.messages, fits)
    assert caught.value.code == "context_length_exceeded"
    assert transcriber.calls == 2  # of five parts
    service.close()
