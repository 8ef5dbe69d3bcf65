"""The seam between chat semantics and speech models: audio in (speech to text) and audio
out (text to speech). ``service/`` talks to them only through these protocols; the
implementations (faster-whisper, Piper) live in ``chatport/speech/`` and are built by the
composition root. What crosses the seam is mono PCM samples and text."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]  # mono, in [-1, 1]


class Transcriber(Protocol):
    """Speech to text (Whisper)."""

    @property
    def sample_rate(self) -> int:
        """The rate ``transcribe`` expects (16 kHz for Whisper)."""
        ...

    def transcribe(self, samples: Samples, stop: threading.Event | None = None) -> str:
        """The words spoken in ``samples``. Blocking and CPU-bound: call it from a worker.
        ``stop`` set: the caller has gone; the words so far are returned, soon."""
        ...


@dataclass(frozen=True)
class Speech:
    samples: npt.NDArray[np.int16]  # mono
    sample_rate: int


class Synthesizer(Protocol):
    """Text to speech (Piper)."""

    @property
    def voices(self) -> list[str]:
        """The installed voices' names; the first is the default."""
        ...

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> Speech:
        """``text`` spoken by ``voice`` (one of ``voices``), ``speed`` times as fast as its
        natural pace. Blocking: call it from a worker."""
        ...
