"""``chatport bench audio``: how fast speech goes in and out on this machine.

- Transcription: speech of about 5, 20 and 60 seconds (spoken by the server's own voice)
  sent to /v1/audio/transcriptions; the speed is seconds of audio per second of wall time.
- Spoken answers, streamed: the time from the request to the first transcript delta, to
  the end of the first sentence in the transcript, and to the first audio bytes; the gap
  between the last two is what a listener waits for speech after the text is there.
"""

from __future__ import annotations

import base64
import io
import json
import re
import statistics
import tempfile
import time
from dataclasses import dataclass

import av
import httpx

from chatport.bench.servers import start_chatport

ROUNDS = 3
PLACES = [
    "library",
    "museum",
    "station",
    "bakery",
    "school",
    "garden",
    "harbour",
    "market",
    "theatre",
    "hospital",
    "bank",
    "hotel",
]
THINGS = ["books", "tickets", "letters", "parcels", "flowers", "maps", "bicycles", "coats", "keys", "lamps", "chairs", "boxes"]


def paragraph(n: int) -> str:
    """``n`` different sentences: repeated text would trip Whisper's repetition checks,
    which decode again at higher temperatures and time something else than speech."""
    return " ".join(
        f"The {PLACES[i % 12]} on {['north', 'south', 'east', 'west'][i % 4]} street keeps {i + 3} "
        f"{THINGS[(i * 5) % 12]} for {['visitors', 'children', 'workers'][i % 3]} until {i % 9 + 2} o'clock."
        for i in range(n)
    )


SENTENCE_END = re.compile(r"[.!?;:]\s")


@dataclass
class TranscriptionResult:
    audio_seconds: float
    wall_seconds: float

    @property
    def speed(self) -> float:
        return self.audio_seconds / self.wall_seconds


@dataclass
class SpokenStreamResult:
    first_text: float
    first_sentence: float
    first_audio: float


def _seconds(wav: bytes) -> float:
    with av.open(io.BytesIO(wav), mode="r") as container:
        return sum(f.samples / f.sample_rate for f in container.decode(audio=0))


def _transcriptions(http: httpx.Client) -> list[TranscriptionResult]:
    out = []
    for sentences in (2, 8, 24):  # about 8, 30 and 90 seconds of speech
        speech = http.post(
            "/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": paragraph(sentences), "response_format": "wav"}
        )
        speech.raise_for_status()
        wav = speech.content
        walls = []
        for _ in range(ROUNDS):
            began = time.perf_counter()
            r = http.post("/audio/transcriptions", files={"file": ("speech.wav", wav)}, data={"model": "whisper-1"})
            r.raise_for_status()
            walls.append(time.perf_counter() - began)
        out.append(TranscriptionResult(_seconds(wav), statistics.median(walls)))
    return out


def _spoken_stream(http: httpx.Client, model: str) -> SpokenStreamResult:
    body = {
        "model": model,
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "pcm16"},
        "messages": [{"role": "user", "content": "Tell me about a walk in the forest, in plain prose."}],
        "max_tokens": 120,
        "temperature": 0,
        "stream": True,
    }
    began = time.perf_counter()
    first_text = first_sentence = first_audio = 0.0
    transcript = ""
    with http.stream("POST", "/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            now = time.perf_counter() - began
            chunk = json.loads(line[6:])
            audio = chunk["choices"][0]["delta"].get("audio", {}) if chunk["choices"] else {}
            if audio.get("transcript"):
                transcript += audio["transcript"]
                first_text = first_text or now
                if not first_sentence and SENTENCE_END.search(transcript):
                    first_sentence = now
            if audio.get("data") and base64.b64decode(audio["data"]):
                first_audio = first_audio or now
    return SpokenStreamResult(first_text, first_sentence or first_text, first_audio)


def run_audio(model: str, model_path: str) -> tuple[list[TranscriptionResult], SpokenStreamResult]:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_chatport(
            "--model", model_path, "--model-id", model, "--store", f"sqlite:///{tmp}/a.db", log_path=f"{tmp}/log"
        )
        try:
            headers = {"Authorization": "Bearer bench"}
            with httpx.Client(base_url=server.api, timeout=600, headers=headers) as http:
                http.post("/audio/transcriptions", files={"file": ("w.wav", _warm_wav(http))}, data={"model": "whisper-1"})
                transcriptions = _transcriptions(http)
                streams = [_spoken_stream(http, model) for _ in range(ROUNDS + 1)][1:]  # the first loads the voice
        finally:
            server.stop()
    spoken = SpokenStreamResult(
        statistics.median(s.first_text for s in streams),
        statistics.median(s.first_sentence for s in streams),
        statistics.median(s.first_audio for s in streams),
    )
    return transcriptions, spoken


def _warm_wav(http: httpx.Client) -> bytes:
    """Loads Whisper and the voice before anything is timed."""
    r = http.post("/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Warming up.", "response_format": "wav"})
    r.raise_for_status()
    return r.content


def markdown(command: str, transcriptions: list[TranscriptionResult], spoken: SpokenStreamResult) -> str:
    lines = [
        f"Audio: `{command}` (Whisper tiny.en int8, Piper en_US-joe-medium; medians of {ROUNDS} runs)",
        "",
        "| speech (s) | transcribed in (s) | speed |",
        "| ---: | ---: | ---: |",
    ]
    lines += [f"| {t.audio_seconds:.1f} | {t.wall_seconds:.2f} | {t.speed:.1f}x real time |" for t in transcriptions]
    lines += [
        "",
        "| spoken answer, streamed | seconds after the request |",
        "| --- | ---: |",
        f"| first transcript delta | {spoken.first_text:.2f} |",
        f"| first sentence complete | {spoken.first_sentence:.2f} |",
        f"| first audio bytes | {spoken.first_audio:.2f} |",
        f"| audio after the first sentence's end | {spoken.first_audio - spoken.first_sentence:.2f} |",
    ]
    return "\n".join(lines) + "\n"
