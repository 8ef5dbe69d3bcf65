"""``chatport bench``: throughput, TTFT and inter-token latency through the official SDK
(optionally beside peer servers on the same GGUF), and one subcommand per other
measurement, each with its own options. Tables are printed and kept in ``--out``."""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import Annotated

import typer

from chatport.catalog import default_model
from chatport.cli.errors import console

app = typer.Typer(
    help="Measure chatport: throughput by default, or one of the measurements below.",
    invoke_without_command=True,
    no_args_is_help=False,
)

Model = Annotated[str, typer.Option(help="Model id to request.")]
ModelPath = Annotated[str | None, typer.Option(help="GGUF for the servers bench starts (default: the default model).")]
Out = Annotated[str, typer.Option(help="Directory the results are written to.")]
Levels = Annotated[str, typer.Option(help="Comma-separated concurrent stream counts.")]
PEERS = ("llama-server", "llama-cpp-python")


def _command() -> str:
    return "chatport bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])


def _levels(text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise typer.BadParameter(f"takes counts such as 1,4,16, not {text!r}", param_hint="--concurrency") from None


def _emit(out: str, name: str, text: str) -> None:
    """Print a measurement's table and keep it in ``out`` as NAME-results.md."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}-results.md")
    with open(path, "w") as f:
        f.write(text)
    typer.echo(text)
    console.print(f"written: {path}")


@app.callback()
def throughput(
    ctx: typer.Context,
    base_url: Annotated[str | None, typer.Option(help="Bench a running server (e.g. http://127.0.0.1:8000/v1).")] = None,
    model: Model = "smollm2-135m-instruct",
    model_path: ModelPath = None,
    concurrency: Levels = "1,4,16",
    requests: Annotated[int, typer.Option(help="Requests per concurrency level (at least the level).")] = 32,
    max_tokens: Annotated[int, typer.Option(help="Tokens generated per request (end-of-turn is banned).")] = 128,
    compare: Annotated[
        str | None,
        typer.Option(
            help="Peers to start on the same GGUF and drive in alternating rounds, comma-separated: llama-server "
            "(needs --peer-bin), llama-cpp-python, ray-N (chatport with N engine replicas on Ray, the cores shared)."
        ),
    ] = None,
    peer_bin: Annotated[
        str | None, typer.Option(help="The llama-server binary for --compare llama-server (scripts/build-llama-server).")
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="Rounds over every server and level; medians are reported (default 3 with peers, else 1).")
    ] = None,
    raw: Annotated[bool, typer.Option(help="Also run the bare llama_decode greedy loop.")] = False,
    prefix: Annotated[bool, typer.Option(help="Also time a repeated 1,000-token shared system prompt.")] = True,
    constrained: Annotated[bool, typer.Option(help="Also run the top concurrency under a JSON schema.")] = False,
    ctx_size: Annotated[int, typer.Option(help="Context per sequence for started servers.")] = 2048,
    workload: Annotated[
        str | None,
        typer.Option(
            help="Instead of throughput, realistic runs through the SDK, comma-separated (or all): edit, rag, agent, "
            "json, chat; chatport runs with --speculation auto and as started by default (off), beside the "
            "peers of --compare."
        ),
    ] = None,
    peer_args: Annotated[
        list[str],
        typer.Option(
            "--peer-args",
            help="With --workload: arguments of one llama-server configuration, e.g. '--spec-type ngram-simple' or "
            "'-md DRAFT.gguf' (repeatable: each is run, and the best per workload reported; default: as started).",
        ),
    ] = [],
    out: Annotated[str, typer.Option(help="Directory for results.json, results.md and results.png.")] = "bench-results",
) -> None:
    """Throughput, TTFT and inter-token latency at each concurrency (the default measurement)."""
    if ctx.invoked_subcommand is not None:
        return
    from chatport.bench import report
    from chatport.bench.runner import BenchOptions, run

    peers = [p.strip() for p in (compare or "").split(",") if p.strip()]
    unknown = {p for p in peers if p not in PEERS and not re.fullmatch(r"ray-[1-9][0-9]*", p)}
    if unknown:
        raise typer.BadParameter(
            f"unknown peer {', '.join(sorted(unknown))}: llama-server, llama-cpp-python, ray-N (chatport on N Ray replicas)",
            param_hint="--compare",
        )
    if "llama-server" in peers and not (peer_bin and os.access(peer_bin, os.X_OK)):
        raise typer.BadParameter(
            "--compare llama-server needs --peer-bin PATH, an executable llama-server (build one: scripts/build-llama-server)",
            param_hint="--peer-bin",
        )
    if workload is not None:
        _workloads(workload, model, model_path, _levels(concurrency), peers, peer_bin, peer_args, rounds or 1, ctx_size, out)
        return
    opts = BenchOptions(
        base_url=base_url,
        model=model,
        model_path=model_path or default_model().path,
        concurrency=_levels(concurrency),
        requests=requests,
        max_tokens=max_tokens,
        peers=peers,
        peer_bin=peer_bin,
        rounds=rounds if rounds is not None else (3 if peers else 1),
        raw=raw,
        prefix=prefix,
        out=out,
        ctx_size=ctx_size,
        constrained=constrained,
    )
    results = run(opts, _command())
    paths = report.write(results, out)
    typer.echo(report.markdown(results))
    console.print(f"written: {paths['markdown']}, {paths['plot']}, {paths['json']}")


def _workloads(
    names: str,
    model: str,
    model_path: str | None,
    levels: list[int],
    peers: list[str],
    peer_bin: str | None,
    peer_args: list[str],
    rounds: int,
    ctx_size: int,
    out: str,
) -> None:
    from chatport.bench.servers import RunningServer, start_chatport, start_llama_server
    from chatport.bench.workloads import WORKLOADS, markdown, run_workloads

    chosen = list(WORKLOADS) if names.strip() == "all" else [w.strip() for w in names.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown or not chosen:
        raise typer.BadParameter(f"takes {', '.join(WORKLOADS)} or all, not {names!r}", param_hint="--workload")
    if set(peers) - {"llama-server"}:
        raise typer.BadParameter("with --workload, the peer is llama-server", param_hint="--compare")
    path = model_path or default_model().path
    os.makedirs(out, exist_ok=True)
    servers: list[RunningServer] = []
    try:
        common = ("--model", path, "--model-id", model, "--ctx-size", str(ctx_size), "--no-auth")
        for name, extra in (("chatport --speculation auto", ("--speculation", "auto")), ("chatport", ())):
            server = start_chatport(*common, *extra, log_path=os.path.join(out, f"{name.replace(' ', '_')}.log"))
            server.name = name
            servers.append(server)
        if peers:
            for args in peer_args or [""]:
                log = os.path.join(out, f"llama-server-{len(servers)}.log")
                server = start_llama_server(
                    peer_bin or "", path, model, ctx_size=ctx_size, parallel=max(levels), log_path=log, extra=shlex.split(args)
                )
                server.name = f"llama-server {args}".strip()
                servers.append(server)
        results = run_workloads([(s.name, s.api) for s in servers], model, chosen, levels, rounds, console.print)
    finally:
        for server in servers:
            server.stop()
    _emit(out, "workloads", markdown(_command(), results, "chatport", rounds))


@app.command()
def store(
    model: Model = "smollm2-135m-instruct",
    model_path: ModelPath = None,
    rows: Annotated[int, typer.Option(help="Stored completions to load.")] = 100_000,
    pg_url: Annotated[
        str, typer.Option(help="PostgreSQL server (a fresh database is made on it and dropped).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    out: Out = "bench-results",
) -> None:
    """List latency over many stored completions, on SQLite and PostgreSQL."""
    from chatport.bench.store import markdown, run_on_both

    results = run_on_both(model, model_path or default_model().path, rows, pg_url, out)
    _emit(out, "store", f"Command: `{_command()}`\n\n" + markdown(results))


@app.command()
def soak(
    minutes: Annotated[float, typer.Argument(help="How long the load runs.")],
    attacks: Annotated[
        bool, typer.Option("--attacks", help="The second half mixes in the probe's bombs, floods and trickled bodies.")
    ] = False,
    threads: Annotated[int, typer.Option(help="llama.cpp threads of the server it starts (0: the default).")] = 0,
    model: Model = "smollm2-135m-instruct",
    model_path: ModelPath = None,
    out: Out = "bench-results",
) -> None:
    """A steady mixed load, sampling errors, RSS and open files (and small requests' latency)."""
    from chatport.bench.soak import markdown, run_soak

    typer.echo(markdown(run_soak(_command(), model, model_path or default_model().path, minutes, out, attacks, threads)))


@app.command()
def prediction(
    concurrency: Levels = "1,16",
    model: Model = "smollm2-135m-instruct",
    model_path: ModelPath = None,
    out: Out = "bench-results",
) -> None:
    """Predicted outputs on two code edits, with and without."""
    from chatport.bench.prediction import markdown, run_prediction

    results = run_prediction(model, model_path or default_model().path, _levels(concurrency))
    _emit(out, "prediction", markdown(_command(), results))


@app.command("prompt-cache")
def prompt_cache(model: Model = "smollm2-135m-instruct", model_path: ModelPath = None, out: Out = "bench-results") -> None:
    """TTFT of a long prompt pushed out of its slot, from memory and from disk."""
    from chatport.bench.prompt_cache import markdown, run_prompt_cache

    _emit(out, "prompt-cache", markdown(_command(), run_prompt_cache(model, model_path or default_model().path)))


@app.command()
def audio(model: Model = "smollm2-135m-instruct", model_path: ModelPath = None, out: Out = "bench-results") -> None:
    """Transcription speed, and time to first audio of spoken answers."""
    from chatport.bench.audio import markdown, run_audio

    _emit(out, "audio", markdown(_command(), *run_audio(model, model_path or default_model().path)))


@app.command("web-search")
def web_search(
    base_url: Annotated[
        str | None, typer.Option(help="Bench a running server started with --web-search (default: start one).")
    ] = None,
    latency: Annotated[float, typer.Option(help="Seconds the stand-in search engine takes per search.")] = 0.3,
    rounds: Annotated[int, typer.Option(help="Alternating rounds; medians are reported.")] = 5,
    model: Model = "smollm2-135m-instruct",
    model_path: ModelPath = None,
    out: Out = "bench-results",
) -> None:
    """Time to first token without a web search and with each search_context_size, and the
    search's share of it."""
    from chatport.bench.web_search import markdown, run_web_search

    rows = run_web_search(model, model_path or default_model().path, base_url=base_url, rounds=rounds, latency=latency)
    _emit(out, "web-search", markdown(_command(), rows, latency if base_url is None else None))


@app.command()
def tools(
    model_path: Annotated[
        str | None, typer.Option(help="GGUF to serve (default: Qwen2.5-Coder-0.5B-Instruct from the test extra's packages).")
    ] = None,
    model: Model = "qwen2.5-coder-0.5b-instruct",
    categories: Annotated[
        str, typer.Option(help="Comma-separated: simple, multiple, parallel, parallel_multiple, irrelevance, live_simple.")
    ] = "simple,multiple,parallel,parallel_multiple,irrelevance,live_simple",
    per_category: Annotated[int, typer.Option(help="Entries per category, evenly spaced through it.")] = 20,
    compare: Annotated[str | None, typer.Option(help="llama-server: also run llama.cpp's server with --jinja.")] = None,
    peer_bin: Annotated[str | None, typer.Option(help="The llama-server binary for --compare llama-server.")] = None,
    threads: Annotated[int, typer.Option(help="Threads of each server (0: their default, every core).")] = 1,
    out: Out = "bench-results",
) -> None:
    """Function calling on the Berkeley Function Calling Leaderboard's data, scored by its AST
    checker (needs ``pip install --no-deps bfcl-eval==2026.3.23``)."""
    from chatport.bench.packaged import qwen_coder_gguf
    from chatport.bench.tools import CATEGORIES, markdown, run_tools, start_servers

    chosen = [c.strip() for c in categories.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown:
        raise typer.BadParameter(f"unknown category {', '.join(unknown)}: {', '.join(CATEGORIES)}", param_hint="--categories")
    peers = [p.strip() for p in (compare or "").split(",") if p.strip()]
    if peers and (peers != ["llama-server"] or not (peer_bin and os.access(peer_bin, os.X_OK))):
        raise typer.BadParameter("takes llama-server, with --peer-bin PATH (scripts/build-llama-server)", param_hint="--compare")
    servers = start_servers(model_path or qwen_coder_gguf("0.5b"), model, peers, peer_bin, threads)
    try:
        results = run_tools([(s.name, s.api) for s in servers], model, chosen, per_category)
    finally:
        for server in servers:
            server.stop()
    _emit(out, "tools", markdown(_command(), results, per_category))
