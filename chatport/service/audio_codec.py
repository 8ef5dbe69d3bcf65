"""Audio bytes <-> PCM samples, with PyAV (FFmpeg): ``input_audio`` parts decoded to the
rate the transcriber wants, and spoken answers encoded in the format a request asks for.

OpenAI's audio output runs at 24 kHz (``pcm16`` is raw 16-bit little-endian mono at 24
kHz), so every format is written at 24 kHz except Opus, whose encoder takes 48 kHz.
CPU work: callers run it in a worker, never on the event loop.
"""

from __future__ import annotations

import io
from typing import Literal

import av
import numpy as np
import numpy.typing as npt

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.speech import Samples

OUTPUT_RATE = 24_000
MAX_INPUT_SECONDS = 600.0  # ten minutes of speech per part
MAX_INPUT_BYTES = 25 * 1024 * 1024  # OpenAI's upload limit for audio

OutputFormat = Literal["wav", "mp3", "flac", "opus", "aac", "pcm16"]
# format -> (container, codec, sample rate)
_ENCODERS: dict[str, tuple[str, str, int]] = {
    "wav": ("wav", "pcm_s16le", OUTPUT_RATE),
    "mp3": ("mp3", "libmp3lame", OUTPUT_RATE),
    "flac": ("flac", "flac", OUTPUT_RATE),
    "opus": ("ogg", "libopus", 48_000),
    "aac": ("adts", "aac", OUTPUT_RATE),
}
# The demuxer names FFmpeg gives each accepted input format.
_INPUT_DEMUXERS = {"wav": {"wav"}, "mp3": {"mp3"}}


def decode_input(data: bytes, declared: str | None, rate: int, param: str) -> Samples:
    """The part's audio as mono float32 at ``rate``; a 400 naming ``param`` when the data
    is not audio, not the declared format (None: any format FFmpeg reads), empty or too long."""

    def bad(why: str, code: str = "invalid_input_audio") -> InvalidRequestError:
        return InvalidRequestError(f"Invalid audio in '{param}': {why}.", param=param, code=code)

    if len(data) > MAX_INPUT_BYTES:
        raise bad(f"the audio is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB", "audio_too_large")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError):
        raise bad(f"the data is not {declared + ' ' if declared else ''}audio (it could not be decoded)") from None
    with container:
        names = set(container.format.name.split(","))
        if declared is not None and not names & _INPUT_DEMUXERS[declared]:
            raise bad(f"the data is {container.format.name} audio, not {declared} as 'format' says")
        if not container.streams.audio:
            raise bad("the data holds no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces: list[npt.NDArray[np.float32]] = []
        seconds = 0.0
        try:
            for frame in container.decode(audio=0):
                pieces += [_floats(out) for out in resampler.resample(frame)]
                seconds += frame.samples / max(frame.sample_rate, 1)
                if seconds > MAX_INPUT_SECONDS:
                    raise bad(f"the audio is longer than {MAX_INPUT_SECONDS:.0f} seconds", "audio_too_long")
            pieces += [_floats(out) for out in resampler.resample(None)]
        except av.FFmpegError:
            raise bad(f"the {declared or 'audio'} data is broken (decoding failed part way)") from None
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    if samples.size < rate // 100:  # less than 10 ms
        raise bad("the audio is empty")
    return samples.astype(np.float32, copy=False)


def _floats(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)


def resample(samples: npt.NDArray[np.int16], rate: int, to: int) -> npt.NDArray[np.int16]:
    """Mono 16-bit PCM from ``rate`` to ``to`` Hz."""
    if rate == to or samples.size == 0:
        return samples
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16, copy=False) if out else np.zeros(0, dtype=np.int16)


def encode_output(samples: npt.NDArray[np.int16], rate: int, fmt: OutputFormat) -> bytes:
    """Mono 16-bit PCM as ``fmt`` (``pcm16``: raw little-endian samples at 24 kHz)."""
    if fmt == "pcm16":
        return resample(samples, rate, OUTPUT_RATE).astype("<i2").tobytes()
    container_name, codec, out_rate = _ENCODERS[fmt]
    pcm = resample(samples, rate, out_rate)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_name) as container:
        stream = container.add_stream(codec, rate=out_rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        frame_size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=out_rate)
        for start in range(0, max(pcm.size, 1), frame_size):
            piece = pcm[start : start + frame_size]
            if piece.size == 0:
                break
            frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = out_rate
            frame.pts = start
            for converted in resampler.resample(frame):
                container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return buffer.getvalue()
