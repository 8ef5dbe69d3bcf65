"""The prompt cache beyond the slots, without a model: prefixes saved when their slot is
taken and written back when a prompt wants them (cached_tokens says so), the memory cap,
and the 24-hour disk tier: restored after a restart, expired, capped, and a clean miss on a
corrupt file or another model's."""

from __future__ import annotations

import asyncio
import os

from chatport.engine.prompt_cache import DISK_SECONDS, PromptCache
from chatport.protocol.backend import GenerationRequest
from chatport.protocol.prompt import Prompt
from tests.support.bytes_vocab import tokens
from tests.unit.test_engine_step import GREEDY, make_engine, run

SYSTEM = "x" * 300  # a long shared prefix (300 byte tokens)


def ask(question: str, **kwargs) -> GenerationRequest:
    return GenerationRequest(prompt=Prompt.of_tokens(tokens(SYSTEM + question)), params=GREEDY, max_tokens=2, **kwargs)


def other(i: int) -> GenerationRequest:
    # Each starts with its own letter: no two share a prefix, so each takes the least recently used slot.
    return GenerationRequest(prompt=Prompt.of_tokens(tokens(chr(ord("a") + i) + "y" * 300)), params=GREEDY, max_tokens=2)


async def cached_tokens(engine, request: GenerationRequest) -> int:
    handle = engine.submit(request)
    while engine.tick():
        await asyncio.sleep(0)
    await handle.wait_admitted()
    [d async for step in handle for d in step]
    return handle.cached_tokens


def cache(tmp_path=None, clock=lambda: 1_000_000.0, **kwargs) -> PromptCache:
    disk = {"disk_dir": str(tmp_path), "disk_bytes": 10_000_000} if tmp_path is not None else {}
    return PromptCache(kwargs.pop("ram_bytes", 10_000_000), fingerprint="model-a", min_tokens=256, clock=clock, **disk, **kwargs)


async def test_a_prefix_pushed_out_of_its_slot_comes_back_from_memory():
    engine, context = make_engine(n_seqs=2, batch_capacity=512, prompt_cache=cache())
    assert await cached_tokens(engine, ask(" one: y")) == 0
    for i in range(3):  # two slots, three other long prompts: the system prompt's slot is taken
        await run(engine, other(i))
    assert context.saved >= 1
    again = await cached_tokens(engine, ask(" two: y"))
    assert again == len(tokens(SYSTEM + " "))  # the whole shared prefix, from the cache
    assert context.restored == 1


async def test_without_the_cache_the_same_prompt_is_computed_again():
    engine, _ = make_engine(n_seqs=2, batch_capacity=512)
    await cached_tokens(engine, ask(" one: y"))
    for i in range(3):
        await run(engine, other(i))
    assert await cached_tokens(engine, ask(" two: y")) == 0


async def test_a_state_the_context_refuses_is_a_clean_miss():
    prompt_cache = cache()
    engine, context = make_engine(n_seqs=2, batch_capacity=512, prompt_cache=prompt_cache)
    await cached_tokens(engine, ask(" one: y"))
    for i in range(3):
        await run(engine, other(i))
    for entry in list(prompt_cache._ram.values()):
        entry.state = b"not a state"
    # The prompt is computed from its first cell (the fake context checks every position).
    assert await cached_tokens(engine, ask(" two: y")) == 0
    assert context.restored == 0


def test_memory_is_capped_least_recently_used_first():
    prompt_cache = cache(ram_bytes=250)
    prompt_cache.keep(list(range(300)), b"a" * 100, "p")
    prompt_cache.keep(list(range(1000, 1300)), b"b" * 100, "p")
    assert prompt_cache.load(prompt_cache.best(list(range(300)), "p")[0]) == b"a" * 100  # a is now the most recent
    prompt_cache.keep(list(range(2000, 2300)), b"c" * 100, "p")
    assert prompt_cache.best(list(range(1000, 1300)), "p")[1] == 0  # b went
    assert prompt_cache.best(list(range(300)), "p")[1] == 300
    assert prompt_cache.ram_used == 200


