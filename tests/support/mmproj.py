"""A tiny random-weight vision projector for SmolLM2-135M, written with the ``gguf`` writer.

No vision GGUF ships in any package the tests can install, so this builds one that
libmtmd loads like a real Gemma 3 projector: a two-layer SigLIP-style ViT (8x8 patches of
a 64x64 image, width 32) whose 64 patch features are average-pooled 2x2 into 16 image
tokens, RMS-normed and projected to SmolLM2's 576-wide embeddings. The weights are random
(seeded), so the model sees noise, but every step of the plumbing is the real one:
preprocessing, the encoder graph, embedding batches, non-causal decoding.
"""

from __future__ import annotations

import os

import gguf
import numpy as np

TEXT_WIDTH = 576  # SmolLM2-135M's n_embd: libmtmd refuses a projector of another width
IMAGE_SIZE = 64
PATCH_SIZE = 8
WIDTH = 32
FFN = 64
LAYERS = 2
MERGE = 2  # 2x2 average pooling
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE // MERGE) ** 2  # 16 KV cells per image


def tiny_mmproj(path: str, *, seed: int = 0, text_width: int = TEXT_WIDTH) -> str:
    """``text_width``: the text model's width the projector writes (another one is refused)."""
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed)

    def weight(*shape: int, scale: float = 0.05) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    partial = path + ".partial"
    writer = gguf.GGUFWriter(partial, "clip")
    writer.add_string("clip.projector_type", "gemma3")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.embedding_length", WIDTH)
    writer.add_uint32("clip.vision.feed_forward_length", FFN)
    writer.add_uint32("clip.vision.block_count", LAYERS)
    writer.add_uint32("clip.vision.projection_dim", text_width)
    writer.add_uint32("clip.vision.attention.head_count", 2)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    writer.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    writer.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    writer.add_uint32("clip.vision.projector.scale_factor", MERGE)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    n_patches = (IMAGE_SIZE // PATCH_SIZE) ** 2
    # numpy shapes are ggml's dimensions reversed
    tensors = {
        "v.patch_embd.weight": weight(WIDTH, 3, PATCH_SIZE, PATCH_SIZE),
        "v.patch_embd.bias": zeros(WIDTH),
        "v.position_embd.weight": weight(n_patches, WIDTH),
        "v.post_ln.weight": ones(WIDTH),
        "v.post_ln.bias": zeros(WIDTH),
        "mm.soft_emb_norm.weight": ones(WIDTH),
        "mm.input_projection.weight": weight(WIDTH, text_width),
    }
    for i in range(LAYERS):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors[f"v.blk.{i}.{name}.weight"] = weight(WIDTH, WIDTH)
            tensors[f"v.blk.{i}.{name}.bias"] = zeros(WIDTH)
        tensors[f"v.blk.{i}.ln1.weight"] = ones(WIDTH)
        tensors[f"v.blk.{i}.ln1.bias"] = zeros(WIDTH)
        tensors[f"v.blk.{i}.ln2.weight"] = ones(WIDTH)
        tensors[f"v.blk.{i}.ln2.bias"] = zeros(WIDTH)
        tensors[f"v.blk.{i}.ffn_up.weight"] = weight(FFN, WIDTH)
        tensors[f"v.blk.{i}.ffn_up.bias"] = zeros(FFN)
        tensors[f"v.blk.{i}.ffn_down.weight"] = weight(WIDTH, FFN)
        tensors[f"v.blk.{i}.ffn_down.bias"] = zeros(WIDTH)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, path)
    return path
