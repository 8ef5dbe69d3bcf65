"""``chatport bench prediction``: predicted outputs on code-edit tasks. A source file of
368 tokens is sent with a change to make; the prediction is the original file.
Two tasks: one small change in one place (a docstring added), and a rename that touches
every few lines (the answer leaves the prediction at each use). Greedy answers with and
without the prediction are timed in alternating rounds, at 1 stream and at 16, and are
compared byte for byte."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import time
from dataclasses import dataclass

import httpx

from chatport.bench.servers import start_chatport

ROUNDS = 3
TASKS = {
    "one change": "Add a docstring to the class Item saying 'A stock item.' Change nothing else in this file:",
    "rename": "Rename the class Item to Product everywhere in this file:",
}


def source_file() -> str:
    """A plain Python module of 368 tokens (Qwen2.5's tokenizer) that names Item 8 times."""
    parts = ['"""Inventory helpers."""\n\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass Item:\n']
    parts.append("    name: str\n    price: float\n    quantity: int\n\n")
    for verb, op in (("total", "*"), ("restock", "+"), ("discount", "-"), ("split", "/")):
        parts.append(
            f"\ndef {verb}_value(item: Item, amount: float) -> float:\n"
            f'    """Return the {verb} of an item\'s value by amount."""\n'
            f"    value = item.price {op} amount\n"
            f"    if value < 0:\n        raise ValueError('negative {verb}')\n"
            f"    return round(value * item.quantity, 2)\n\n"
        )
    parts.append(
        "\ndef describe(item: Item) -> str:\n"
        '    """A one-line summary of an item for reports."""\n'
        '    return f"{item.name}: {item.quantity} at {item.price:.2f}"\n\n\n'
        "def most_valuable(items: list[Item]) -> Item:\n"
        '    """The item whose stock is worth the most."""\n'
        "    if not items:\n        raise ValueError('no items')\n"
        "    return max(items, key=lambda item: item.price * item.quantity)\n"
    )
    return "".join(parts)


@dataclass
class PredictionResult:
    task: str
    streams: int
    plain_seconds: float
    predicted_seconds: float
    identical: bool
    accepted: int
    rejected: int

    @property
    def speedup(self) -> float:
        return self.plain_seconds / self.predicted_seconds if self.predicted_seconds else 0.0


async def _one(
    http: httpx.AsyncClient, model: str, task: str, code: str, predict: bool, nonce: int
) -> tuple[str, dict[str, int]]:
    # The nonce gives every round its own prompts, prefilled once untimed: then the timed
    # runs with and without the prediction both start from the cached prompt. A prompt
    # prefilled cold and one reused from the cache are computed in different batch shapes,
    # which alone can flip a near-tie in a greedy answer.
    body = {
        "model": model,
        "temperature": 0,
        "max_tokens": 800,
        "messages": [
            {"role": "system", "content": f"Request {nonce}. You edit code. Reply with the whole edited file and nothing else."},
            {"role": "user", "content": f"{TASKS[task]}\n\n{code}"},
        ],
    }
    if predict:
        body["prediction"] = {"type": "content", "content": code}
    r = await http.post("/chat/completions", json=body)
    r.raise_for_status()
    data = r.json()
    return data["choices"][0]["message"]["content"], data["usage"]["completion_tokens_details"]


async def _round(
    api: str, model: str, task: str, streams: int, predict: bool, round_no: int
) -> tuple[float, list[str], dict[str, int]]:
    code = source_file()
    async with httpx.AsyncClient(base_url=api, timeout=600) as http:
        began = time.perf_counter()
        runs = (_one(http, model, task, code, predict, round_no * 100 + i) for i in range(streams))
        results = await asyncio.gather(*runs)
        elapsed = time.perf_counter() - began
    details = {"accepted": sum(d["accepted_prediction_tokens"] for _, d in results)}
    details["rejected"] = sum(d["rejected_prediction_tokens"] for _, d in results)
    return elapsed, [text for text, _ in results], details


def run_prediction(model: str, model_path: str, levels: list[int]) -> list[PredictionResult]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_chatport(
            "--model", model_path, "--model-id", model, "--store", f"sqlite:///{tmp}/p.db", log_path=f"{tmp}/log"
        )
        try:
            for task, streams in itertools.product(TASKS, levels):
                plain, predicted, identical, details = [], [], True, {"accepted": 0, "rejected": 0}
                for n in range(ROUNDS):  # alternating, so drift on a shared machine hits both alike
                    asyncio.run(_round(server.api, model, task, streams, False, n))  # caches this round's prompts
                    t0, texts0, _ = asyncio.run(_round(server.api, model, task, streams, False, n))
                    t1, texts1, details = asyncio.run(_round(server.api, model, task, streams, True, n))
                    plain.append(t0)
                    predicted.append(t1)
                    identical = identical and texts0 == texts1
                out.append(
                    PredictionResult(
                        task,
                        streams,
                        statistics.median(plain),
                        statistics.median(predicted),
                        identical,
                        details["accepted"],
                        details["rejected"],
                    )
                )
        finally:
            server.stop()
    return out


def markdown(command: str, results: list[PredictionResult]) -> str:
    lines = [
        f"Predicted outputs: `{command}` (code edit, greedy, median of {ROUNDS} alternating rounds)",
        "",
        "| task | streams | without (s) | with (s) | speedup | identical | accepted | rejected |",
        "| --- | ---: | ---: | ---: | ---: | :---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.task} | {r.streams} | {r.plain_seconds:.2f} | {r.predicted_seconds:.2f} | {r.speedup:.2f}x | "
            f"{'yes' if r.identical else 'NO'} | {r.accepted} | {r.rejected} |"
        )
    return "\n".join(lines) + "\n"
