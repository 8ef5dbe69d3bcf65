"""``chatport bench prompt-cache``: a 1,000-token system prompt whose slot was since
reused by 64 other prompts, asked again: time to first token cold, from the host-memory
cache, and (asked with ``prompt_cache_retention: "24h"``) from disk after a restart."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass

import httpx

from chatport.bench.servers import start_chatport

ROUNDS = 3
OTHERS = 64


@dataclass
class PromptCacheResult:
    cold: float
    from_memory: float
    from_disk: float
    cached_memory: int
    cached_disk: int
    prompt_tokens: int


def _system(round_no: int) -> str:
    return f"Round {round_no}. " + " ".join(f"Rule {i}: greet guest number {i * 7} politely by name." for i in range(90))


def _ttft(http: httpx.Client, model: str, system: str, question: str, **extra: object) -> tuple[float, int, int]:
    body = {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        "max_tokens": 1,
        "temperature": 0,
        **extra,
    }
    began = time.perf_counter()
    r = http.post("/chat/completions", json=body)
    r.raise_for_status()
    usage = r.json()["usage"]
    return time.perf_counter() - began, usage["prompt_tokens_details"]["cached_tokens"], usage["prompt_tokens"]


def _others(http: httpx.Client, model: str, round_no: int) -> None:
    for i in range(OTHERS):
        system = f"Other {round_no}-{i}: " + "lorem ipsum dolor sit amet " * 20
        _ttft(http, model, system, "Hi")


def run_prompt_cache(model: str, model_path: str) -> PromptCacheResult:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        args = ("--model", model_path, "--model-id", model, "--store", f"sqlite:///{tmp}/c.db", "--cache-dir", f"{tmp}/kv")
        server = start_chatport(*args, log_path=f"{tmp}/log1")
        try:
            with httpx.Client(base_url=server.api, timeout=600) as http:
                for n in range(ROUNDS):
                    cold, _, tokens = _ttft(http, model, _system(n), "Who comes first?", prompt_cache_retention="24h")
                    _others(http, model, n)
                    memory, cached_memory, _ = _ttft(http, model, _system(n), "Who comes last?")
                    rows.append([cold, memory, cached_memory, tokens])
        finally:
            server.stop()
        server = start_chatport(*args, log_path=f"{tmp}/log2")
        try:
            with httpx.Client(base_url=server.api, timeout=600) as http:
                for n in range(ROUNDS):
                    disk, cached_disk, _ = _ttft(http, model, _system(n), "Who is in the middle?")
                    rows[n] += [disk, cached_disk]
        finally:
            server.stop()
    return PromptCacheResult(
        cold=statistics.median(r[0] for r in rows),
        from_memory=statistics.median(r[1] for r in rows),
        from_disk=statistics.median(r[4] for r in rows),
        cached_memory=int(statistics.median(r[2] for r in rows)),
        cached_disk=int(statistics.median(r[5] for r in rows)),
        prompt_tokens=int(rows[0][3]),
    )


def markdown(command: str, r: PromptCacheResult) -> str:
    return "\n".join(
        [
            f"Prompt cache: `{command}` ({r.prompt_tokens}-token prompt, its slot reused by {OTHERS} others; "
            f"medians of {ROUNDS} rounds)",
            "",
            "| time to first token | seconds | cached_tokens | vs cold |",
            "| --- | ---: | ---: | ---: |",
            f"| cold | {r.cold:.3f} | 0 | 1.0x |",
            f"| from host memory | {r.from_memory:.3f} | {r.cached_memory} | {r.cold / r.from_memory:.1f}x |",
            f"| from disk, after a restart | {r.from_disk:.3f} | {r.cached_disk} | {r.cold / r.from_disk:.1f}x |",
            "",
        ]
    )