def test_a_longer_prefix_replaces_its_own_prefixes():
    prompt_cache = cache()
    prompt_cache.keep(list(range(300)), b"s" * 10, "p")
    prompt_cache.keep(list(range(400)), b"l" * 20, "p")
    assert prompt_cache.ram_used == 20 and prompt_cache.holds(list(range(350)), "p")


def test_24h_prefixes_survive_a_restart(tmp_path):
    first = cache(tmp_path, ram_bytes=0)
    first.write(list(range(500)), b"state" * 100, "p")
    first.flush()
    reborn = cache(tmp_path)  # a new server: the index is read from the directory
    entry, shared = reborn.best([*range(400), -5], "p")
    assert shared == 400 and reborn.load(entry) == b"state" * 100


def test_disk_entries_expire_after_24_hours(tmp_path):
    now = [1_000_000.0]
    writer = cache(tmp_path, clock=lambda: now[0])
    writer.write(list(range(300)), b"s" * 50, "p")
    writer.flush()
    now[0] += DISK_SECONDS + 1
    later = cache(tmp_path, clock=lambda: now[0])
    assert later.best(list(range(300)), "p") == (None, 0)
    assert os.listdir(tmp_path) == []  # and the file is gone


def test_a_corrupt_or_foreign_file_is_a_clean_miss(tmp_path):
    writer = cache(tmp_path)
    writer.write(list(range(300)), b"s" * 500, "p")
    writer.flush()
    (path,) = [os.path.join(tmp_path, n) for n in os.listdir(tmp_path)]
    with open(path, "r+b") as f:  # one flipped byte in the state
        f.seek(-10, os.SEEK_END)
        f.write(b"X")
    reader = cache(tmp_path)
    entry, shared = reader.best(list(range(300)), "p")
    assert shared == 300 and reader.load(entry) is None
    assert reader.best(list(range(300)), "p") == (None, 0) and not os.path.exists(path)
    writer.write(list(range(300)), b"s" * 500, "p")
    writer.flush()
    assert PromptCache(1000, fingerprint="model-b", disk_dir=str(tmp_path), disk_bytes=10_000_000).best(
        list(range(300)), "p"
    ) == (
        None,
        0,
    )
    with open(os.path.join(tmp_path, "junk.kv"), "wb") as f:
        f.write(b"garbage")
    assert cache(tmp_path).best([1, 2, 3], "p") == (None, 0)  # unreadable files are dropped at start


def test_the_disk_is_capped_oldest_first(tmp_path):
    prompt_cache = PromptCache(0, fingerprint="m", disk_dir=str(tmp_path), disk_bytes=1_000, min_tokens=1)
    for i in range(4):
        prompt_cache.write([i] * 300, bytes([i]) * 400, "p")
        prompt_cache.flush()
        os.utime(prompt_cache._path([i] * 300, "p"), (i, i))  # oldest first
    assert len(os.listdir(tmp_path)) == 2
    assert [prompt_cache.best([i] * 300, "p")[1] for i in range(4)] == [0, 0, 300, 300]


async def test_a_24h_request_writes_its_prefix_to_disk(tmp_path):
    prompt_cache = cache(tmp_path)
    engine, _ = make_engine(n_seqs=2, batch_capacity=512, prompt_cache=prompt_cache)
    await run(engine, ask(" one: y", cache_retention="24h"))
    prompt_cache.flush()
    longer = GenerationRequest(
        prompt=Prompt.of_tokens(tokens(SYSTEM + " one: y")), params=GREEDY, max_tokens=4, cache_retention="24h"
    )
    await run(engine, longer)  # the same prompt, another (longer) answer: no second file
    prompt_cache.flush()
    assert len(os.listdir(tmp_path)) == 1
    fresh, context = make_engine(n_seqs=2, batch_capacity=512, prompt_cache=cache(tmp_path))
    assert await cached_tokens(fresh, ask(" two: y")) == len(tokens(SYSTEM + " "))
    assert context.restored == 1


def short(text: str) -> GenerationRequest:
    return GenerationRequest(prompt=Prompt.of_tokens(tokens(text)), params=GREEDY, max_tokens=2)


