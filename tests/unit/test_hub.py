"""Naming Hub models and picking their files, without a Hub."""

from __future__ import annotations

import pytest

from chatport.hub import HubError, HubRef, _choose, _projector, _quant_of, parse

FILES = [
    "README.md",
    "qwen2.5-0.5b-instruct-q4_k_m.gguf",
    "qwen2.5-0.5b-instruct-q8_0.gguf",
    "qwen2.5-0.5b-instruct-fp16-00001-of-00002.gguf",
    "qwen2.5-0.5b-instruct-fp16-00002-of-00002.gguf",
    "mmproj-model-f32.gguf",
    "mmproj-model-f16.gguf",
]


def test_names_parse():
    assert parse("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M") == HubRef("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "Q4_K_M")
    assert parse("hf:o/r/sub/dir/m.gguf") == HubRef("o/r", None, "sub/dir/m.gguf")
    assert parse("hf:o/r@v1.0:Q8_0") == HubRef("o/r", "Q8_0", None, "v1.0")
    assert str(parse("hf:o/r:Q8_0")) == "hf:o/r:Q8_0"
    for bad in ("hf:o", "hf:/r", "hf:o/r/m.bin", "hf:o/r/m.gguf:Q4_0"):
        with pytest.raises(HubError):
            parse(bad)


def test_a_quant_picks_its_file_whatever_the_case():
    assert _choose(HubRef("o/r", "Q8_0"), FILES) == ["qwen2.5-0.5b-instruct-q8_0.gguf"]
    assert _choose(HubRef("o/r"), FILES) == ["qwen2.5-0.5b-instruct-q4_k_m.gguf"]  # several: Q4_K_M, as llama-server
    assert _choose(HubRef("o/r"), ["only-Q5_K_S.gguf"]) == ["only-Q5_K_S.gguf"]


def test_a_split_model_is_every_part():
    assert _choose(HubRef("o/r", "fp16"), FILES) == FILES[3:5]
    with pytest.raises(HubError, match="2-part model, but 1 parts"):
        _choose(HubRef("o/r", "fp16"), FILES[:4])


def test_a_missing_quant_lists_the_ones_there_are():
    with pytest.raises(HubError, match="has no GGUF for Q2_K; it has: FP16, Q4_K_M, Q8_0"):
        _choose(HubRef("o/r", "Q2_K"), FILES)
    with pytest.raises(HubError, match="holds no GGUF"):
        _choose(HubRef("o/r", "Q2_K"), ["README.md"])


def test_the_projector_is_never_the_model_and_prefers_f16():
    assert _projector(FILES) == "mmproj-model-f16.gguf"
    assert "mmproj" not in " ".join(_choose(HubRef("o/r", "F16"), [*FILES, "m-F16.gguf"]))
    assert _quant_of("Qwen2.5-0.5B-Instruct-Q4_K_M-00001-of-00002.gguf") == "Q4_K_M"
