"""Audio around the text engine: ``input_audio`` parts are transcribed before the prompt is
built, and answers asked for with ``modalities: ["text", "audio"]`` are spoken.

- Input: each part is decoded (PyAV) and transcribed (Whisper) in a bounded worker pool,
  never on the event loop or the engine thread; several requests transcribe while other
  streams decode. A request holds at most ``MAX_AUDIO_PARTS`` parts and
  ``MAX_AUDIO_SECONDS`` of audio in all; its parts are transcribed one after another,
  the prompt's fit checked after each, and the work stops when the client leaves. The transcript takes the part's place in the message as plain text, as
  if the user had typed what they said; ``usage.prompt_tokens_details.audio_tokens``
  counts its tokens.
- Output: the text is generated as usual, then spoken (Piper) and encoded in the asked
  format; ``message.content`` is null and ``message.audio`` holds ``id``, ``data``,
  ``expires_at`` and ``transcript``, as OpenAI answers. Streaming, each sentence is spoken
  as soon as it is complete, while the rest is still being generated.
- Voices: OpenAI's names all speak with the default voice unless ``--voice NAME=FILE``
  gives a name its own; a name given with ``--voice`` is also a custom voice
  (``{"id": NAME}``).
- Multi-turn: a spoken answer's transcript is kept for an hour (in the store when there
  is one); an assistant message with ``audio: {id}`` stands for it.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from chatport.protocol import requests as rq
from chatport.protocol.errors import InvalidRequestError, unsupported_parameter
from chatport.protocol.speech import Samples, Synthesizer, Transcriber
from chatport.service.audio_codec import OUTPUT_RATE, OutputFormat, decode_input, encode_output, resample
from chatport.service.dataurl import PayloadError, decode_payload
from chatport.service.workers import run_stoppable

MEDIA_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm16": "audio/pcm",
}
ANSWER_SECONDS = 3600  # how long a spoken answer can be referred to
MAX_AUDIO_PARTS = 20  # input_audio parts per request
MAX_AUDIO_SECONDS = 600.0  # of audio per request, all parts together
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar")
MIN_PIECE_CHARS = 12
_SENTENCE_END = re.compile(r"[.!?;:](?:[\"')\]]*)\s+|\n+")


class AnswerStore(Protocol):
    async def save(self, project: str, answer_id: str, transcript: str, expires_at: int) -> None: ...

    async def transcript(self, project: str, answer_id: str, now: int) -> str | None: ...


@dataclass
class MemoryAnswers:
    """Spoken answers kept in this process (when the server has no store)."""

    _rows: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    async def save(self, project: str, answer_id: str, transcript: str, expires_at: int) -> None:
        now = int(time.time())
        for key in [k for k, (_, _, expiry) in self._rows.items() if expiry <= now]:
            del self._rows[key]
        self._rows[answer_id] = (project, transcript, expires_at)

    async def transcript(self, project: str, answer_id: str, now: int) -> str | None:
        row = self._rows.get(answer_id)
        return row[1] if row is not None and row[0] == project and row[2] > now else None


@dataclass(frozen=True)
class SpokenAnswer:
    id: str
    data: bytes
    expires_at: int
    transcript: str

    def message_audio(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "data": base64.b64encode(self.data).decode(),
            "expires_at": self.expires_at,
            "transcript": self.transcript,
        }


class AudioService:
    def __init__(
        self,
        transcriber: Transcriber | None,
        synthesizer: Synthesizer | None,
        answers: AnswerStore | None = None,
        *,
        voices: dict[str, str] | None = None,
        workers: int = 2,
        speech_unavailable: str = 'speech output needs the tts extra: pip install "chatport[tts]"',
    ) -> None:
        """``voices``: request voice name -> synthesizer voice, for names that have their own
        (--voice); every other OpenAI name speaks with the synthesizer's default voice.
        ``speech_unavailable``: why there is no synthesizer, told to clients who ask for audio."""
        self.transcriber = transcriber
        self.synthesizer = synthesizer
        self.answers = answers or MemoryAnswers()
        self.voices = dict(voices or {})
        self.speech_unavailable = speech_unavailable
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chatport-audio")

    # --- input ----------------------------------------------------------------------------

    async def transcripts(self, messages: list[Any], fits: Callable[[str], Awaitable[None]] | None = None) -> list[str]:
        """The transcript of every ``input_audio`` part, in prompt order, one after another.
        ``fits(transcript)`` is told each as it comes and raises once the prompt cannot
        fit, so that no more audio is transcribed for a request that will be refused."""
        parts = audio_parts(messages)
        if not parts:
            return []
        if self.transcriber is None:
            param = parts[0][0]
            raise InvalidRequestError(
                f"Invalid content type in '{param}': this server has no speech-to-text model, so it cannot take audio input.",
                param=param,
                code="unsupported_content_type",
            )
        if len(parts) > MAX_AUDIO_PARTS:
            raise InvalidRequestError(
                f"Too many audio parts: the messages hold {len(parts)} input_audio parts; at most {MAX_AUDIO_PARTS} are "
                "accepted per request.",
                param="messages",
                code="too_many_audio_parts",
            )
        # Decoding is cheap beside transcribing: every part is decoded first, so that a request
        # with too much audio is refused before any of it is transcribed.
        decoded = []
        seconds = 0.0
        for param, part in parts:
            decoded.append(await self._decode(part.data, part.format, param))
            seconds += decoded[-1].size / self.transcriber.sample_rate
            if seconds > MAX_AUDIO_SECONDS:
                raise InvalidRequestError(
                    f"Invalid audio in '{param}': the request's audio parts hold more than {MAX_AUDIO_SECONDS:.0f} "
                    "seconds in all.",
                    param=param,
                    code="audio_too_long",
                )
        out: list[str] = []
        for samples in decoded:
            out.append(await self._words(samples))
            if fits is not None:
                await fits(out[-1])
        return out

    async def transcribe(self, data: bytes, fmt: str | None, param: str) -> str:
        """Decode and transcribe one upload (``/v1/audio/transcriptions``) in the audio pool."""
        return await self._words(await self._decode(data, fmt, param))

    async def _decode(self, data_b64: str | bytes, fmt: str | None, param: str) -> Samples:
        """One part's samples, at the transcriber's rate. ``data_b64``: base64 text, or raw bytes."""
        assert self.transcriber is not None
        rate = self.transcriber.sample_rate
        data = _audio_bytes(data_b64, param) if isinstance(data_b64, str) else data_b64
        return await run_stoppable(self.pool, lambda _stop: decode_input(data, fmt, rate, param))

    async def _words(self, samples: Samples) -> str:
        """The transcript, in the audio pool; stopped between segments if the caller is cancelled."""
        assert self.transcriber is not None
        transcriber = self.transcriber
        return await run_stoppable(self.pool, lambda stop: transcriber.transcribe(samples, stop))

    async def history(self, messages: list[Any], project: str) -> dict[int, str]:
        """Message index -> transcript, for earlier spoken answers sent back by id."""
        out: dict[int, str] = {}
        now = int(time.time())
        for i, message in enumerate(messages):
            if isinstance(message, rq.AssistantMessage) and message.audio is not None:
                transcript = await self.answers.transcript(project, message.audio.id, now)
                if transcript is None:
                    raise InvalidRequestError(
                        f"Audio with id '{message.audio.id}' not found. It may have expired (spoken answers are kept "
                        f"for {ANSWER_SECONDS // 60} minutes) or belong to another project.",
                        param=f"messages[{i}].audio.id",
                        code="invalid_value",
                    )
                out[i] = transcript
        return out

    # --- output ---------------------------------------------------------------------------

    def check_output(self, request: rq.ChatCompletionRequest) -> str | None:
        """The synthesizer voice for a request that asks for speech (None if it does not)."""
        wants = bool(request.modalities and "audio" in request.modalities)
        if not wants:
            if request.audio is not None:
                raise InvalidRequestError(
                    "The 'audio' parameter is only allowed when 'modalities' includes \"audio\".",
                    param="audio",
                    code="invalid_value",
                )
            return None
        if self.synthesizer is None:
            raise unsupported_parameter("modalities", f"by this server: {self.speech_unavailable}")
        if request.audio is None:
            raise InvalidRequestError(
                "Missing required parameter: 'audio'. It is required when 'modalities' includes \"audio\".",
                param="audio",
                code="missing_required_parameter",
            )
        return self.voice_for(request.audio.voice, "audio.voice")

    def voice_for(self, voice: str | dict[str, Any], param: str) -> str:
        assert self.synthesizer is not None
        name = voice.get("id") if isinstance(voice, dict) else voice
        if isinstance(name, str) and name in self.voices:
            return self.voices[name]
        if isinstance(name, str) and name in OPENAI_VOICES and not isinstance(voice, dict):
            return self.synthesizer.voices[0]
        known = ", ".join([*OPENAI_VOICES, *(v for v in self.voices if v not in OPENAI_VOICES)])
        raise InvalidRequestError(
            f"Invalid value for '{param}': {name!r} is not a voice of this server. Supported values are: {known}.",
            param=param,
            code="invalid_value",
        )

    async def speak(self, text: str, voice: str, fmt: OutputFormat, *, speed: float = 1.0) -> bytes:
        """``text`` spoken and encoded (in the audio pool)."""
        samples, rate = await self.pcm(text, voice, None, speed=speed)
        return await asyncio.get_running_loop().run_in_executor(self.pool, encode_output, samples, rate, fmt)

    async def pcm(self, text: str, voice: str, rate: int | None, *, speed: float = 1.0) -> tuple[npt.NDArray[np.int16], int]:
        """``text`` spoken as 16-bit mono samples, at ``rate`` (or the voice's own)."""
        assert self.synthesizer is not None
        synthesizer = self.synthesizer

        def work() -> tuple[npt.NDArray[np.int16], int]:
            speech = synthesizer.synthesize(text, voice, speed) if text.strip() else None
            samples = speech.samples if speech is not None else np.zeros(0, dtype=np.int16)
            sample_rate = speech.sample_rate if speech is not None else OUTPUT_RATE
            if rate is not None:
                return resample(samples, sample_rate, rate), rate
            return samples, sample_rate

        return await asyncio.get_running_loop().run_in_executor(self.pool, work)

    async def answer(self, text: str, voice: str, fmt: OutputFormat, project: str) -> SpokenAnswer:
        data = await self.speak(text, voice, fmt)
        answer_id, expires_at = await self.remember(project, text)
        return SpokenAnswer(answer_id, data, expires_at, text)

    async def remember(self, project: str, transcript: str, answer_id: str | None = None) -> tuple[str, int]:
        answer_id = answer_id or new_answer_id()
        expires_at = int(time.time()) + ANSWER_SECONDS
        await self.answers.save(project, answer_id, transcript, expires_at)
        return answer_id, expires_at

    # --- /v1/audio/transcriptions and /v1/audio/speech ---------------------------------

    async def transcription(self, data: bytes, response_format: str) -> tuple[str, str]:
        """(body, media type) for POST /v1/audio/transcriptions."""
        if response_format not in ("json", "text"):
            raise InvalidRequestError(
                f"Invalid value for 'response_format': {response_format!r}. Supported values are: 'json' and 'text'.",
                param="response_format",
                code="invalid_value",
            )
        if self.transcriber is None:
            raise unsupported_parameter("file", "by this server: it has no speech-to-text model")
        text = await self.transcribe(data, None, "file")
        if response_format == "text":
            return text, "text/plain; charset=utf-8"
        return orjson.dumps({"text": text}).decode(), "application/json"

    async def speech(self, request: rq.SpeechRequest) -> tuple[bytes, str]:
        """(audio, media type) for POST /v1/audio/speech."""
        if self.synthesizer is None:
            raise unsupported_parameter("voice", f"by this server: {self.speech_unavailable}")
        if request.stream_format != "audio":
            raise unsupported_parameter("stream_format", "with value 'sse' by this server; use 'audio'")
        voice = self.voice_for(request.voice, "voice")
        fmt: OutputFormat = "pcm16" if request.response_format == "pcm" else request.response_format
        return await self.speak(request.input, voice, fmt, speed=request.speed), MEDIA_TYPES[fmt]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def new_answer_id() -> str:
    return "audio_" + secrets.token_hex(12)


def audio_parts(messages: list[Any]) -> list[tuple[str, rq.InputAudio]]:
    return [(param, part.input_audio) for param, part in rq.parts_of(messages, rq.AudioPart)]


def _audio_bytes(data: str, param: str) -> bytes:
    try:
        return decode_payload(data, 25 * 1024 * 1024)
    except PayloadError as exc:
        why = {"too_large": "the audio is larger than 25 MB", "empty": "the audio is empty"}.get(
            exc.kind, "its data is not valid base64"
        )
        raise InvalidRequestError(f"Invalid audio in '{param}': {why}.", param=param, code="invalid_input_audio") from None


def _sentence_end(text: str) -> int:
    """Where the first piece worth speaking ends (0: none yet)."""
    for match in _SENTENCE_END.finditer(text):
        if match.end() >= MIN_PIECE_CHARS:
            return match.end()
    return 0


class SentenceSpeaker:
    """A streamed answer spoken sentence by sentence while it is generated: text goes in
    as it arrives, base64 pcm16 (24 kHz) comes out in order. Each piece holds a whole
    number of 3-sample groups (6 bytes), so its base64 has no padding and the pieces,
    joined as the SDKs' stream helpers join them, are the base64 of the whole answer."""

    def __init__(self, audio: AudioService, voice: str) -> None:
        self._audio = audio
        self._voice = voice
        self.id = new_answer_id()  # the spoken answer's, sent with its first transcript delta
        self.text = ""  # all text fed so far: the answer's transcript
        self._buffer = ""
        self._jobs: list[asyncio.Task[tuple[npt.NDArray[np.int16], int]]] = []
        self._carry = np.zeros(0, dtype=np.int16)

    def feed(self, text: str) -> None:
        self.text += text
        self._buffer += text
        # A list marker ("1. ") or an abbreviation is not worth a clip of its own: a piece
        # is cut at a sentence end only once it holds a few words.
        while end := _sentence_end(self._buffer):
            sentence, self._buffer = self._buffer[:end], self._buffer[end:]
            self._start(sentence)

    def _start(self, sentence: str) -> None:
        if sentence.strip():
            self._jobs.append(asyncio.ensure_future(self._audio.pcm(sentence, self._voice, OUTPUT_RATE)))

    async def ready(self) -> AsyncIterator[str]:
        """The pieces whose sentences are spoken, in order, without waiting."""
        while self._jobs and self._jobs[0].done():
            yield self._piece(self._jobs.pop(0).result()[0])

    async def finish(self) -> AsyncIterator[str]:
        """The rest (the last sentence may have no end mark), waiting for each."""
        self._start(self._buffer)
        self._buffer = ""
        while self._jobs:
            yield self._piece((await self._jobs.pop(0))[0])
        if self._carry.size:
            yield base64.b64encode(self._carry.astype("<i2").tobytes()).decode()
            self._carry = np.zeros(0, dtype=np.int16)

    def cancel(self) -> None:
        for job in self._jobs:
            job.cancel()

    def _piece(self, samples: npt.NDArray[np.int16]) -> str:
        joined = np.concatenate([self._carry, samples])
        whole = joined.size - joined.size % 3
        self._carry = joined[whole:]
        return base64.b64encode(joined[:whole].astype("<i2").tobytes()).decode()
