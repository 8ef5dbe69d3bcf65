"""Images through libmtmd (llama.cpp's multimodal library): a vision projector loaded next
to the text model, images encoded into embeddings, and embeddings decoded into a
sequence's KV cells.

Encoding runs where prompts are built (the prompt pool), not on the engine thread, so a
large image never holds running streams up; what the engine thread does is decode the
finished embeddings, one image per step, as llama.cpp's server does. Encoded images are
kept by content hash (an LRU capped in bytes), so the same image in the next turn of a
conversation is not encoded again, and its KV cells are reused outright when the slot
still holds them (``Prompt.common_prefix`` compares chunks by that hash).

Like ``llama.py``, this module touches ctypes; nothing else in the engine does.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import threading
from collections import OrderedDict, deque
from typing import Any

import llama_cpp as lc
import numpy as np
import numpy.typing as npt
from llama_cpp import mtmd_cpp as mt

from chatport.protocol.backend import BackendFailure
from chatport.protocol.prompt import Image, MediaChunk, Segment

log = logging.getLogger("chatport.engine")

ENCODED_CACHE_BYTES = 256 * 1024 * 1024  # encoded images kept for reuse


class ProjectorError(RuntimeError):
    """The projector cannot be used with this model."""


_errors: deque[str] = deque(maxlen=4)  # libmtmd's latest errors, to say why a load failed


@functools.cache
def _quiet_logs() -> object:
    """libmtmd logs every image it decodes at INFO; keep its warnings and errors only.
    Runs once; the cache keeps the callback alive as long as the library may call it."""

    def forward(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            line = text.decode("utf-8", "replace").strip()
            log.warning("mtmd: %s", line)
            if level == 4:
                _errors.append(line)

    callback = lc.llama_log_callback(forward)
    mt.mtmd_log_set(callback, None)
    mt.mtmd_helper_log_set(callback, None)
    return callback


class EncodedImage:
    """An image's embeddings and the mtmd chunk that describes them (owned, freed with it)."""

    def __init__(self, vision: Vision, chunk: Any, embeddings: npt.NDArray[np.float32]) -> None:
        self._vision = vision
        self._chunk = chunk
        self.embeddings = embeddings
        self.n_tokens = int(mt.mtmd_input_chunk_get_n_tokens(chunk))
        self.n_pos = int(mt.mtmd_input_chunk_get_n_pos(chunk))

    def decode(self, lctx: Any, seq_id: int, start_pos: int, n_batch: int) -> None:
        """Write the embeddings into ``seq_id``'s KV cells from ``start_pos`` (engine thread)."""
        new_pos = lc.llama_pos(0)
        embd = self.embeddings.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        rc = mt.mtmd_helper_decode_image_chunk(
            self._vision.ctx,
            lctx,
            self._chunk,
            embd,
            start_pos,
            seq_id,
            n_batch,
            ctypes.byref(new_pos),
            mt.mtmd_helper_post_decode_callback(),
            None,
        )
        if rc != 0:
            raise BackendFailure(f"decoding an image failed (llama.cpp code {rc})")

    def __del__(self) -> None:
        if self._chunk:
            mt.mtmd_input_chunk_free(self._chunk)
            self._chunk = None


