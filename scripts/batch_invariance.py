"""Is llama.cpp batch-invariant here? Row 0's logits decoded alone vs as the first of k rows.

    python scripts/batch_invariance.py MODEL.gguf

A 300-token prompt is decoded, then k rows of the same sequence after it (the shape of a
verified draft), for several k; row 0's logits are compared with the one-row decode's
(max abs difference, 0 when invariant). Also prints the time of 1, 9 and 17 rows and of a
512-token prefill. Run it under another llama-cpp-python build (PYTHONPATH=...) to compare
builds; docs/benchmarks.md, "Predicted outputs", records what it gave.
"""

from __future__ import annotations

import statistics
import sys
import time

import llama_cpp
import numpy as np

ROWS = (1, 2, 3, 4, 6, 7, 8, 9, 12, 17, 1)  # 1 again last: the same shape must repeat exactly


def main(path: str) -> None:
    text = "def total_value(item, amount):\n    value = item.price * amount\n    return round(value, 2)\n\n" * 40
    llm = llama_cpp.Llama(path, n_ctx=2048, n_batch=512, n_ubatch=512, n_threads=2, logits_all=True, verbose=False)
    tokens = llm.tokenize(text.encode(), add_bos=False)
    prompt, draft = tokens[:300], tokens[300:320]
    llm.eval(prompt)
    start = llm.n_tokens

    def rows(k: int) -> float:
        llm.n_tokens = start  # eval() drops the cells from here on before decoding
        began = time.perf_counter()
        llm.eval(draft[:k])
        return time.perf_counter() - began

    rows(1)
    alone = np.array(llm.scores[start], copy=True)
    diffs = []
    for k in ROWS:
        rows(k)
        diffs.append(f"{k}: {float(np.max(np.abs(llm.scores[start] - alone))):.3g}")
    print("row 0 max |diff| by rows in the step:", ", ".join(diffs))
    for k in (1, 9, 17):
        print(f"{k} rows: {1000 * statistics.median(rows(k) for _ in range(5)):.1f} ms")

    del llm  # prefill as a server runs it: only the last row's logits
    llm = llama_cpp.Llama(path, n_ctx=2048, n_batch=512, n_ubatch=512, n_threads=2, verbose=False)
    times = []
    for _ in range(3):
        llm.reset()
        began = time.perf_counter()
        llm.eval(tokens[:512])
        times.append(time.perf_counter() - began)
    print(f"prefill of 512 tokens: {512 / statistics.median(times):.0f} tok/s")


if __name__ == "__main__":
    main(sys.argv[1])
