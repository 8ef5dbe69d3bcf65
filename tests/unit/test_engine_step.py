"""The engine loop without a model: admission, forks, drafts and rollback, media chunks,
prefix reuse, checked against a fake context that keeps its KV cache honest."""

from __future__ import annotations

import asyncio

import llguidance as llg
import numpy as np
import pytest

from chatport.engine.constraint import Constraint, step_masks
from chatport.engine.engine import Engine
from chatport.engine.handle import RequestHandle
from chatport.engine.history import AnswerHistory
from chatport.engine.sequence import Sequence
from chatport.protocol.backend import ChoiceDelta, GenerationRequest, SamplingParams, Thinking
from chatport.protocol.prompt import MediaChunk, Prompt
from tests.support.bytes_vocab import CONTROL, EOG, N_VOCAB, ByteVocab, lltokenizer, tokens
from tests.support.fake_context import FakeContext, next_token

GREEDY = SamplingParams(temperature=0.0)


def make_engine(
    n_seqs: int = 4,
    *,
    drafter=None,
    batch_capacity: int = 64,
    context_length: int = 512,
    prompt_cache=None,
    speculation: bool = False,
    history: AnswerHistory | None = None,
) -> tuple[Engine, FakeContext]:
    context = FakeContext(n_seqs, batch_capacity=batch_capacity)
    engine = Engine(
        context,
        ByteVocab(),
        context_length=context_length,
        max_seqs=n_seqs,
        max_waiting=16,
        queue_timeout=60.0,
        drafter=drafter,
        prompt_cache=prompt_cache,
        speculation=speculation,
        history=history,
    )
    return engine, context


def request(text: str = "say: a", **kwargs) -> GenerationRequest:
    return GenerationRequest(prompt=Prompt.of_tokens(tokens(text)), params=kwargs.pop("params", GREEDY), **kwargs)


async def run(engine: Engine, *requests: GenerationRequest) -> list[list[ChoiceDelta]]:
    """Submit, step until idle, and collect every handle's deltas in order."""
    handles = [engine.submit(r) for r in requests]
    while engine.tick():
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    out = []
    for handle in handles:
        await handle.wait_admitted()
        out.append([d async for step in handle for d in step])
    return out


def text_of(deltas: list[ChoiceDelta], index: int = 0) -> str:
    return "".join(d.text for d in deltas if d.index == index)


async def test_greedy_generation_follows_the_logits_to_the_end_of_generation():
    engine, _context = make_engine()
    (deltas,) = await run(engine, request("say: t"))
    # After "t" the scripted logits count up to "z", which leads to end-of-generation.
    assert text_of(deltas) == "uvwxyz"
    assert deltas[-1].finish_reason == "stop" and deltas[-1].completion_tokens == 7
    assert engine.scheduler.running == [] and not any(s.busy for s in engine.scheduler.slots)


async def test_max_tokens_ends_with_length():
    engine, _ = make_engine()
    (deltas,) = await run(engine, request("say: a", max_tokens=3))
    assert text_of(deltas) == "bcd"
    assert deltas[-1].finish_reason == "length" and deltas[-1].completion_tokens == 3


async def test_n_choices_prefill_once_and_fork_the_prompt_kv():
    engine, context = make_engine()
    (deltas,) = await run(engine, request("say: w", n=3))
    assert [text_of(deltas, i) for i in range(3)] == ["xyz"] * 3
    # The prompt was fed once; the other two choices got its KV by copy.
    prompt_len = len(tokens("say: w"))
    assert all(len(kv) >= prompt_len for kv in context.kv[:3])
    assert sum(1 for d in deltas if d.finish_reason) == 3


async def test_a_prompt_longer_than_the_batch_is_prefilled_in_chunks_beside_running_streams():
    engine, context = make_engine(batch_capacity=8)
    short, long = await run(engine, request("say: q"), request("x" * 40 + " then: v"))
    assert text_of(short) == "rstuvwxyz" and text_of(long) == "wxyz"
    assert context.decodes >= 40 // 8


