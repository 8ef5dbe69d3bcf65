"""The thin layer over llama-cpp-python's low-level API: a loaded model and a context.

Only this module touches ctypes; the rest of the engine sees numpy arrays and ints.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from functools import cached_property

import llama_cpp as lc
import llguidance as llg
import llguidance.llamacpp as llg_llamacpp
import numpy as np
import numpy.typing as npt
from llama_cpp import _logger as llama_logger

from chatport.engine.prompt_cache import KVState
from chatport.protocol.backend import BackendFailure
from chatport.protocol.prompt import MediaChunk

_backend_lock = threading.Lock()
_backend_ready = threading.Event()


def _init_backend() -> None:
    with _backend_lock:
        if not _backend_ready.is_set():
            # llama.cpp's load-time chatter (thousands of lines per model) stays out of our
            # logs; its errors still come through.
            llama_logger.set_verbose(False)
            lc.llama_backend_init()
            _backend_ready.set()


log = logging.getLogger("chatport.engine")


class ModelLoadError(RuntimeError):
    pass


def repack_is_safe(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether llama.cpp's extra buffer types may be used on this CPU.

    They are the repacked CPU kernels (Q4_0, Q4_K, IQ4_NL, Q8_0 weights laid out for
    AVX2/AVX-512 and ARM) and, on CPUs with AMX, the AMX buffer. The AMX one is what
    crashes: ``ggml_backend_amx_mul_mat`` segfaults on the first multi-token decode on
    Sapphire-Rapids-class hosts (ggml-org/llama.cpp#20824, open), while the repacked
    kernels are correct where there is no AMX. llama.cpp enables both together, so
    hosts with AMX keep the plain kernels."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" not in line.split()
    except OSError:
        pass
    return False  # unknown CPU: the plain kernels are correct everywhere


class LlamaModel:
    """A GGUF model's weights and vocabulary, shared by every context made from it.

    ``vocab_only`` loads the vocabulary and metadata without the weights (tokenizer tests)."""

    def __init__(
        self,
        path: str,
        progress: Callable[[float], None] | None = None,
        *,
        vocab_only: bool = False,
        repack: bool = False,
    ) -> None:
        """``repack``: lay weights out for the CPU's wide kernels (llama.cpp's extra buffer
        types), where that is safe (see :func:`repack_is_safe`). Off by default: measured
        (docs/benchmarks.md), it gave Qwen2.5-0.5B Q4_K_M +6% at 16 streams and nothing at
        one, and answers then depend on whether the prompt came from the prefix cache (the
        repacked kernels round differently for one token than for a batch), so a seeded
        request no longer repeats itself exactly."""
        if not os.path.isfile(path):
            raise ModelLoadError(f"no such model file: {path}")
        _init_backend()
        params = lc.llama_model_default_params()
        params.vocab_only = vocab_only
        params.use_extra_bufts = repack and repack_is_safe()
        if repack and not params.use_extra_bufts:
            log.warning("not repacking weights: this CPU has AMX, whose llama.cpp kernels crash (ggml-org/llama.cpp#20824)")
        self.repacked = bool(params.use_extra_bufts)
        if progress is not None:

            def on_progress(value: float, _user: ctypes.c_void_p) -> bool:
                progress(float(value))
                return True

            self._progress_cb = lc.llama_progress_callback(on_progress)
            params.progress_callback = self._progress_cb
        self.path = path
        self._model = lc.llama_model_load_from_file(path.encode(), params)
        if not self._model:
            raise ModelLoadError(f"llama.cpp could not load {path}")
        self._vocab = lc.llama_model_get_vocab(self._model)
        self.n_vocab = lc.llama_vocab_n_tokens(self._vocab)
        self.n_ctx_train = lc.llama_model_n_ctx_train(self._model)
        self.metadata = self._read_metadata()
        self.token_bytes = [self._piece(t) for t in range(self.n_vocab)]
        self.eog_mask = np.array([lc.llama_vocab_is_eog(self._vocab, t) for t in range(self.n_vocab)], dtype=bool)
        self.bos_id = lc.llama_vocab_bos(self._vocab)
        self._llg_lock = threading.Lock()
        self._lltokenizer: llg.LLTokenizer | None = None

    def _read_metadata(self) -> dict[str, str]:
        out: dict[str, str] = {}
        key = ctypes.create_string_buffer(512)
        for i in range(lc.llama_model_meta_count(self._model)):
            lc.llama_model_meta_key_by_index(self._model, i, key, len(key))
            size = lc.llama_model_meta_val_str_by_index(self._model, i, None, 0)
            value = ctypes.create_string_buffer(max(size, 0) + 1)
            lc.llama_model_meta_val_str_by_index(self._model, i, value, len(value))
            out[key.value.decode("utf-8", "replace")] = value.value.decode("utf-8", "replace")
        return out

    def _piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def token_text(self, token: int) -> str:
        """The token's text with control tokens spelled out, for templates and prompts."""
        return self._piece(token, special=True).decode("utf-8", "replace")

    # --- the engine's token table ---------------------------------------------------

    def piece(self, token: int, *, special: bool = False) -> bytes:
        return self._piece(token, special=True) if special else self.token_bytes[token]

    def is_eog(self, token: int) -> bool:
        return bool(self.eog_mask[token])

    def tokenize_text(self, text: str) -> list[int]:
        return self.tokenize(text, special=False)

    # --------------------------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """``special``: match control and user-defined tokens written in the text."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        out = (lc.llama_token * capacity)()
        n = lc.llama_tokenize(self._vocab, data, len(data), out, capacity, False, special)
        if n < 0:
            capacity = -n
            out = (lc.llama_token * capacity)()
            n = lc.llama_tokenize(self._vocab, data, len(data), out, capacity, False, special)
        return list(out[:n])

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.token_bytes[t] for t in tokens).decode("utf-8", "replace")

    @cached_property
    def special_tokens(self) -> dict[str, tuple[int, bool]]:
        """Text -> (id, is a control token) of every token the tokenizer matches whole in
        special mode: control tokens, and user-defined ones (Qwen's <tool_call>)."""
        out: dict[str, tuple[int, bool]] = {}
        for token in range(self.n_vocab):
            attr = lc.llama_vocab_get_attr(self._vocab, token)
            control = bool(attr & (lc.LLAMA_TOKEN_ATTR_CONTROL | lc.LLAMA_TOKEN_ATTR_UNKNOWN))
            if control or attr & lc.LLAMA_TOKEN_ATTR_USER_DEFINED:
                text = self.token_text(token)
                if text and text not in out:
                    out[text] = (token, control)
        return out

    @property
    def pointer(self) -> object:
        """The llama_model pointer, for libraries that load beside it (libmtmd)."""
        return self._model

    @property
    def lltokenizer(self) -> llg.LLTokenizer:
        """llguidance's view of the vocabulary (built once, ~0.3 s)."""
        with self._llg_lock:
            if self._lltokenizer is None:
                self._lltokenizer = llg_llamacpp.lltokenizer_from_vocab(self._vocab)
            return self._lltokenizer

    def new_context(self, *, context_length: int, n_seq_max: int, n_batch: int, n_threads: int) -> LlamaContext:
        return LlamaContext(self, context_length=context_length, n_seq_max=n_seq_max, n_batch=n_batch, n_threads=n_threads)

    def close(self) -> None:
        if self._model:
            lc.llama_model_free(self._model)
            self._model = None


