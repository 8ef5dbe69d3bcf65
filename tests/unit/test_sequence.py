"""A sequence's state and output without a model: stop hold-back and UTF-8 reassembly at
every split point, logprob alignment, rollback, lazy grammars."""

from __future__ import annotations

import asyncio

import llguidance as llg
import pytest

from chatport.engine.constraint import Constraint
from chatport.engine.handle import RequestHandle
from chatport.engine.sequence import Phase, Sequence
from chatport.protocol.backend import ChoiceDelta, GenerationRequest, LazyGrammar, SamplingParams, TokenLogprob
from chatport.protocol.prompt import Prompt
from tests.support.bytes_vocab import lltokenizer

EOG = 0


class PieceVocab:
    """Tokens are whatever byte strings a test registers (0 ends generation, 1 is a
    control token shown as [C] when asked for)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = [b"", b""]

    def token(self, piece: bytes) -> int:
        self.pieces.append(piece)
        return len(self.pieces) - 1

    def piece(self, token: int, *, special: bool = False) -> bytes:
        return b"[C]" if token == 1 and special else self.pieces[token]

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def tokenize_text(self, text: str) -> list[int]:
        return list(text.encode())


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def sequence(loop, vocab=None, *, prompt=(5, 6, 7), context_length=4096, **kwargs) -> Sequence:
    params = kwargs.pop("params", SamplingParams())
    request = GenerationRequest(prompt=Prompt.of_tokens(list(prompt)), params=params, **kwargs)
    handle = RequestHandle(request, loop, on_cancel=lambda: None)
    return Sequence(handle, 0, 0, vocab or PieceVocab(), context_length)


def feed(seq: Sequence, tokens: list[int], logprobs: list[TokenLogprob | None] | None = None) -> list[ChoiceDelta]:
    out = []
    for token, logprob in zip(tokens, logprobs or [None] * len(tokens), strict=True):
        seq.append(token)
        delta = seq.accept(token, logprob)
        if delta is not None:
            out.append(delta)
        if seq.phase is Phase.FINISHED:
            break
    return out


def splits(data: bytes):
    """Every way to cut ``data`` into two or three pieces."""
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
        for j in range(i + 1, len(data)):
            yield [data[:i], data[i:j], data[j:]]


TEXT = "Voilà, ünïcode: 日本 — done STOP and more"


@pytest.mark.parametrize("stop", ["STOP", "P a", " d", "日本", "é"])
def test_stop_sequences_at_every_split_point(loop, stop):
    data = TEXT.encode()
    expected = TEXT[: TEXT.find(stop)] if stop in TEXT else TEXT
    for pieces in splits(data):
        vocab = PieceVocab()
        seq = sequence(loop, vocab, stop=(stop,))
        deltas = feed(seq, [vocab.token(p) for p in pieces] + [EOG])
        released = "".join(d.text for d in deltas)
        assert released == expected, pieces
        assert deltas[-1].finish_reason == "stop"
        # Nothing that belongs to the stop sequence is ever released, even for a while.
        shown = ""
        for d in deltas:
            shown += d.text
            assert stop not in shown


def test_utf8_characters_split_over_tokens_come_out_whole(loop):
    data = "日本語 ok".encode()
    for pieces in splits(data):
        vocab = PieceVocab()
        deltas = feed(sequence(loop, vocab), [vocab.token(p) for p in pieces] + [EOG])
        assert all("\ufffd" not in d.text for d in deltas)
        assert "".join(d.text for d in deltas) == "日本語 ok"


def test_a_held_back_stop_prefix_is_released_when_generation_ends(loop):
    vocab = PieceVocab()
    deltas = feed(sequence(loop, vocab, stop=("</end>",)), [vocab.token(b"x </e"), EOG])
    assert [d.text for d in deltas] == ["x ", "</e"]


def test_logprobs_leave_with_the_text_of_their_token_and_die_with_a_stop(loop):
    vocab = PieceVocab()
    pieces = [b"ab", b" S", b"T", b"OP", b"tail"]
    lps = [TokenLogprob(p.decode(), list(p), -float(i), []) for i, p in enumerate(pieces)]
    seq = sequence(loop, vocab, stop=("STOP",), params=SamplingParams(logprobs=True))
    deltas = feed(seq, [vocab.token(p) for p in pieces], lps)
    released = [(d.text, [lp.token for lp in d.logprobs or []]) for d in deltas]
    # " S" is held back with its logprob; the stop drops both.
    assert released == [("ab", ["ab"]), (" ", [" S"]), ("", [])]
    assert deltas[-1].finish_reason == "stop" and deltas[-1].completion_tokens == 4


def test_control_tokens_are_invisible_unless_the_request_shows_them(loop):
    vocab = PieceVocab()
    hidden = feed(sequence(loop, vocab), [1, vocab.token(b"x"), EOG])
    shown = feed(sequence(loop, vocab, visible_control_tokens=frozenset({1})), [1, vocab.token(b"x"), EOG])
    assert "".join(d.text for d in hidden) == "x"
    assert "".join(d.text for d in shown) == "[C]x"


def test_length_and_context_limits(loop):
    vocab = PieceVocab()
    x = vocab.token(b"x")
    by_max = feed(sequence(loop, vocab, max_tokens=3), [x] * 10)
    assert by_max[-1].finish_reason == "length" and by_max[-1].completion_tokens == 3
    by_ctx = feed(sequence(loop, vocab, context_length=5), [x] * 10)
    assert by_ctx[-1].finish_reason == "length" and by_ctx[-1].completion_tokens == 2


def test_rollback_forgets_tokens_penalty_counts_and_grammar_progress(loop):
    grammar = Constraint(lltokenizer(), llg.LLMatcher.grammar_from_regex("(ab)+c"))
    seq = sequence(loop, ByteVocab(), prompt=[ord("p")], grammar=grammar)
    for ch in b"ab":
        seq.append(ch)
        seq.accept(ch, None)
    for ch in b"abab":  # appended, not yet output (a draft being verified)
        seq.append(ch)
    seq.num_computed = len(seq.tokens)
    assert seq.sampler.counts == {ord("a"): 3, ord("b"): 3}
    seq.rollback(3)
    assert seq.tokens == [ord("p"), ord("a"), ord("b")]
    assert seq.num_computed == 3
    assert seq.sampler.counts == {ord("a"): 1, ord("b"): 1}
    # The grammar is back after "ab": "c" now completes it.
    seq.append(ord("c"))
    assert seq.constraint is not None and seq.constraint.finished
    with pytest.raises(ValueError, match="already output"):
        seq.rollback(1)


def test_a_lazy_grammar_switches_on_at_its_trigger_and_accounts_for_the_text_after_it(loop):
    grammar = Constraint(lltokenizer(), llg.LLMatcher.grammar_from_regex(" *[0-9]+!"))
    vocab = PieceVocab()
    seq = sequence(loop, vocab, lazy_grammars=(LazyGrammar(r"CALL\(", grammar),))
    feed(seq, [vocab.token(b"hello CA")])
    assert seq.constraint is None
    feed(seq, [vocab.token(b"LL( 12")])
    assert seq.constraint is not None and not seq.constraint.finished
    # " 12" was consumed by the grammar when it switched on: "!" now completes it.
    bang = ord("!")
    seq.append(bang)
    assert seq.constraint.finished


class ByteVocab(PieceVocab):
    """Single-byte tokens matching the llguidance byte tokenizer."""

    def piece(self, token: int, *, special: bool = False) -> bytes:
        return bytes([token]) if token < 256 else b""

    def is_eog(self, token: int) -> bool:
        return token == 256