async def test_a_repeated_prompt_reuses_the_free_slot_holding_its_prefix():
    engine, _ = make_engine()
    await run(engine, request("a shared system prompt; question one: y"))
    handle = engine.submit(request("a shared system prompt; question two: y"))
    while engine.tick():
        await asyncio.sleep(0)
    await handle.wait_admitted()
    assert handle.cached_tokens == len("a shared system prompt; question ")


def script_drafter(correct: int, wrong: int = 0):
    """Proposes the next ``correct`` scripted tokens, then ``wrong`` tokens that are not."""

    def draft(seq: Sequence) -> list[int]:
        out, token = [], seq.tokens[-1]
        for _ in range(correct):
            token = next_token(token)
            out.append(token)
        return out + [ord("#")] * wrong

    return draft


@pytest.mark.parametrize(("correct", "wrong"), [(3, 0), (2, 2), (0, 3), (8, 1)])
async def test_drafts_are_verified_and_rejected_cells_rolled_back(correct, wrong):
    plain, _ = make_engine()
    (expected,) = await run(plain, request("say: c", max_tokens=30))

    engine, context = make_engine(drafter=script_drafter(correct, wrong))
    (deltas,) = await run(engine, request("say: c", max_tokens=30))
    assert text_of(deltas) == text_of(expected) == "defghijklmnopqrstuvwxyz"
    assert deltas[-1].completion_tokens == expected[-1].completion_tokens
    # Accepted drafts mean fewer decodes; the fake context failed the run had a rejected
    # cell been left in the KV cache.
    if correct:
        assert context.decodes < len("defghijklmnopqrstuvwxyz")


async def test_drafts_give_the_same_seeded_sample_as_one_token_per_step():
    params = SamplingParams(temperature=1.0, seed=7, presence_penalty=0.5)
    outputs = []
    for drafter in (None, script_drafter(4, 1)):
        engine, context = make_engine(drafter=drafter)
        context.peak = 2.0  # flat enough that the seed matters
        (deltas,) = await run(engine, request("say: a", params=params, max_tokens=25))
        outputs.append(text_of(deltas))
    assert outputs[0] == outputs[1]


async def test_a_stop_sequence_inside_accepted_drafts_ends_there_and_drops_the_rest():
    engine, _ = make_engine(drafter=script_drafter(6))
    (deltas,) = await run(engine, request("say: a", stop=("ef",)))
    assert text_of(deltas) == "bcd"
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].completion_tokens == len("bcdef")  # the tokens up to the stop, none of the draft after it


async def test_a_media_chunk_is_decoded_between_token_steps_and_keeps_positions():
    image = MediaChunk("image", "sha-1", n_cells=6, n_pos=2)
    prompt = Prompt([tokens("look: "), image, tokens(" then: s")])
    engine, context = make_engine()
    running = engine.submit(request("say: a"))
    with_image = engine.submit(GenerationRequest(prompt=prompt, params=GREEDY))
    while engine.tick():
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [d.text async for step in with_image for d in step] == [*list("tuvwxyz"), ""]
    assert [(start, chunk) for _, start, chunk in context.media] == [(len("look: "), image)]
    assert len([d async for step in running for d in step]) == len("bcdefghijklmnopqrstuvwxyz") + 1
    # The text after the image starts at its position count, not its cell count.
    assert with_image.prompt_tokens == len(prompt)


async def test_a_running_stream_gets_a_token_in_every_step_while_images_are_decoded():
    engine, context = make_engine(n_seqs=4)
    running = engine.submit(request("say: a", max_tokens=20))
    engine.tick()  # its prompt, in slot 0
    for i in range(3):
        two_images = [MediaChunk("image", f"sha-{i}-{k}", n_cells=8, n_pos=8) for k in range(2)]
        prompt = Prompt([tokens("look: "), *two_images, tokens(" y")])
        engine.submit(GenerationRequest(prompt=prompt, params=GREEDY, max_tokens=2))
    decoded, grown = [], []
    for _ in range(7):  # the text before the images, then six images
        media, cells = len(context.media), len(context.kv[0])
        engine.tick()
        decoded.append(len(context.media) - media)
        grown.append(len(context.kv[0]) - cells)
    assert decoded == [0] + [1] * 6  # one image per step...
    assert grown == [1] * 7  # ...and the running stream took its token in each of those steps
    while engine.tick():
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert text_of([d async for step in running for d in step]) == "bcdefghijklmnopqrstu"


