"""``chatport bench --workload``: realistic multi-request runs through the official SDK.

Five workloads, each a run of one or more requests, greedy, driven as an app drives them:
- edit: a 368-token module returned whole with a rename (no ``prediction``);
- rag: a question answered from a ~1,200-token document, quoting the sentences it rests on;
- agent: a tool loop (look up an order, then its customer, then answer), each call's
  result sent back as a tool message, up to four requests;
- json: a structured extraction under a strict JSON schema, whose values come from the text;
- chat: free writing, which repeats little of its prompt.

Every server runs every workload at each stream count in alternating rounds (server after
server, so drift on a shared machine hits all alike) and medians are reported: output
tokens per second of wall time, time to first token and end-to-end time per run. Each
stream gets its own nonce in the system prompt, so streams never share a prompt's KV, and
every round's first prompts are computed once untimed first (one token asked), as a warm
app's are; their answers are never written before the timed run.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from openai import AsyncOpenAI

from chatport.bench.prediction import source_file

WORKLOADS = ("edit", "rag", "agent", "json", "chat")


@dataclass
class Run:
    tokens: int = 0  # completion tokens over the run's requests
    seconds: float = 0.0  # wall time of the run
    ttft: float = 0.0  # of the run's first request
    texts: list[str] = field(default_factory=list)  # what each request answered (calls as JSON)
    warm: bool = False  # a warm-up: prompts only


@dataclass
class WorkloadResult:
    server: str
    workload: str
    streams: int
    tokens_per_second: float
    ttft: float
    seconds: float
    texts: list[str]  # the first stream's answers in the last round, to compare servers by
    drafted: int = 0  # chatport's context draft tokens verified over the timed runs (from /metrics)
    accepted: int = 0


def _document() -> str:
    """A handbook of ~1,200 tokens: numbered facts about a made-up lighthouse service."""
    places = ["Kestrel Point", "Marrow Head", "Gull Rock", "Tarn Ness", "Fenwick Bar", "Orrin Skerry"]
    lines = []
    for i, place in enumerate(places):
        lines += [
            f"{place} light was first lit in {1841 + 7 * i} and stands {18 + 3 * i} metres above high water.",
            f"Its lamp shows {'one white flash' if i % 2 else 'two red flashes'} every {5 + i} seconds, "
            f"visible for {14 + i} nautical miles in clear weather.",
            f"The keeper's cottage at {place} was rebuilt in {1902 + 5 * i} after a storm took its roof.",
            f"Supplies reach {place} by boat on {['Mondays', 'Tuesdays', 'Thursdays'][i % 3]}, weather permitting, "
            f"and the fog signal sounds {3 + i} blasts a minute.",
            f"Automation came to {place} in {1971 + 4 * i}; since then a technician visits every {2 + i % 3} months.",
        ]
    return "\n".join(f"{n + 1}. {line}" for n, line in enumerate(lines))


ORDERS = {"A-1042": {"order_id": "A-1042", "customer_id": "C-77", "items": ["kettle", "teapot"], "total": 54.9}}
CUSTOMERS = {"C-77": {"customer_id": "C-77", "name": "Ada Lovelace", "email": "ada@example.com", "city": "London"}}
AGENT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look an order up by its id.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_customer",
            "description": "Look a customer up by their id.",
            "parameters": {
                "type": "object",
                "properties": {"customer_id": {"type": "string"}},
                "required": ["customer_id"],
            },
        },
    },
]
INVOICE = {
    "type": "json_schema",
    "json_schema": {
        "name": "invoice",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "invoice_number": {"type": "string"},
                "customer": {"type": "string"},
                "address": {"type": "string"},
                "lines": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "description": {"type": "string"},
                            "quantity": {"type": "integer"},
                            "unit_price": {"type": "number"},
                        },
                        "required": ["description", "quantity", "unit_price"],
                        "additionalProperties": False,
                    },
                },
                "total": {"type": "number"},
            },
            "required": ["invoice_number", "customer", "address", "lines", "total"],
            "additionalProperties": False,
        },
    },
}
INVOICE_TEXT = (
    "Invoice INV-2026-0193, issued to Marlow & Finch Stationers, 14 Quay Street, Bristol BS1 4DJ.\n"
    "3 x A4 ruled notebooks at 4.50 each; 12 x fine-liner pens (black) at 1.20 each; 2 x desk organisers "
    "(walnut) at 18.00 each; 5 x packs of index cards at 2.10 each; 1 x brass letter opener at 9.75.\n"
    "Total due: 84.15, payable within 30 days."
)


async def _ask(client: AsyncOpenAI, model: str, run: Run, started: float, **kwargs: Any) -> Any:
    """One streamed request; adds its tokens and answer to ``run`` and returns the message
    as a dict (content and calls), as an app would send it back. A warm-up run (``run.warm``)
    asks for one token: the prompt is computed and cached, the answer is not written (a
    server that drafts from earlier answers must not have seen this one)."""
    if run.warm:
        kwargs["max_tokens"] = 1
    stream = await client.chat.completions.create(
        model=model, temperature=0, stream=True, stream_options={"include_usage": True}, **kwargs
    )
    content = ""
    calls: dict[int, dict[str, str]] = {}
    async for chunk in stream:
        if chunk.usage is not None:
            run.tokens += chunk.usage.completion_tokens
        for choice in chunk.choices:
            delta = choice.delta
            if (delta.content or delta.tool_calls) and not run.ttft:
                run.ttft = time.perf_counter() - started
            content += delta.content or ""
            for call in delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls.values()
        ]
    run.texts.append(content + json.dumps(message.get("tool_calls", [])))
    return message


def _system(nonce: str, text: str) -> dict[str, str]:
    return {"role": "system", "content": f"Session {nonce}. {text}"}


async def _edit(client: AsyncOpenAI, model: str, nonce: str, run: Run, started: float) -> None:
    messages = [
        _system(nonce, "You edit code. Reply with the whole edited file and nothing else."),
        {"role": "user", "content": f"Rename the class Item to Product everywhere in this file:\n\n{source_file()}"},
    ]
    await _ask(client, model, run, started, messages=messages, max_tokens=600)


async def _rag(client: AsyncOpenAI, model: str, nonce: str, run: Run, started: float) -> None:
    messages = [
        _system(nonce, "Answer from the document only. Quote, word for word, every sentence your answer rests on."),
        {
            "role": "user",
            "content": f"Document:\n{_document()}\n\nWhen were Gull Rock and Tarn Ness lights first lit, how tall are "
            "they, and what do their lamps show? Quote the document's sentences.",
        },
    ]
    await _ask(client, model, run, started, messages=messages, max_tokens=300)


async def _agent(client: AsyncOpenAI, model: str, nonce: str, run: Run, started: float) -> None:
    messages: list[Any] = [
        _system(nonce, "You are a support agent. Use the tools to look things up before you answer."),
        {"role": "user", "content": "Who placed order A-1042, what is their email, and what did they buy?"},
    ]
    for _ in range(4):
        message = await _ask(client, model, run, started, messages=messages, tools=AGENT_TOOLS, max_tokens=200)
        messages.append(message)
        if not message.get("tool_calls"):
            return
        for call in message["tool_calls"]:
            try:
                args = json.loads(call["function"]["arguments"])
            except json.JSONDecodeError:
                args = {}
            found = ORDERS.get(str(args.get("order_id"))) or CUSTOMERS.get(str(args.get("customer_id")))
            result = found or {"error": "not found"}
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})


async def _json(client: AsyncOpenAI, model: str, nonce: str, run: Run, started: float) -> None:
    messages = [
        _system(nonce, "Extract the invoice's fields exactly as written."),
        {"role": "user", "content": INVOICE_TEXT},
    ]
    await _ask(client, model, run, started, messages=messages, response_format=INVOICE, max_tokens=400)


async def _chat(client: AsyncOpenAI, model: str, nonce: str, run: Run, started: float) -> None:
    messages = [
        _system(nonce, "You are a helpful assistant."),
        {"role": "user", "content": "Write a short story (about 200 words) about a lighthouse keeper who finds a message."},
    ]
    await _ask(client, model, run, started, messages=messages, max_tokens=300)


def _drafts(api: str) -> tuple[int, int]:
    """(drafted, accepted) context draft tokens so far, from chatport's /metrics; (0, 0)
    for another server."""
    try:
        text = httpx.get(api.removesuffix("/v1") + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0, 0
    counts = {"accepted": 0, "rejected": 0}
    for outcome, value in re.findall(r'^chatport_draft_tokens_total\{[^}]*outcome="(\w+)"[^}]*\} ([0-9.e+]+)$', text, re.M):
        counts[outcome] = counts.get(outcome, 0) + int(float(value))
    return counts["accepted"] + counts["rejected"], counts["accepted"]


DRIVERS: dict[str, Callable[[AsyncOpenAI, str, str, Run, float], Any]] = {
    "edit": _edit,
    "rag": _rag,
    "agent": _agent,
    "json": _json,
    "chat": _chat,
}


async def _streams(api: str, model: str, workload: str, streams: int, nonce: str, *, warm: bool = False) -> list[Run]:
    """``streams`` copies of a workload at once, each with its own prompts."""
    client = AsyncOpenAI(base_url=api, api_key="bench", timeout=1800, max_retries=0)

    async def one(i: int) -> Run:
        run, started = Run(warm=warm), time.perf_counter()
        await DRIVERS[workload](client, model, f"{nonce}-{i}", run, started)
        run.seconds = time.perf_counter() - started
        return run

    try:
        return list(await asyncio.gather(*(one(i) for i in range(streams))))
    finally:
        await client.close()


def run_workloads(
    servers: list[tuple[str, str]],
    model: str,
    workloads: list[str],
    levels: list[int],
    rounds: int,
    progress: Callable[[str], None],
) -> list[WorkloadResult]:
    """``servers``: (name, API base URL). Returns one result per server, workload and level."""
    samples: dict[tuple[str, str, int], list[tuple[float, float, float]]] = {}
    texts: dict[tuple[str, str, int], list[str]] = {}
    drafts: dict[tuple[str, str, int], list[int]] = {}
    for n in range(rounds):
        for workload in workloads:
            for streams in levels:
                for name, api in servers:
                    nonce = f"r{n}-{workload}-{streams}"
                    asyncio.run(_streams(api, model, workload, streams, nonce, warm=True))  # a warm app's prompts
                    before = _drafts(api)
                    began = time.perf_counter()
                    runs = asyncio.run(_streams(api, model, workload, streams, nonce))
                    wall = time.perf_counter() - began
                    after = _drafts(api)
                    total = drafts.setdefault((name, workload, streams), [0, 0])
                    total[0] += after[0] - before[0]
                    total[1] += after[1] - before[1]
                    tokens = sum(r.tokens for r in runs)
                    sample = (tokens / wall, statistics.mean(r.ttft for r in runs), statistics.mean(r.seconds for r in runs))
                    samples.setdefault((name, workload, streams), []).append(sample)
                    texts[name, workload, streams] = runs[0].texts
                    progress(f"round {n + 1} {workload} x{streams} {name}: {sample[0]:.1f} tok/s")
    return [
        WorkloadResult(
            name,
            workload,
            streams,
            statistics.median(s[0] for s in got),
            statistics.median(s[1] for s in got),
            statistics.median(s[2] for s in got),
            texts[name, workload, streams],
            *drafts[name, workload, streams],
        )
        for (name, workload, streams), got in samples.items()
    ]


def markdown(command: str, results: list[WorkloadResult], baseline: str, rounds: int) -> str:
    """One row per workload and level: each server's tokens/s, TTFT and run time, its ratio
    to ``baseline``, the best peer (a server not named chatport...), and whether each
    server's first answers equal the baseline's (greedy: they should, speculation or not)."""
    lines = [f"Workloads: `{command}` (greedy, median of {rounds} alternating rounds)", ""]
    lines += [
        "| workload | streams | server | tok/s | TTFT (s) | run (s) | vs " + baseline + " | same answers | drafts taken |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    keyed: dict[tuple[str, int], list[WorkloadResult]] = {}
    for r in results:
        keyed.setdefault((r.workload, r.streams), []).append(r)
    best_lines = ["", "| workload | streams | chatport's best | tok/s | best peer | its tok/s | chatport / best peer |"]
    best_lines.append("| --- | ---: | --- | ---: | --- | ---: | ---: |")
    for (workload, streams), rows in keyed.items():
        base = next((r for r in rows if r.server == baseline), rows[0])
        for r in rows:
            ratio = r.tokens_per_second / base.tokens_per_second if base.tokens_per_second else 0.0
            same = "yes" if r.texts == base.texts else "no"
            taken = f"{r.accepted}/{r.drafted}" if r.drafted else "-"
            lines.append(
                f"| {workload} | {streams} | {r.server} | {r.tokens_per_second:.1f} | {r.ttft:.2f} | {r.seconds:.1f} | "
                f"{ratio:.2f}x | {same} | {taken} |"
            )
        mine = [r for r in rows if r.server.startswith("chatport")]
        ours = max(mine, key=lambda r: r.tokens_per_second) if mine else None
        peers = [r for r in rows if not r.server.startswith("chatport")]
        if ours is not None and peers:
            best = max(peers, key=lambda r: r.tokens_per_second)
            best_lines.append(
                f"| {workload} | {streams} | {ours.server} | {ours.tokens_per_second:.1f} | {best.server} | "
                f"{best.tokens_per_second:.1f} | {ours.tokens_per_second / best.tokens_per_second:.2f}x |"
            )
    if len(best_lines) > 3:
        lines += best_lines
    return "\n".join(lines) + "\n"
