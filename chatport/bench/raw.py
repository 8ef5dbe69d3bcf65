"""The baseline: a bare greedy llama_decode loop, no server, no sampling parameters.

chatport's engine is measured against this to show what its scheduling, sampling and
HTTP layers cost on top of llama.cpp itself.
"""

from __future__ import annotations

import time

import numpy as np

from chatport.engine.llama import LlamaModel


def raw_decode(model_path: str, batch: int, tokens: int, *, threads: int = 0, ctx: int = 2048) -> float:
    """Aggregate generated tokens per second of ``batch`` greedy sequences."""
    import os

    model = LlamaModel(model_path)
    context = model.new_context(context_length=ctx, n_seq_max=batch, n_batch=512, n_threads=threads or os.cpu_count() or 1)
    prompt = model.tokenize(
        "<|im_start|>user\nWrite a story about a lighthouse.<|im_end|>\n<|im_start|>assistant\n", special=True
    )
    b = context.batch
    b.clear()
    for seq in range(batch):
        b.add(prompt, 0, seq, n_logits=1)
    logits = context.decode()
    nxt = logits.argmax(axis=1)
    pos = len(prompt)
    started = time.perf_counter()
    for _ in range(tokens):
        b.clear()
        for seq in range(batch):
            b.add([int(nxt[seq])], pos, seq, n_logits=1)
        logits = context.decode()
        nxt = np.asarray(logits).argmax(axis=1)
        pos += 1
    elapsed = time.perf_counter() - started
    context.close()
    model.close()
    return batch * tokens / elapsed