async def test_the_same_image_in_a_repeated_prompt_is_a_prefix_cache_hit_and_another_is_not():
    def prompt(digest: str, question: str) -> Prompt:
        return Prompt([tokens("look: "), MediaChunk("image", digest, n_cells=4, n_pos=4), tokens(question)])

    engine, context = make_engine(n_seqs=1)
    await run(engine, GenerationRequest(prompt=prompt("sha-1", " one: y"), params=GREEDY))
    same = engine.submit(GenerationRequest(prompt=prompt("sha-1", " two: y"), params=GREEDY))
    while engine.tick():
        await asyncio.sleep(0)
    other = engine.submit(GenerationRequest(prompt=prompt("sha-2", " one: y"), params=GREEDY))
    while engine.tick():
        await asyncio.sleep(0)
    await same.wait_admitted()
    await other.wait_admitted()
    assert same.cached_tokens == len("look: ") + 4 + len(" ")
    assert other.cached_tokens == len("look: ")
    assert len(context.media) == 2  # the repeat did not decode its image again


async def test_cancelling_frees_the_slot_and_stops_the_stream():
    engine, _ = make_engine(n_seqs=1)
    handle = engine.submit(request("x" * 10, max_tokens=400))
    engine.tick()
    engine.tick()
    handle.cancel()
    engine.tick()
    assert engine.scheduler.running == [] and not engine.scheduler.slots[0].busy


async def test_a_failing_step_fails_the_live_requests_only():
    engine, context = make_engine()
    handle = engine.submit(request("say: a"))

    def broken() -> None:
        raise RuntimeError("decode exploded")

    context.decode = broken  # type: ignore[method-assign]
    engine.tick()
    await asyncio.sleep(0)
    with pytest.raises(Exception, match="decode exploded"):
        async for _ in handle:
            pass
    assert engine.scheduler.running == []


def test_handles_of_one_step_are_delivered_with_one_wake_up_per_loop():
    loop = asyncio.new_event_loop()
    try:
        calls = []
        original = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *a: calls.append(a) or original(*a)  # type: ignore[method-assign]
        handles = [RequestHandle(request(), loop, on_cancel=lambda: None) for _ in range(5)]
        from chatport.engine.handle import deliver_step

        deliver_step({h: [ChoiceDelta(0, "x")] for h in handles})
        assert len(calls) == 1
    finally:
        loop.close()


async def test_abort_all_fails_running_and_waiting_requests_and_frees_their_slots():
    from chatport.protocol.backend import ShuttingDown

    engine, _ = make_engine(n_seqs=1)
    running = engine.submit(request("say: a", max_tokens=50))
    waiting = engine.submit(request("say: b", max_tokens=50))
    engine.tick()
    await asyncio.sleep(0)
    await running.wait_admitted()
    engine.abort_all(ShuttingDown("shutting down"))
    engine.tick()
    await asyncio.sleep(0)
    with pytest.raises(ShuttingDown):
        await waiting.wait_admitted()  # it never got a slot
    for handle in (running, waiting):
        with pytest.raises(ShuttingDown):
            async for _ in handle:
                pass
    assert engine.scheduler.running == [] and engine.scheduler.n_waiting == 0
    assert not any(s.busy for s in engine.scheduler.slots)
    (after,) = await run(engine, request("say: x"))  # and it serves on
    assert text_of(after) == "yz"


# --- think blocks -------------------------------------------------------------------------


def thinking(budget: int | None, *, opened: bool = False) -> Thinking:
    return Thinking(
        end="</think>",
        close_tokens=tuple(tokens("\n</think>")),
        open_tokens=() if opened else tuple(tokens("<think>\n")),
        budget=budget,
    )


