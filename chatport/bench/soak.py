"""``chatport bench soak MINUTES``: a server under a steady mixed load for a while, with
its errors, memory (RSS) and open files sampled over time, so that leaks and slow failures
show up as a trend rather than a single number.

The load cycles through what real clients do: answers stored and not, streams read to the
end, streams abandoned halfway (the client disconnects), and bad requests (400s).

With ``--attacks`` the run is two halves: the load alone, then the same load with the
reliability probe's requests on top (``bench/attacks.py``: grammar and schema bombs, huge
tool lists and part floods, a PDF bomb, a Markdown bomb), sent by two more clients, each
one request every ATTACK_PAUSE seconds (after the last one's answer), and bodies trickled
a byte a second on 16 more connections. The latency of small requests is compared between
the halves: a well-bounded server keeps their p99 within twice the clean run's.
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

from chatport.bench import attacks
from chatport.bench.servers import RunningServer, start_chatport

SAMPLE_SECONDS = 10.0
WORKERS = 4
TRICKLERS = 16  # connections trickling a body at a time, in the attacked half
ATTACKERS = 2  # clients sending the probe's requests, in the attacked half
ATTACK_PAUSE = 0.5  # seconds each waits between them
KINDS = ["plain", "stored", "stream", "stream-abandoned", "bad"]


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
    # Seconds each small (plain) request took, in the clean half and under attack.
    latencies: dict[str, list[float]] = field(default_factory=dict)
    attacks: dict[str, dict[str, int]] = field(default_factory=dict)  # attack -> status -> count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


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
        self.phase = "clean"
        self.attacks = attacks.bodies(model)

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
            elif kind in self.attacks:
                path, body = self.attacks[kind]
                status = (await http.post(self.api.removesuffix("/v1") + path, json=body)).status_code
                counts = self.result.attacks.setdefault(kind, {})
                counts[str(status)] = counts.get(str(status), 0) + 1
            else:
                began = time.monotonic()
                status = (await http.post("/chat/completions", json=self._body(store=kind == "stored"))).status_code
                if kind == "plain" and status == 200:
                    self.result.latencies.setdefault(self.phase, []).append(time.monotonic() - began)
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
        async with httpx.AsyncClient(base_url=self.api, timeout=120) as http:
            while time.monotonic() < deadline:
                await self.one(http, rng.choice(KINDS))

    async def attacker(self, began: float, deadline: float, seed: int) -> None:
        """The probe's requests, from ``began`` until ``deadline``, a pause after each answer."""
        await asyncio.sleep(max(began - time.monotonic(), 0))
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=self.api, timeout=300) as http:
            while time.monotonic() < deadline:
                await self.one(http, rng.choice(sorted(self.attacks)))
                await asyncio.sleep(ATTACK_PAUSE)


async def _trickle(server: RunningServer, began: float, deadline: float, result: SoakResult) -> None:
    await asyncio.sleep(max(began - time.monotonic(), 0))
    while deadline - time.monotonic() >= 1:
        cut = await attacks.trickle("127.0.0.1", server.port, deadline - time.monotonic())
        counts = result.attacks.setdefault("trickled-body", {})
        outcome = "cut off by the server" if cut else "still trickling at the end"
        counts[outcome] = counts.get(outcome, 0) + 1


async def _soak(server: RunningServer, model: str, minutes: float, result: SoakResult, with_attacks: bool) -> None:
    load = _Load(server.api, model, result)
    began = time.monotonic()
    deadline = began + minutes * 60
    workers = [asyncio.ensure_future(load.worker(deadline, seed)) for seed in range(WORKERS)]
    half = began + minutes * 30
    if with_attacks:  # the second half is under attack
        workers += [asyncio.ensure_future(load.attacker(half, deadline, seed)) for seed in range(ATTACKERS)]
        workers += [asyncio.ensure_future(_trickle(server, half, deadline, result)) for _ in range(TRICKLERS)]
    pid = server.process.pid

    def sample() -> Sample:
        return Sample(round(time.monotonic() - began, 1), load.requests, load.errors, round(_rss_mb(pid), 1), _open_files(pid))

    while time.monotonic() < deadline:
        result.samples.append(sample())
        now = time.monotonic()
        if with_attacks and now >= half:
            load.phase = "attacked"
        wake = min(now + SAMPLE_SECONDS, deadline, half if with_attacks and now < half else deadline)
        await asyncio.sleep(max(wake - now, 0.05))
    await asyncio.gather(*workers)
    result.samples.append(sample())


def run_soak(
    command: str, model: str, model_path: str, minutes: float, out: str, with_attacks: bool = False, threads: int = 0
) -> SoakResult:
    result = SoakResult(command, minutes)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_chatport(
            *("--model", model_path, "--model-id", model, "--store", f"sqlite:///{tmp}/soak.db", "--threads", str(threads)),
            log_path=f"{tmp}/server.log",
        )
        try:
            asyncio.run(_soak(server, model, minutes, result, with_attacks))
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
    if result.latencies:
        lines += [
            "",
            "Small requests (max_tokens 32, not streamed), seconds:",
            "",
            "| half | requests | p50 | p99 |",
            "| --- | ---: | ---: | ---: |",
        ]
        for phase, values in result.latencies.items():
            lines.append(f"| {phase} | {len(values)} | {percentile(values, 0.5):.3f} | {percentile(values, 0.99):.3f} |")
        if {"clean", "attacked"} <= set(result.latencies):
            ratio = percentile(result.latencies["attacked"], 0.99) / percentile(result.latencies["clean"], 0.99)
            lines += ["", f"p99 under attack / clean: {ratio:.2f} (target: at most 2)"]
    if result.attacks:
        lines += ["", "| attack | answers |", "| --- | --- |"]
        for name, counts in sorted(result.attacks.items()):
            lines.append(f"| {name} | {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))} |")
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