class Vision:
    """A vision projector (mmproj GGUF) for one text model."""

    def __init__(self, path: str, model: Any, *, n_threads: int, max_batch: int) -> None:
        """``model``: the text model's llama_model pointer. ``max_batch``: the most tokens
        one decode takes (a projector that needs non-causal attention must fit an image
        in one batch)."""
        _quiet_logs()
        params = mt.mtmd_context_params_default()
        params.use_gpu = False
        params.n_threads = n_threads
        params.print_timings = False
        self.path = path
        _errors.clear()
        self.ctx = mt.mtmd_init_from_file(path.encode(), model, params)
        if not self.ctx:
            why = "; ".join(_errors) or "not an mmproj GGUF, or made for a model of another width"
            raise ProjectorError(f"libmtmd could not load the projector {path}: {why}")
        if not mt.mtmd_support_vision(self.ctx):
            self.close()
            raise ProjectorError(f"{path} has no vision encoder (an audio-only projector?)")
        if mt.mtmd_decode_use_mrope(self.ctx):
            self.close()
            raise ProjectorError(
                f"{path} places image tokens with M-RoPE (Qwen2-VL, Qwen2.5-VL and their kin), which chatport's "
                "engine does not support yet; projectors with ordinary positions (Gemma 3, SmolVLM/Idefics3, "
                "LLaVA, Pixtral, InternVL) work"
            )
        self.max_batch = max_batch
        self._width = int(lc.llama_model_n_embd_inp(model))  # floats per image token
        self._lock = threading.Lock()  # one mtmd context: one encode at a time
        self._cache: OrderedDict[str, EncodedImage] = OrderedDict()
        self._cache_bytes = 0

    def encode(self, image: Image) -> list[Segment]:
        """The image as the model reads it: the projector's wrapper tokens (such as Gemma's
        ``<start_of_image>``) and one media chunk per encoded tile. Blocking."""
        with self._lock:
            return self._encode(image)

    def _encode(self, image: Image) -> list[Segment]:
        rgb = (ctypes.c_uint8 * len(image.rgb)).from_buffer_copy(image.rgb)
        bitmap = mt.mtmd_bitmap_init(image.width, image.height, rgb)
        if not bitmap:
            raise BackendFailure("libmtmd could not take the image")
        chunks = mt.mtmd_input_chunks_init()
        try:
            mt.mtmd_bitmap_set_id(bitmap, image.digest.encode())
            part = mt.mtmd_input_part(None, bitmap)
            parts = (ctypes.POINTER(mt.mtmd_input_part) * 1)(ctypes.pointer(part))
            rc = mt.mtmd_tokenize_from_parts(self.ctx, chunks, parts, 1, False)
            if rc != 0:
                raise BackendFailure(f"libmtmd could not tokenize the image (code {rc})")
            segments: list[Segment] = []
            for i in range(mt.mtmd_input_chunks_size(chunks)):
                chunk = mt.mtmd_input_chunks_get(chunks, i)
                kind = mt.mtmd_input_chunk_get_type(chunk)
                if kind == mt.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    n = ctypes.c_size_t(0)
                    tokens = mt.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
                    segments.append([int(tokens[t]) for t in range(n.value)])
                elif kind == mt.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    segments.append(self._media(chunk, image.digest, i))
                else:
                    raise BackendFailure("the projector turned an image into audio input")
            return segments
        finally:
            mt.mtmd_input_chunks_free(chunks)
            mt.mtmd_bitmap_free(bitmap)

    def _media(self, chunk: Any, digest: str, index: int) -> MediaChunk:
        # A tiled image yields several image chunks: each gets its own identity.
        key = hashlib.sha256(f"{digest}:{index}".encode()).hexdigest()
        encoded = self._cache.get(key)
        if encoded is None:
            encoded = self._run_encoder(chunk)
            self._remember(key, encoded)
        else:
            self._cache.move_to_end(key)
        if encoded.n_tokens > self.max_batch and mt.mtmd_decode_use_non_causal(self.ctx, chunk):
            raise BackendFailure(
                f"an image of {encoded.n_tokens} tokens does not fit one batch of {self.max_batch}, which this "
                "projector's non-causal attention needs"
            )
        return MediaChunk("image", key, encoded.n_tokens, encoded.n_pos, payload=encoded)

    def _run_encoder(self, chunk: Any) -> EncodedImage:
        rc = mt.mtmd_encode_chunk(self.ctx, chunk)
        if rc != 0:
            raise BackendFailure(f"the vision encoder failed (code {rc})")
        n_tokens = int(mt.mtmd_input_chunk_get_n_tokens(chunk))
        out = mt.mtmd_get_output_embd(self.ctx)
        embeddings = np.ctypeslib.as_array(out, shape=(n_tokens * self._width,)).copy()
        return EncodedImage(self, mt.mtmd_input_chunk_copy(chunk), embeddings)

    def _remember(self, key: str, encoded: EncodedImage) -> None:
        self._cache[key] = encoded
        self._cache_bytes += encoded.embeddings.nbytes
        while self._cache_bytes > ENCODED_CACHE_BYTES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.embeddings.nbytes

    def close(self) -> None:
        self._cache.clear()
        if self.ctx:
            mt.mtmd_free(self.ctx)
            self.ctx = None
