"""``chatport bench --soak MINUTES``: a server under a steady mixed load for a while, with
its errors, memory (RSS) and open files sampled over time, so that leaks and slow failures
show up as a trend rather than a single number.

The load cycles through what real clients do: answers stored and not, streams read to the
end, streams abandoned halfway (the client disconnects), and bad requests (400s).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field

import httpx

from chatport.bench.servers import RunningServer, start_chatport

SAMPLE_SECONDS = 10.0
WORKERS = 4


@dataclass
class Sample:
    seconds: float
    requests: int
    errors: int  # 5xx answers and failed connections
    rss_mb: float
    open_files: int


@dataclass
class SoakResult:
    command: str
    minutes: float
    samples: list[Sample] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    error_examples: list[str] = field(default_factory=list)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class _Load:
    def __init__(self, api: str, model: str, result: SoakResult) -> None:
        self.api = api
        self.model = model
        self.result = result
        self.requests = 0
        self.errors = 0

    def _body(self, **extra: object) -> dict[str, object]:
        return {"model": self.model, "messages": [{"role": "user", "content": "Say something."}], "max_tokens": 32, **extra}

    async def one(self, http: httpx.AsyncClient, kind: str) -> None:
        try:
            if kind == "stream-abandoned":
                async with http.stream("POST", "/chat/completions", json=self._body(stream=True)) as r:
                    async for _ in r.aiter_lines():
                        break  # leave after the first event
                status = r.status_code
            elif kind == "stream":
                async with http.stream("POST", "/chat/completions", json=self._body(stream=True)) as r:
                    async for _ in r.aiter_lines():
                        pass
                status = r.status_code
            elif kind == "bad":
                status = (await http.post("/chat/completions", json=self._body(temperature=9))).status_code
            else:
                status = (await http.post("/chat/completions", json=self._body(store=kind == "stored"))).status_code
            failed = status >= 500
            detail = f"{kind}: HTTP {status}"
        except httpx.HTTPError as exc:
            failed, detail = True, f"{kind}: {type(exc).__name__}: {exc}"
        self.requests += 1
        self.result.by_kind[kind] = self.result.by_kind.get(kind, 0) + 1
        if failed:
            self.errors += 1
            if len(self.result.error_examples) < 20:
                self.result.error_examples.append(detail)

    async def worker(self, deadline: float, seed: int) -> None:
        rng = random.Random(seed)
        kinds = ["plain", "stored", "stream", "stream-abandoned", "bad"]
        async with httpx.AsyncClient(base_url=self.api, timeout=120) as http:
            while time.monotonic() < deadline:
                await self.one(http, rng.choice(kinds))


async def _soak(server: RunningServer, model: str, minutes: float, result: SoakResult) -> None:
    load = _Load(server.api, model, result)
    began = time.monotonic()
    deadline = began + minutes * 60
    workers = [asyncio.ensure_future(load.worker(deadline, seed)) for seed in range(WORKERS)]
    pid = server.process.pid

    def sample() -> Sample:
        return Sample(round(time.monotonic() - began, 1), load.requests, load.errors, round(_rss_mb(pid), 1), _open_files(pid))

    while time.monotonic() < deadline:
        result.samples.append(sample())
        await asyncio.sleep(min(SAMPLE_SECONDS, max(deadline - time.monotonic(), 0.1)))
    await asyncio.gather(*workers)
    result.samples.append(sample())


def run_soak(command: str, model: str, model_path: str, minutes: float, out: str) -> SoakResult:
    result = SoakResult(command, minutes)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_chatport(
            "--model", model_path, "--model-id", model, "--store", f"sqlite:///{tmp}/soak.db", log_path=f"{tmp}/server.log"
        )
        try:
            asyncio.run(_soak(server, model, minutes, result))
        finally:
            server.stop()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "soak.json"), "w") as f:
        json.dump(asdict(result), f, indent=2)
    with open(os.path.join(out, "soak.md"), "w") as f:
        f.write(markdown(result))
    _plot(result, os.path.join(out, "soak.png"))
    return result


def markdown(result: SoakResult) -> str:
    first, last = result.samples[0], result.samples[-1]
    lines = [
        f"Soak: `{result.command}`",
        "",
        f"{last.requests} requests in {result.minutes:g} min ({', '.join(f'{k} {v}' for k, v in sorted(result.by_kind.items()))}); "
        f"{last.errors} errors; RSS {first.rss_mb:.0f} -> {last.rss_mb:.0f} MB; open files {first.open_files} -> {last.open_files}.",
        "",
        "| s | requests | errors | RSS MB | open files |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(f"| {s.seconds:g} | {s.requests} | {s.errors} | {s.rss_mb:.1f} | {s.open_files} |" for s in result.samples),
    ]
    if result.error_examples:
        lines += ["", "Errors:", *(f"- {e}" for e in result.error_examples)]
    return "\n".join(lines) + "\n"


def _plot(result: SoakResult, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the bench extra brings matplotlib; the tables do not need it
        return
    seconds = [s.seconds for s in result.samples]
    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    axes[0].plot(seconds, [s.rss_mb for s in result.samples])
    axes[0].set_ylabel("RSS MB")
    axes[1].plot(seconds, [s.open_files for s in result.samples])
    axes[1].set_ylabel("open files")
    axes[2].plot(seconds, [s.errors for s in result.samples])
    axes[2].set_ylabel("errors (total)")
    axes[2].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