async def test_a_think_block_is_opened_then_closed_when_its_budget_is_spent():
    engine, _ = make_engine()
    (deltas,) = await run(engine, request("say: x", thinking=thinking(10)))
    # Forced "<think>\n" (8 tokens), two of the model's own ("ab": the fake logits count up
    # from "\n" -> "a"), then the forced end; the answer follows the model's logits again.
    assert text_of(deltas) == "<think>\nab\n</think>abcdefghijklmnopqrstuvwxyz"
    end = deltas[-1]
    assert end.finish_reason == "stop"
    assert end.reasoning_tokens == len("<think>\nab\n</think>")
    assert end.completion_tokens == len("<think>\nab\n</think>abcdefghijklmnopqrstuvwxyz") + 1  # and the end token


async def test_a_block_the_prompt_opened_is_not_opened_again():
    engine, _ = make_engine()
    # No budget: the fake model writes "xyz" and ends inside the block.
    (deltas,) = await run(engine, request("say: w", thinking=thinking(None, opened=True)))
    assert text_of(deltas) == "xyz"
    assert deltas[-1].reasoning_tokens == 3  # the block never closed: every token but the end was reasoning


async def test_a_grammar_shapes_only_the_answer_after_the_block():
    engine, _ = make_engine()
    grammar = Constraint(lltokenizer(), llg.LLMatcher.grammar_from_regex("[0-9]{3}"))
    (deltas,) = await run(engine, request("say: x", grammar=grammar, thinking=thinking(9)))
    text = text_of(deltas)
    reasoning, answer = text.split("</think>")
    assert reasoning == "<think>\na\n"  # free (a letter no grammar of digits allows), then closed
    assert len(answer) == 3 and answer.isdigit()
    assert deltas[-1].reasoning_tokens == len("<think>\na\n</think>")


async def test_no_drafts_are_verified_inside_the_block():
    def drafter(seq: Sequence) -> list[int]:
        return tokens("bcd")  # right after "a", and past the budget: never to be verified there

    engine, _ = make_engine(drafter=drafter)
    (deltas,) = await run(engine, request("say: x", thinking=thinking(10)))
    assert text_of(deltas) == "<think>\nab\n</think>abcdefghijklmnopqrstuvwxyz"


def test_repacking_is_refused_on_cpus_with_amx(tmp_path):
    from chatport.engine.llama import repack_is_safe

    amd = tmp_path / "amd"
    amd.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    intel = tmp_path / "spr"
    intel.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    assert repack_is_safe(str(amd)) is True
    assert repack_is_safe(str(intel)) is False
    assert repack_is_safe(str(tmp_path / "missing")) is False


async def test_each_request_counts_one_first_token_and_its_wait():
    engine, _ = make_engine()
    before = engine.stats()
    assert (before.first_tokens, before.first_token_seconds) == (0, 0.0)
    # n=2 is one request: its first output is counted once, however many choices it has.
    await run(engine, request("say: a", max_tokens=3), request("say: w", n=2))
    after = engine.stats()
    assert after.first_tokens == 2
    assert after.first_token_seconds > 0.0
    assert after.tokens == 3 + 2 * 4  # "bcd", and "xyz" and the end-of-generation token twice


def test_where_a_grammar_may_end_every_end_token_of_the_model_is_allowed():
    # llguidance knows one end token (256 here); take 257 for a second one, as Qwen's
    # <|endoftext|> is beside <|im_end|>.
    ends = np.zeros(N_VOCAB, dtype=bool)
    ends[[EOG, CONTROL]] = True
    may_end = Constraint(lltokenizer(), llg.LLMatcher.grammar_from_regex("ab?"))
    may_end.advance(ord("a"))
    must_go_on = Constraint(lltokenizer(), llg.LLMatcher.grammar_from_regex("ab"))
    must_go_on.advance(ord("a"))
    masks = step_masks([may_end, must_go_on], ends)
    assert masks[0, EOG] and masks[0, CONTROL] and masks[0, ord("b")]
    assert not masks[1, EOG] and not masks[1, CONTROL] and masks[1, ord("b")]