async def test_a_short_prompt_asked_again_after_others_comes_back_whole():
    # As llama-server's --cache-ram does: a chat prompt of a few dozen tokens, pushed out of
    # its slot by other prompts, is restored rather than computed again.
    prompt_cache = PromptCache(10_000_000, fingerprint="model-a")
    engine, context = make_engine(n_seqs=2, batch_capacity=512, prompt_cache=prompt_cache)
    story = "write a story about a lighthouse keeper, chapter 1."
    await cached_tokens(engine, short(story))
    for i in range(3):
        await run(engine, short(f"{chr(ord('a') + i)} another prompt of about forty cells ."))
    assert await cached_tokens(engine, short(story)) == len(story) - 1
    assert context.restored == 1


async def test_a_saved_prefix_wins_over_a_shorter_one_a_running_sequence_lends():
    prompt_cache = PromptCache(10_000_000, fingerprint="model-a")
    engine, context = make_engine(n_seqs=3, batch_capacity=512, prompt_cache=prompt_cache)
    base = "write a story about a lighthouse keeper, chapter 1"
    await cached_tokens(engine, short(base + "."))
    for i in range(4):
        await run(engine, short(f"{chr(ord('a') + i)} another prompt of about forty cells ."))
    # Chapter 2 starts first (its "...chapter " from the saved state) and would lend that
    # to chapter 1; the saved state of chapter 1 holds one cell more, which wins.
    two, one = engine.submit(short(base[:-1] + "2.")), engine.submit(short(base + "."))
    while engine.tick():
        await asyncio.sleep(0)
    for handle in (two, one):
        await handle.wait_admitted()
        [d async for step in handle for d in step]
    assert two.cached_tokens == len(base) - 1
    assert one.cached_tokens == len(base + ".") - 1
    assert context.restored == 2


async def test_free_slots_are_kept_while_idle_so_a_burst_copies_nothing_out():
    prompt_cache = PromptCache(10_000_000, fingerprint="model-a")
    engine, context = make_engine(n_seqs=2, batch_capacity=512, prompt_cache=prompt_cache)
    first, second = (short(f"{c} a prompt of about forty cells, kept while idle.") for c in "ab")
    await asyncio.gather(cached_tokens(engine, first), cached_tokens(engine, second))
    assert context.saved == 0
    # Idle: one slot copied out per call, least recently used first, each once.
    assert engine.keep_idle_slot() and engine.keep_idle_slot()
    assert not engine.keep_idle_slot() and context.saved == 2
    # A burst of two other prompts takes both slots without copying anything out first...
    burst = [short(f"{c} another prompt of about forty cells, a burst.") for c in "cd"]
    await asyncio.gather(*(cached_tokens(engine, r) for r in burst))
    assert context.saved == 2
    # ...and the prompts they pushed out come back whole.
    assert await cached_tokens(engine, first) == len(first.prompt) - 1
    assert context.restored == 1


async def test_idle_keeping_copies_nothing_the_cache_already_holds():
    prompt_cache = PromptCache(10_000_000, fingerprint="model-a")
    engine, context = make_engine(n_seqs=1, batch_capacity=512, prompt_cache=prompt_cache)
    request = short("a prompt of about forty cells, asked twice.")
    await cached_tokens(engine, request)
    assert engine.keep_idle_slot() and context.saved == 1
    await cached_tokens(engine, request)  # the same prompt and answer (greedy) again in its slot
    assert not engine.keep_idle_slot() and context.saved == 1


async def test_a_slot_too_large_to_copy_while_idle_waits_for_its_admission(monkeypatch):
    monkeypatch.setattr("chatport.engine.engine.IDLE_COPY_BYTES", 100)  # the fake's states are larger
    prompt_cache = PromptCache(10_000_000, fingerprint="model-a")
    engine, context = make_engine(n_seqs=1, batch_capacity=512, prompt_cache=prompt_cache)
    first = short("a prompt of about forty cells, copied when taken.")
    await cached_tokens(engine, first)
    assert engine.keep_idle_slot() and not engine.keep_idle_slot() and context.saved == 0
    await cached_tokens(engine, short("another prompt of about forty cells, taking it."))
    assert context.saved == 1  # copied out as its slot was taken
    assert await cached_tokens(engine, first) == len(first.prompt) - 1


# --- scopes: one project's prompts never serve another's ----------------------------------


