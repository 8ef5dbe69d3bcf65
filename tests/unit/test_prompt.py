"""Prompts as token runs and media chunks: positions and prefix matching."""

from __future__ import annotations

import pytest

from chatport.protocol.prompt import MEDIA_CELL, MediaChunk, Prompt, common_prefix

IMAGE = MediaChunk("image", "sha-a", n_cells=4, n_pos=2)  # an M-RoPE projector: 4 cells, 2 positions
OTHER = MediaChunk("image", "sha-b", n_cells=4, n_pos=2)


def test_cells_hold_tokens_and_media_placeholders():
    prompt = Prompt([[1, 2], IMAGE, [3]])
    assert prompt.cells == [1, 2, MEDIA_CELL, MEDIA_CELL, MEDIA_CELL, MEDIA_CELL, 3]
    assert len(prompt) == 7 and dict(prompt.media) == {2: IMAGE}
    assert prompt.next_media(0) == 2 and prompt.next_media(3) is None


def test_positions_advance_by_a_chunks_position_count():
    prompt = Prompt([[1, 2], IMAGE, [3, 4]])
    assert [prompt.position(c) for c in (0, 1, 2, 6, 7)] == [0, 1, 2, 4, 5]
    assert prompt.position(10) == 8  # generated tokens continue after the prompt


def test_a_chunk_matches_only_whole_and_only_the_same_content():
    prompt = Prompt([[1, 2], IMAGE, [3, 4]])
    same = Prompt([[1, 2], IMAGE, [3, 9]])
    other = Prompt([[1, 2], OTHER, [3, 4]])
    assert prompt.common_prefix(same.cells, same.media) == 7
    assert prompt.common_prefix(other.cells, other.media) == 2
    assert prompt.common_prefix(same.cells[:4], same.media) == 2  # cut inside the chunk


def test_a_chunk_needs_sane_counts():
    with pytest.raises(ValueError):
        MediaChunk("audio", "x", n_cells=2, n_pos=3)


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 200, 1000])
def test_common_prefix_of_lists(n):
    a = list(range(1000))
    b = a[:n] + [-5] * 10
    assert common_prefix(a, b) == n
    assert common_prefix(a[:n], a) == n
