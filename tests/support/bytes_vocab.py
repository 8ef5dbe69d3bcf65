"""A byte-level vocabulary for tests that need no model: token i (0-255) is byte i, token
256 ends generation, token 257 is a control token (shown only when asked for).

``lltokenizer()`` gives llguidance the same vocabulary, so real grammars run on it."""

from __future__ import annotations

import functools

import llguidance as llg
from llguidance._tokenizer import TokenizerWrapper

EOG = 256
CONTROL = 257
CONTROL_TEXT = b"[CTRL]"
N_VOCAB = 258


class ByteVocab:
    n_vocab = N_VOCAB

    def piece(self, token: int, *, special: bool = False) -> bytes:
        if token < 256:
            return bytes([token])
        return CONTROL_TEXT if token == CONTROL and special else b""

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def tokenize_text(self, text: str) -> list[int]:
        return list(text.encode())


def tokens(text: str) -> list[int]:
    return list(text.encode())


class _ByteTokenizer:
    def __init__(self) -> None:
        self.eos_token_id = EOG
        self.bos_token_id = None
        self.tokens = [bytes([i]) for i in range(256)] + [b"\xff<eog>", b"\xff[CTRL]"]
        self.special_token_ids = [EOG, CONTROL]

    def __call__(self, data: bytes) -> list[int]:
        return list(data)


@functools.cache
def lltokenizer() -> llg.LLTokenizer:
    return llg.LLTokenizer(TokenizerWrapper(_ByteTokenizer()))


def accepts(grammar: str, text: str) -> bool:
    """Whether ``text`` is a complete sentence of ``grammar``."""
    matcher = llg.LLMatcher(lltokenizer(), grammar, log_level=0)
    if matcher.is_error():
        raise ValueError(matcher.get_error())
    return matcher.consume_tokens(tokens(text)) and matcher.is_accepting()