def scoped(text: str, scope: str) -> GenerationRequest:
    return GenerationRequest(prompt=Prompt.of_tokens(tokens(text)), params=GREEDY, max_tokens=2, cache_scope=scope)


async def test_a_slot_holding_another_projects_prompt_gives_no_prefix():
    engine, _ = make_engine(n_seqs=2, batch_capacity=512)
    secret = "the PIN of project a is 4 7 1 9; never tell it."
    assert await cached_tokens(engine, scoped(secret, "a")) == 0
    assert await cached_tokens(engine, scoped(secret, "b")) == 0  # the same text, another project: computed
    assert await cached_tokens(engine, scoped(secret, "a")) == len(secret) - 1  # its own project: reused


async def test_a_running_sequence_lends_its_prefix_only_within_its_project():
    engine, _ = make_engine(n_seqs=2, batch_capacity=512)
    system = "a shared system prompt of about fifty cells, in flight: "
    first, second = engine.submit(scoped(system + "one", "a")), engine.submit(scoped(system + "two", "b"))
    while engine.tick():
        await asyncio.sleep(0)
    for handle in (first, second):
        await handle.wait_admitted()
        [d async for step in handle for d in step]
    assert second.cached_tokens == 0


async def test_the_memory_cache_restores_only_within_a_project():
    engine, context = make_engine(n_seqs=2, batch_capacity=512, prompt_cache=cache())
    await cached_tokens(engine, ask(" one: y", cache_scope="a"))
    for i in range(3):
        await run(engine, other(i))
    assert context.saved >= 1
    assert await cached_tokens(engine, ask(" two: y", cache_scope="b")) == 0
    assert context.restored == 0
    assert await cached_tokens(engine, ask(" two: y", cache_scope="a")) == len(tokens(SYSTEM + " "))


def test_saved_prefixes_are_found_only_in_their_scope(tmp_path):
    prompt_cache = cache(tmp_path)
    prompt_cache.keep(list(range(300)), b"m" * 10, "a")
    prompt_cache.write(list(range(1000, 1300)), b"d" * 10, "a")
    prompt_cache.flush()
    assert prompt_cache.best(list(range(300)), "b") == (None, 0)
    assert not prompt_cache.holds(list(range(300)), "b") and prompt_cache.holds(list(range(300)), "a")
    reborn = cache(tmp_path)  # after a restart, the files keep their scope
    assert reborn.best(list(range(1000, 1300)), "b") == (None, 0)
    assert reborn.best(list(range(1000, 1300)), "a")[1] == 300
    # The same prefix kept by two projects is two entries: neither replaces the other.
    prompt_cache.keep(list(range(300)), b"n" * 10, "b")
    assert prompt_cache.load(prompt_cache.best(list(range(300)), "a")[0]) == b"m" * 10


def test_a_file_with_any_odd_header_is_dropped_at_start(tmp_path):
    from chatport.engine.prompt_cache import MAGIC

    good = cache(tmp_path)
    good.write(list(range(300)), b"s" * 50, "p")
    good.flush()
    odd = [
        b"[" * 4000,  # nested too deep for the JSON parser
        b'{"fingerprint": "model-a", "scope": "p", "n_cells": 1e999, "state_bytes": 1, "state_sha256": "", "created": 1}',
        b'{"fingerprint": "model-a", "scope": "p", "n_cells": 3, "state_bytes": "many", "state_sha256": "", "created": 1}',
        b'{"fingerprint": "model-a", "scope": "p", "n_cells": -1, "state_bytes": 1, "state_sha256": "", "created": 1}',
        b'{"fingerprint": "model-a", "n_cells": 3, "state_bytes": 1, "state_sha256": "", "created": NaN}',
        b"[1, 2, 3]",
        b"\xff\xfe not text",
        b"5",
    ]
    for i, line in enumerate(odd):
        with open(os.path.join(tmp_path, f"odd{i}.kv"), "wb") as f:
            f.write(MAGIC + line + b"\n" + b"\0" * 12)
    reborn = cache(tmp_path)  # starts, keeping the good file and dropping the rest
    assert reborn.best(list(range(300)), "p")[1] == 300
    assert sorted(os.listdir(tmp_path)) == [n for n in os.listdir(tmp_path) if not n.startswith("odd")]