class BatchView:
    """A llama_batch whose arrays are numpy buffers we own, filled without ctypes loops."""

    def __init__(self, capacity: int) -> None:
        self.capacity = cap = capacity
        self.token = np.zeros(cap, dtype=np.int32)
        self.pos = np.zeros(cap, dtype=np.int32)
        self.n_seq_id = np.ones(cap, dtype=np.int32)
        self.seq = np.zeros(cap, dtype=np.int32)
        self.logits = np.zeros(cap, dtype=np.int8)
        seq_ptr = self.seq.ctypes.data
        self._seq_ptrs = (ctypes.POINTER(lc.llama_seq_id) * cap)(
            *[ctypes.cast(seq_ptr + 4 * i, ctypes.POINTER(lc.llama_seq_id)) for i in range(cap)]
        )
        # llama_cpp declares the pointer fields as arrays; they take pointers to our buffers.
        self.raw = lc.llama_batch()
        self.raw.embd = None  # type: ignore[assignment]
        self.raw.token = self.token.ctypes.data_as(ctypes.POINTER(lc.llama_token))  # type: ignore[assignment]
        self.raw.pos = self.pos.ctypes.data_as(ctypes.POINTER(lc.llama_pos))  # type: ignore[assignment]
        self.raw.n_seq_id = self.n_seq_id.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))  # type: ignore[assignment]
        self.raw.seq_id = self._seq_ptrs  # type: ignore[assignment]
        self.raw.logits = self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))  # type: ignore[assignment]
        self.size = 0
        self.n_outputs = 0

    def clear(self) -> None:
        self.size = 0
        self.n_outputs = 0

    def add(self, tokens: list[int], start_pos: int, seq_id: int, n_logits: int) -> None:
        """Append tokens of one sequence at consecutive positions; the last ``n_logits``
        of them produce logits rows (rows come out in the order they are added)."""
        n = len(tokens)
        lo, hi = self.size, self.size + n
        self.token[lo:hi] = tokens
        self.pos[lo:hi] = np.arange(start_pos, start_pos + n, dtype=np.int32)
        self.seq[lo:hi] = seq_id
        self.logits[lo : hi - n_logits] = 0
        self.logits[hi - n_logits : hi] = 1
        self.size = hi
        self.n_outputs += n_logits


