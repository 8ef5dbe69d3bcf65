"""``chatport bench tools``: function calling measured with the Berkeley Function Calling
Leaderboard's own data and AST checker (PyPI ``bfcl-eval``, which pins a whole model zoo:
install it without its dependencies, ``pip install --no-deps bfcl-eval==2026.3.23``; only
its data files and ``ast_checker`` are used).

Categories: simple (``simple_python``), multiple, parallel, parallel_multiple,
irrelevance and live_simple. A 2-core machine cannot run all 1,500 entries in a sitting,
so each category is subsampled: ``--per-category N`` entries evenly spaced through the
category (by position; the same ones on every run and for every server). Every entry is
asked through the official SDK at temperature 0 with ``tool_choice: "auto"``, whole and
streamed, and each answer is scored:

- correct: the AST checker accepts the calls (irrelevance: no call is made);
- malformed: a call whose arguments are not a JSON object;
- wrong tool: a call naming a listed tool the answer does not use (a call coerced onto a
  listed tool shows here);
- leaked: call markup in ``content`` (``<tool_call>``, ``[TOOL_CALLS]``, ``"arguments"``);
- stream differs: the streamed answer, joined, is not the whole one.

Function names with dots (``math.factorial``) are sent with underscores, as OpenAI's
name rule requires and BFCL's own OpenAI handler does, and mapped back for the checker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import types
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

CATEGORIES = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
    "live_simple": "live_simple",
}
MARKUP = ("<tool_call>", "</tool_call>", "[TOOL_CALLS]", '"arguments"', '"parameters"')
# BFCL's types -> JSON schema types (its OpenAI handler converts the same way).
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


@dataclass(frozen=True)
class Entry:
    id: str
    category: str  # BFCL's own name (simple_python, ...)
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]  # as BFCL gives them
    answer: list[dict[str, Any]] | None  # possible answers; None for irrelevance

    @property
    def tools(self) -> list[dict[str, Any]]:
        return [openai_tool(f) for f in self.functions]


def load(category: str, per_category: int) -> list[Entry]:
    """``per_category`` entries evenly spaced through BFCL's category (all when fewer)."""
    name = CATEGORIES[category]
    data = resources.files("bfcl_eval") / "data"
    rows = _rows(data / f"BFCL_v4_{name}.json")
    answers = {}
    if category != "irrelevance":
        answers = {r["id"]: r["ground_truth"] for r in _rows(data / "possible_answer" / f"BFCL_v4_{name}.json")}
    picked = rows if per_category >= len(rows) else [rows[i * len(rows) // per_category] for i in range(per_category)]
    return [Entry(r["id"], name, r["question"][0], r["function"], answers.get(r["id"])) for r in picked]


def _rows(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def openai_tool(function: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": function["name"].replace(".", "_"),
            "description": function.get("description", ""),
            "parameters": converted(function.get("parameters", {"type": "dict", "properties": {}})),
        },
    }


def converted(schema: Any) -> Any:
    """A BFCL parameter schema as JSON schema (``dict`` -> ``object``, ``float`` -> ``number``...)."""
    if isinstance(schema, list):
        return [converted(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            kind = _TYPES.get(value, value)
            if kind is not None:
                out[key] = kind
        elif key in ("properties",) and isinstance(value, dict):
            out[key] = {name: converted(s) for name, s in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = converted(value)
        else:
            out[key] = value
    return out


@dataclass
class Answer:
    content: str
    calls: list[tuple[str, str]]  # (name as returned, arguments)


@dataclass
class Score:
    correct: bool
    malformed: int
    wrong_tool: int
    leaked: bool


def score(entry: Entry, answer: Answer) -> Score:
    names = {f["name"].replace(".", "_"): f["name"] for f in entry.functions}
    parsed, malformed = [], 0
    for name, arguments in answer.calls:
        try:
            args = json.loads(arguments)
        except ValueError:
            args = None
        if not isinstance(args, dict):
            malformed += 1
            continue
        parsed.append({names.get(name, name): args})
    expected = {n for alternative in entry.answer or [] for n in alternative}
    wrong = sum(1 for call in parsed for n in call if n not in expected) if entry.answer is not None else 0
    leaked = any(m in answer.content for m in MARKUP)
    if entry.answer is None:  # irrelevance: the right answer makes no call
        return Score(not answer.calls, malformed, wrong, leaked)
    correct = not malformed and bool(parsed) and _checker()(entry, parsed)
    return Score(correct, malformed, wrong, leaked)


def _checker() -> Any:
    """BFCL's ast_checker, imported without the model registry its module imports (which
    pulls in every vendor SDK): names reach it with their dots already restored."""
    if "bfcl_eval.constants.model_config" not in sys.modules:
        stub = types.ModuleType("bfcl_eval.constants.model_config")
        stub.MODEL_CONFIG_MAPPING = defaultdict(lambda: types.SimpleNamespace(underscore_to_dot=False))  # type: ignore[attr-defined]
        sys.modules["bfcl_eval.constants.model_config"] = stub
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    def check(entry: Entry, calls: list[dict[str, Any]]) -> bool:
        category = entry.category.removesuffix("_python")
        result = ast_checker(entry.functions, calls, entry.answer, Language.PYTHON, category, "chatport")
        return bool(result["valid"])

    return check


async def ask(client: Any, model: str, entry: Entry, *, stream: bool, max_tokens: int) -> Answer:
    body = {"model": model, "messages": entry.messages, "tools": entry.tools, "temperature": 0, "max_tokens": max_tokens}
    if not stream:
        r = await client.chat.completions.create(**body)
        message = r.choices[0].message
        calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or []]
        return Answer(message.content or "", calls)
    content, pieces = "", dict[int, tuple[str, str]]()
    async for chunk in await client.chat.completions.create(**body, stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for call in delta.tool_calls or []:
            name, arguments = pieces.get(call.index, ("", ""))
            fn = call.function
            pieces[call.index] = (name + ((fn.name or "") if fn else ""), arguments + ((fn.arguments or "") if fn else ""))
    return Answer(content, [pieces[i] for i in sorted(pieces)])


@dataclass
class CategoryResult:
    server: str
    category: str
    entries: int = 0
    correct: int = 0
    correct_streamed: int = 0
    malformed: int = 0
    wrong_tool: int = 0
    leaked: int = 0
    stream_differs: int = 0
    errors: int = 0  # requests the server failed (an error status, or a dropped connection): scored wrong
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def accuracy(self, streamed: bool = False) -> float:
        return (self.correct_streamed if streamed else self.correct) / self.entries if self.entries else 0.0


async def _run_category(
    client: Any, server: str, model: str, category: str, entries: list[Entry], max_tokens: int
) -> CategoryResult:
    import openai

    result = CategoryResult(server, category)
    started = time.perf_counter()
    for entry in entries:
        answers = []
        for stream in (False, True):
            try:
                answers.append(await ask(client, model, entry, stream=stream, max_tokens=max_tokens))
            except openai.APIError as exc:
                result.errors += 1
                answers.append(Answer(f"<{type(exc).__name__}>", []))
        whole, streamed = answers
        first, second = score(entry, whole), score(entry, streamed)
        result.entries += 1
        result.correct += first.correct
        result.correct_streamed += second.correct
        result.malformed += first.malformed + second.malformed
        result.wrong_tool += first.wrong_tool + second.wrong_tool
        result.leaked += first.leaked + second.leaked
        result.stream_differs += (whole.content.strip(), whole.calls) != (streamed.content.strip(), streamed.calls)
        if not first.correct:
            result.failures.append(f"{entry.id}: {whole.calls or whole.content[:120]!r}")
    result.seconds = time.perf_counter() - started
    return result


def run_tools(
    servers: list[tuple[str, str]], model: str, categories: list[str], per_category: int, max_tokens: int = 400
) -> list[CategoryResult]:
    """Every category on every (name, API base URL) server, one after another."""
    from openai import AsyncOpenAI

    entries = {c: load(c, per_category) for c in categories}

    async def main() -> list[CategoryResult]:
        out = []
        for name, api in servers:
            async with AsyncOpenAI(base_url=api, api_key="bench", max_retries=0, timeout=600) as client:
                for category in categories:
                    out.append(await _run_category(client, name, model, category, entries[category], max_tokens))
        return out

    return asyncio.run(main())


def markdown(command: str, results: list[CategoryResult], per_category: int) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        f"BFCL v4 (bfcl-eval 2026.3.23), {per_category} entries per category, temperature 0, tool_choice auto; "
        "malformed, wrong tool and leaked count calls or answers over the whole and the streamed runs.",
        "",
        "| server | category | accuracy | streamed | malformed | wrong tool | leaked | stream differs | errors | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.server} | {r.category} | {r.accuracy():.1%} | {r.accuracy(True):.1%} | {r.malformed} | "
            f"{r.wrong_tool} | {r.leaked} | {r.stream_differs} | {r.errors} | {r.seconds:.0f} |"
        )
    by_server: dict[str, list[CategoryResult]] = defaultdict(list)
    for r in results:
        by_server[r.server].append(r)
    lines += ["", "| server | mean accuracy |", "| --- | ---: |"]
    for server, rows in by_server.items():
        lines.append(f"| {server} | {sum(r.accuracy() for r in rows) / len(rows):.1%} |")
    wrong = [(r.server, r.category, f) for rows in by_server.values() for r in rows for f in r.failures]
    if wrong:  # what each wrong whole answer was: calls (name, arguments) or the start of its text
        lines += ["", "<details><summary>Wrong answers</summary>", ""]
        lines += [f"- {server} {category} {failure}" for server, category, failure in wrong]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def start_servers(model_path: str, model: str, peers: list[str], peer_bin: str | None, threads: int) -> list[Any]:
    """chatport (and llama-server with ``--jinja``, its tool-calling mode) on the GGUF."""
    from chatport.bench.servers import start_chatport, start_llama_server

    logs = tempfile.mkdtemp(prefix="chatport-bench-tools-")
    thread_args = ("--threads", str(threads)) if threads else ()
    servers = [start_chatport("--model", model_path, "--model-id", model, *thread_args, log_path=f"{logs}/chatport.log")]
    if "llama-server" in peers and peer_bin:
        extra = ["--jinja", *(("--threads", str(threads)) if threads else ())]
        servers.append(
            start_llama_server(
                peer_bin, model_path, model, ctx_size=4096, parallel=1, log_path=f"{logs}/llama-server.log", extra=extra
            )
        )
    return servers