class LlamaContext:
    """One llama.cpp context: a KV cache with one stream per sequence slot."""

    def __init__(self, model: LlamaModel, *, context_length: int, n_seq_max: int, n_batch: int, n_threads: int) -> None:
        params = lc.llama_context_default_params()
        params.n_ctx = context_length * n_seq_max
        params.n_batch = n_batch
        params.n_ubatch = min(n_batch, 512)
        params.n_seq_max = n_seq_max
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        # One KV stream per slot: attention only scans a sequence's own cells, and a
        # slot's cells can be handed on whole (prefix reuse, n>1 forks). A shared (unified)
        # buffer makes every query scan every slot's cells, idle slots' cached prefixes
        # included: measured, 16 streams of ~1,000-token prompts ran at 162 tok/s unified
        # and 207 with streams. Streams need the batch in slot order (Scheduler.plan).
        params.kv_unified = False
        params.no_perf = True
        self.model = model
        self._ctx = lc.llama_init_from_model(model._model, params)
        if not self._ctx:
            raise ModelLoadError("llama.cpp could not create a context (out of memory?)")
        self._mem = lc.llama_get_memory(self._ctx)
        self.context_length = lc.llama_n_ctx(self._ctx) // n_seq_max
        self.n_seq_max = n_seq_max
        self.batch = BatchView(n_batch)
        self.batch_capacity = n_batch
        self.n_ubatch = lc.llama_n_ubatch(self._ctx)

    def decode(self) -> npt.NDArray[np.float32]:
        """Run the batch; returns the logits of the rows that asked for them."""
        self.batch.raw.n_tokens = self.batch.size
        rc = lc.llama_decode(self._ctx, self.batch.raw)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")
        n = self.batch.n_outputs
        if n == 0:
            return np.empty((0, self.model.n_vocab), dtype=np.float32)
        ptr = lc.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(ptr, shape=(n, self.model.n_vocab))

    def decode_media(self, chunk: MediaChunk, seq_id: int, start_pos: int) -> None:
        """Decode an encoded image into the sequence's cells from ``start_pos``."""
        decode = getattr(chunk.payload, "decode", None)
        if decode is None:
            raise BackendFailure(f"{chunk.kind} input needs a multimodal projector, and none is loaded")
        decode(self._ctx, seq_id, start_pos, self.n_ubatch)

    def remove(self, seq_id: int, from_pos: int) -> None:
        """Drop the sequence's KV cells at positions >= from_pos (``llama_memory_seq_rm``)."""
        lc.llama_memory_seq_rm(self._mem, seq_id, from_pos, -1)

    def copy_sequence(self, src: int, dst: int) -> None:
        lc.llama_memory_seq_rm(self._mem, dst, -1, -1)
        lc.llama_memory_seq_cp(self._mem, src, dst, -1, -1)

    def state_size(self, seq_id: int) -> int:
        return int(lc.llama_state_seq_get_size(self._ctx, seq_id))

    def save_sequence(self, seq_id: int) -> npt.NDArray[np.uint8]:
        """The sequence's KV cells (and positions), for the prompt cache.

        Written straight into the array the cache keeps: one copy. A ctypes buffer copied
        into bytes made two, each into memory the host may have to fault in (2-14 ms per
        4 MiB measured on a 2-core VM, against 0.25-0.3 ms for llama.cpp's own work on a
        171-cell SmolLM2 state of 3.9 MB)."""
        size = self.state_size(seq_id)
        state = np.empty(size, dtype=np.uint8)
        written = lc.llama_state_seq_get_data(self._ctx, _bytes_pointer(state), size, seq_id)
        return state[:written]

    def restore_sequence(self, seq_id: int, state: KVState) -> bool:
        """Replace the sequence's cells with saved ones; False if llama.cpp refuses them
        (another model's, or no room in the slot)."""
        lc.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
        source = np.frombuffer(state, dtype=np.uint8)  # no copy: llama.cpp only reads it
        read = lc.llama_state_seq_set_data(self._ctx, _bytes_pointer(source), source.size, seq_id)
        if read == 0:
            lc.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
        return bool(read)

    def close(self) -> None:
        if self._ctx:
            lc.llama_free(self._ctx)
            self._ctx = None


def _bytes_pointer(array: npt.NDArray[np.uint8]) -> ctypes._Pointer[ctypes.c_uint8]:
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
