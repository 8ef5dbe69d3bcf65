"""The ``chatport`` command."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from chatport.catalog import ModelSource, default_model, model_id_for
from chatport.engine.engine import EngineConfig
from chatport.hub import is_hub
from chatport.replicas.scale import Scale

if TYPE_CHECKING:
    from chatport.service.audio import AudioService
    from chatport.store.database import Database

T = TypeVar("T")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="OpenAI Chat Completions on local GGUF models.")
console = Console(stderr=True)


def _sources(models: list[str], model_ids: list[str]) -> list[ModelSource]:
    if not models:
        if model_ids:
            raise typer.BadParameter("--model-id names a --model; give the --model too")
        return [default_model()]
    if len(model_ids) > len(models):
        raise typer.BadParameter("more --model-id than --model")
    resolved = [_from_hub(m) if is_hub(m) else (os.path.abspath(m), None) for m in models]
    ids = model_ids + [model_id_for(p) for p, _ in resolved[len(model_ids) :]]
    return [ModelSource(p, i, mmproj) for (p, mmproj), i in zip(resolved, ids, strict=False)]


def _from_hub(spec: str) -> tuple[str, str | None]:
    """A Hub model's local GGUF and vision projector, if its repo has one (downloaded into
    the Hugging Face cache if needed)."""
    from chatport.hub import HubError, fetch, parse

    try:
        model = fetch(parse(spec))
    except HubError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    if model.mmproj:
        console.print(f"{spec}: vision projector {os.path.basename(model.mmproj)}")
    return model.path, model.mmproj


def _projectors(argv: list[str], n_models: int, given: list[str]) -> list[str | None]:
    """Each --model's --mmproj: a --mmproj belongs to the --model before it on the command
    line (as in llama.cpp's server); with no --model, to the default model. Without the
    command line to read, in order."""
    owners: list[int] = []
    current = -1 if "--model" in {a.split("=", 1)[0] for a in argv} else 0
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name == "--model":
            current += 1
        elif name == "--mmproj":
            owners.append(current)
    if len(owners) != len(given):
        owners = list(range(len(given)))
    out: list[str | None] = [None] * n_models
    for owner, path in zip(owners, given, strict=True):
        if owner < 0:
            raise typer.BadParameter("a --mmproj belongs to the --model before it; give the --model first", param_hint="--mmproj")
        if owner >= n_models:
            raise typer.BadParameter("more --mmproj than --model", param_hint="--mmproj")
        if out[owner] is not None:
            raise typer.BadParameter("one --mmproj per --model", param_hint="--mmproj")
        out[owner] = os.path.abspath(path)
    return out


def _aliases(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise typer.BadParameter(f"--alias takes NAME=MODEL_ID, got {value!r}")
        pairs.append((name, target))
    return pairs


@app.command()
def serve(
    model: Annotated[
        list[str],
        typer.Option("--model", help="A GGUF file, or hf:OWNER/REPO:QUANT or hf:OWNER/REPO/FILE.gguf (repeatable)."),
    ] = [],
    model_id: Annotated[list[str], typer.Option("--model-id", help="The id of the matching --model.")] = [],
    mmproj: Annotated[
        list[str],
        typer.Option(
            "--mmproj", help="A vision projector GGUF for the --model before it, for image input (hf: models bring theirs)."
        ),
    ] = [],
    stt_model: Annotated[
        str | None,
        typer.Option(help="A CTranslate2 Whisper directory for input_audio (default: Whisper tiny.en, shipped in a package)."),
    ] = None,
    no_audio_input: Annotated[
        bool, typer.Option("--no-audio-input", help="Refuse input_audio parts (load no Whisper model).")
    ] = False,
    voice: Annotated[
        list[str],
        typer.Option(
            "--voice",
            help="NAME=PATH.onnx: a Piper voice for spoken answers under this name (an OpenAI voice name or a new one); "
            "needs the tts extra.",
        ),
    ] = [],
    allow_private_urls: Annotated[
        bool,
        typer.Option(
            "--allow-private-urls",
            help="Let image URLs reach loopback, private and link-local addresses (refused by default: SSRF).",
        ),
    ] = False,
    alias: Annotated[list[str], typer.Option("--alias", help="NAME=MODEL_ID, e.g. gpt-4o=smollm2-135m-instruct.")] = [],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[
        list[str], typer.Option("--api-key", help="Accepted bearer key (repeatable); also CHATPORT_API_KEYS.")
    ] = [],
    ctx_size: Annotated[int, typer.Option(help="Context tokens per sequence.")] = 4096,
    max_seqs: Annotated[int, typer.Option(help="Sequences decoded together per model.")] = 16,
    max_queue: Annotated[int, typer.Option(help="Requests allowed to wait for a slot; more get 429.")] = 256,
    queue_timeout: Annotated[float, typer.Option(help="Seconds a request may wait for a slot before a 503.")] = 60.0,
    threads: Annotated[int, typer.Option(help="CPU threads for llama.cpp (0: all cores).")] = 0,
    repack: Annotated[
        bool,
        typer.Option(
            "--repack",
            help="Repack Q4_0/Q4_K/IQ4_NL/Q8_0 weights for the CPU's wide kernels (not on CPUs with AMX): a few percent "
            "faster at many streams, but seeded answers then vary with the prefix cache.",
        ),
    ] = False,
    cache_ram: Annotated[
        int, typer.Option(help="MiB of host memory for prompt prefixes pushed out of their slot (0: none).")
    ] = 1024,
    cache_disk: Annotated[
        int, typer.Option(help='MiB of disk for prefixes of prompt_cache_retention "24h" requests (0: none).')
    ] = 4096,
    cache_dir: Annotated[
        str | None, typer.Option(help="Where those are kept (default: ~/.local/share/chatport/prompt-cache).")
    ] = None,
    max_body_mb: Annotated[int, typer.Option(help="Largest request body accepted, in MiB.")] = 32,
    store: Annotated[str | None, typer.Option(help="Stored completions: sqlite:///PATH or postgresql://...")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without API keys (say so explicitly).")] = False,
    limits: Annotated[
        str, typer.Option(help="Where rate-limit counts live: memory, or redis://HOST:PORT/DB to share them.")
    ] = "memory",
    drain_seconds: Annotated[
        float, typer.Option(help="On SIGTERM, how long running requests may finish before they are cut.")
    ] = 30.0,
    allowed_host: Annotated[
        list[str],
        typer.Option("--allowed-host", help="A Host name to answer besides the loopback names (repeatable; * for any)."),
    ] = [],
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Do not serve the web UI at /.")] = False,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run each model's engines as replicas on Ray Serve (the ray extra).")
    ] = False,
    replicas: Annotated[int | None, typer.Option(help="With --ray: engine replicas per model (default 1).")] = None,
    autoscale: Annotated[
        str | None, typer.Option(help="With --ray: MIN:MAX replicas per model, scaled by requests in flight.")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="With --ray: join this Ray cluster (default: start a local Ray instance).")
    ] = None,
    cors_origin: Annotated[
        list[str], typer.Option("--cors-origin", help="A web origin allowed to call the API from a browser (repeatable).")
    ] = [],
    max_connections: Annotated[int, typer.Option(help="Open connections at once; more are answered 503.")] = 1024,
    max_connections_per_address: Annotated[
        int | None, typer.Option(help="Open connections from one client address (default: a quarter of --max-connections).")
    ] = None,
    trusted_proxy: Annotated[
        list[str],
        typer.Option(
            "--trusted-proxy",
            help="A reverse proxy's address whose X-Forwarded-For names the client (repeatable); from others it is ignored.",
        ),
    ] = [],
    header_timeout: Annotated[float, typer.Option(help="Seconds a client has to send a request's headers.")] = 10.0,
    body_timeout: Annotated[float, typer.Option(help="Seconds a client may pause while sending a body.")] = 30.0,
    chat_template: Annotated[
        list[str],
        typer.Option(
            "--chat-template",
            help="A Jinja chat template file (or a tokenizer_config.json) used instead of the matching --model's own.",
        ),
    ] = [],
    reasoning_format: Annotated[
        str,
        typer.Option(
            help="How a thinking model's reasoning is returned: reasoning_content (as llama.cpp and DeepSeek do) "
            "or none (counted in usage, its text not returned, as OpenAI does).",
        ),
    ] = "reasoning_content",
    drop_params: Annotated[
        list[str],
        typer.Option(
            "--drop-params",
            help="Parameters to accept and ignore, comma-separated (reasoning_effort, verbosity, web_search_options, "
            "prompt_cache_options); said in the x-chatport-dropped-params header.",
        ),
    ] = [],
) -> None:
    """Serve the Chat Completions API (default: SmolLM2-135M-Instruct)."""
    from chatport.api.guards import default_allowed_hosts
    from chatport.api.lifecycle import serve as run_server
    from chatport.engine.llama import ModelLoadError
    from chatport.server import build_app, load_model, load_model_on_ray
    from chatport.service.models import ModelRegistry
    from chatport.store.database import describe

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    keys = api_key + [k for k in os.environ.get("CHATPORT_API_KEYS", "").split(",") if k.strip()]
    database = _database(store)
    dropped = _droppable(drop_params)
    if reasoning_format not in ("reasoning_content", "none"):
        raise typer.BadParameter("takes reasoning_content or none", param_hint="--reasoning-format")
    if not (keys or no_auth or _is_loopback(host)) and not _stored_keys_or_unknown(database):
        raise typer.BadParameter(
            f"{host} is reachable from other machines and no API key is configured: pass --api-key, create one with "
            "`chatport keys create --project NAME`, or pass --no-auth to serve without keys.",
            param_hint="--host",
        )
    config = EngineConfig(
        ctx_size=ctx_size,
        max_seqs=max_seqs,
        max_waiting=max_queue,
        queue_timeout=queue_timeout,
        threads=threads,
        repack=repack,
        cache_ram_mb=cache_ram,
        cache_disk_mb=cache_disk,
        cache_dir=cache_dir,
    )
    scale = _scale(ray, replicas, autoscale, ray_address, mmproj)
    ray_started = _start_ray(ray_address) if scale is not None else False
    registry = ModelRegistry()
    sources = _sources(model, model_id)
    templates = _chat_templates(chat_template, len(sources))
    if mmproj:
        projectors = _projectors(sys.argv[1:], len(sources), mmproj)
        sources = [ModelSource(s.path, s.id, p or s.mmproj) for s, p in zip(sources, projectors, strict=True)]
    for source, template in zip(sources, templates, strict=True):
        with Progress(
            TextColumn("loading [bold]{task.description}"), BarColumn(), TaskProgressColumn(), console=console, transient=False
        ) as progress:
            task = progress.add_task(source.id, total=1.0)
            try:
                if scale is not None:
                    served = load_model_on_ray(source.path, source.id, config, scale, template, drain_seconds)
                else:
                    served = load_model(
                        source.path,
                        source.id,
                        config,
                        progress=partial(_advance, progress, task),
                        chat_template=template,
                        mmproj=source.mmproj,
                    )
            except ModelLoadError as exc:
                console.print(f"[red]error:[/] {exc}")
                raise typer.Exit(1) from None
            progress.update(task, completed=1.0)
        registry.add(served)
        context = served.capabilities.context_length
        thinks = ", thinks (reasoning_effort)" if served.reasoning is not None else ""
        thinks += ", sees images" if served.capabilities.vision else ""
        console.print(f"serving [bold]{served.id}[/] from {source.path} (context {context} tokens, {max_seqs} sequences{thinks})")
    for name, target in _aliases(alias):
        try:
            registry.alias(name, target)
        except KeyError:
            raise typer.BadParameter(f"--alias {name}={target}: no served model is called {target!r}") from None
    console.print(f"stored completions: {describe(database.url)}")
    audio = _audio(stt_model, voice, not no_audio_input)
    try:
        api = build_app(
            registry,
            api_keys=keys,
            database=database,
            max_body_bytes=max_body_mb * 1024 * 1024,
            no_auth=no_auth,
            require_keys=not _is_loopback(host),
            limits=limits,
            allowed_hosts=default_allowed_hosts(host, allowed_host),
            cors_origins=cors_origin,
            body_timeout=body_timeout,
            drop_params=dropped,
            show_reasoning=reasoning_format == "reasoning_content",
            allow_private_urls=allow_private_urls,
            audio=audio,
            ui=not no_ui,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--limits") from None
    if not no_ui:
        console.print(f"web UI: http://{_url_host(host)}:{port}/")
    try:
        run_server(
            api,
            host=host,
            port=port,
            drain_seconds=drain_seconds,
            max_connections=max_connections,
            header_timeout=header_timeout,
            max_per_address=max_connections_per_address,
            trusted_proxies=trusted_proxy,
        )
    finally:
        if ray_started:
            import ray as ray_runtime

            ray_runtime.shutdown()


def _audio(stt_model: str | None, voices: list[str], stt: bool) -> AudioService:
    from chatport.server import load_audio
    from chatport.speech.whisper import ModelMissing

    named: dict[str, str] = {}
    for value in voices:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"takes NAME=PATH.onnx, got {value!r}", param_hint="--voice")
        named[name] = os.path.abspath(path)
    try:
        audio = load_audio(stt_model, named, stt=stt)
    except ModelMissing as exc:
        raise typer.BadParameter(str(exc), param_hint="--stt-model") from None
    if voices and audio.synthesizer is None:
        raise typer.BadParameter(audio.speech_unavailable, param_hint="--voice")
    heard = "off" if audio.transcriber is None else "Whisper"
    said = ", ".join(audio.synthesizer.voices) if audio.synthesizer is not None else f"off ({audio.speech_unavailable})"
    console.print(f"audio input: {heard}; spoken answers: {said}")
    return audio


def _chat_templates(paths: list[str], n_models: int) -> list[str | None]:
    """Each --model's --chat-template (in order; the rest keep their own)."""
    if len(paths) > n_models:
        raise typer.BadParameter("more --chat-template than --model", param_hint="--chat-template")
    from chatport.service.template import TemplateFileError, read_template_file

    try:
        loaded: list[str | None] = [read_template_file(p) for p in paths]
    except TemplateFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--chat-template") from None
    return loaded + [None] * (n_models - len(paths))


def _droppable(values: list[str]) -> frozenset[str]:
    from chatport.service.checks import DROPPABLE

    names = frozenset(n.strip() for v in values for n in v.split(",") if n.strip())
    if names - DROPPABLE:
        raise typer.BadParameter(
            f"{', '.join(sorted(names - DROPPABLE))} cannot be dropped; these can: {', '.join(sorted(DROPPABLE))}",
            param_hint="--drop-params",
        )
    return names


def _scale(ray: bool, replicas: int | None, autoscale: str | None, address: str | None, mmproj: list[str]) -> Scale | None:
    """With --ray: how many replicas each model runs (None: engines in this process)."""
    if not ray:
        for name, value in (("--replicas", replicas), ("--autoscale", autoscale), ("--ray-address", address)):
            if value is not None:
                raise typer.BadParameter("takes effect with --ray only", param_hint=name)
        return None
    if mmproj:
        raise typer.BadParameter("image input is not served by Ray replicas yet", param_hint="--mmproj")
    if replicas is not None and autoscale is not None:
        raise typer.BadParameter("give --replicas or --autoscale, not both", param_hint="--autoscale")
    try:
        scale = Scale.parse(replicas, autoscale)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--autoscale" if autoscale else "--replicas") from None
    return scale


def _start_ray(address: str | None) -> bool:
    """True when a local Ray instance was started (and must be shut down on exit)."""
    try:
        from chatport.replicas.deploy import start_ray
    except ImportError:
        raise typer.BadParameter('needs the ray extra: pip install "chatport[ray]"', param_hint="--ray") from None
    return start_ray(address)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _stored_keys_or_unknown(database: Database) -> bool:
    """Whether the store holds live keys; True also when it cannot say (requests are then
    refused until it can: authentication fails closed)."""
    import asyncio

    from chatport.store.database import StoreUnavailable
    from chatport.store.keys import KeyStore

    async def check() -> bool:
        try:
            return await KeyStore(database).any_live()
        finally:
            await database.close()

    try:
        return asyncio.run(check())
    except StoreUnavailable:
        return True


def _advance(progress: Progress, task: TaskID, value: float) -> None:
    progress.update(task, completed=value)


def _database(url: str | None) -> Database:
    from chatport.store.database import Database, default_sqlite_url

    try:
        return Database(url or os.environ.get("CHATPORT_STORE") or default_sqlite_url())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--store") from None


@app.command()
def pull(spec: Annotated[str, typer.Argument(help="hf:OWNER/REPO:QUANT or hf:OWNER/REPO/FILE.gguf")]) -> None:
    """Download a model from the Hugging Face Hub into its cache (resumes, uses HF_TOKEN)."""
    from chatport.hub import HubError, fetch, parse

    try:
        model = fetch(parse(spec if is_hub(spec) else "hf:" + spec))
    except HubError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    for path in model.files:
        typer.echo(path)


@app.command("models")
def list_models() -> None:
    """GGUF models in the Hugging Face cache, with their sizes (one file a line)."""
    from chatport.hub import cached_models

    for cached in cached_models():
        for name, size in cached.files:
            typer.echo(f"hf:{cached.repo}\t{name}\t{_size(size)}")


@app.command("rm")
def remove_model(spec: Annotated[str, typer.Argument(help="hf:OWNER/REPO[...] or OWNER/REPO")]) -> None:
    """Remove a repo's files from the Hugging Face cache."""
    from chatport.hub import HubError, parse, remove

    try:
        repo = parse(spec if is_hub(spec) else "hf:" + spec).repo
    except HubError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    freed = remove(repo)
    if not freed:
        console.print(f"[red]nothing of {repo} is cached[/]")
        raise typer.Exit(1)
    console.print(f"removed {repo} ({_size(freed)})")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


StoreOption = Annotated[
    str | None, typer.Option("--store", help="sqlite:///PATH or postgresql://... (default: the local SQLite file)")
]

db_app = typer.Typer(help="The stored-completions database.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and the projects they belong to.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _run(coro_fn: Callable[[Database], Awaitable[T]], url: str | None) -> T:
    import asyncio

    from chatport.store.database import StoreUnavailable, describe

    async def main() -> T:
        database = _database(url)
        try:
            return await coro_fn(database)
        finally:
            await database.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        console.print(f"[red]database unavailable[/] ({describe(_database(url).url)}): {exc}")
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def db_upgrade(store: StoreOption = None) -> None:
    """Apply the database migrations (serve does this at start-up too)."""

    async def go(database: Database) -> None:
        await database.upgrade()

    _run(go, store)
    console.print("database is up to date")


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option(help="The project the key belongs to (created if new).")],
    store: StoreOption = None,
    rpm: Annotated[int | None, typer.Option(help="The project's requests per minute.", min=1)] = None,
    tpm: Annotated[int | None, typer.Option(help="The project's tokens per minute.", min=1)] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="The project's requests at once.", min=1)] = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash. --rpm, --tpm and
    --max-concurrent set the project's rate limits (for all its keys)."""
    from chatport.protocol.limits import RateLimits
    from chatport.store.keys import KeyStore, check_project_name

    try:
        check_project_name(project)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--project") from None
    given = RateLimits(rpm, tpm, max_concurrent)
    key, info = _run(lambda db: KeyStore(db).create(project, given if given.any else None), store)
    console.print(f"created {info.id} for project [bold]{project}[/]; this is the only time the key is shown:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(store: StoreOption = None) -> None:
    """List keys (redacted) with their projects."""
    from rich.table import Table

    from chatport.store.keys import KeyStore

    rows = _run(lambda db: KeyStore(db).list(), store)
    table = Table("id", "project", "key", "created", "revoked")
    for k in rows:
        table.add_row(k.id, k.project, k.redacted, str(k.created_at), str(k.revoked_at or ""))
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, store: StoreOption = None) -> None:
    """Revoke a key by id; it stops working within seconds."""
    from chatport.store.keys import KeyStore

    if not _run(lambda db: KeyStore(db).revoke(key_id), store):
        console.print(f"[red]no live key {key_id}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@app.command()
def bench(
    base_url: Annotated[str | None, typer.Option(help="Bench a running server (e.g. http://127.0.0.1:8000/v1).")] = None,
    model: Annotated[str, typer.Option(help="Model id to request.")] = "smollm2-135m-instruct",
    model_path: Annotated[
        str | None, typer.Option(help="GGUF for the servers bench starts (default: the default model).")
    ] = None,
    concurrency: Annotated[str, typer.Option(help="Comma-separated concurrent stream counts.")] = "1,4,16",
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
    out: Annotated[
        str,
        typer.Option(
            help="Directory for results.json, results.md and results.png (MODE-results.md for --prediction, --prompt-cache, --audio, --store)."
        ),
    ] = "bench-results",
    store: Annotated[bool, typer.Option("--store", help="Instead: list latency over many stored completions.")] = False,
    store_rows: Annotated[int, typer.Option(help="Stored completions to load for --store.")] = 100_000,
    pg_url: Annotated[
        str, typer.Option(help="PostgreSQL server for --store (a fresh database is made on it).")
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    soak: Annotated[
        float | None, typer.Option(help="Instead: MINUTES of mixed load, sampling errors, RSS and open files.")
    ] = None,
    attacks: Annotated[
        bool,
        typer.Option("--attacks", help="With --soak: the second half mixes in the probe's bombs, floods and trickled bodies."),
    ] = False,
    threads: Annotated[int, typer.Option(help="With --soak: llama.cpp threads of the server it starts (0: the default).")] = 0,
    prediction: Annotated[
        bool, typer.Option("--prediction", help="Instead: predicted outputs on two code edits, with and without.")
    ] = False,
    audio: Annotated[
        bool, typer.Option("--audio", help="Instead: transcription speed and time to first audio of spoken answers.")
    ] = False,
    prompt_cache: Annotated[
        bool,
        typer.Option("--prompt-cache", help="Instead: TTFT of a long prompt pushed out of its slot, from memory and disk."),
    ] = False,
) -> None:
    """Measure throughput, TTFT and inter-token latency through the official async SDK."""
    import shlex
    import sys

    from chatport.bench import report
    from chatport.bench.runner import BenchOptions, run

    command = "chatport bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    if store:
        _bench_store(command, model, model_path or default_model().path, store_rows, pg_url, out)
        return
    if prediction:
        from chatport.bench.prediction import markdown as prediction_table
        from chatport.bench.prediction import run_prediction

        levels = [int(c) for c in concurrency.split(",") if c.strip()]
        _emit_table(
            out, "prediction", prediction_table(command, run_prediction(model, model_path or default_model().path, levels))
        )
        return
    if prompt_cache:
        from chatport.bench.prompt_cache import markdown as cache_table
        from chatport.bench.prompt_cache import run_prompt_cache

        _emit_table(out, "prompt-cache", cache_table(command, run_prompt_cache(model, model_path or default_model().path)))
        return
    if audio:
        from chatport.bench.audio import markdown as audio_table
        from chatport.bench.audio import run_audio

        _emit_table(out, "audio", audio_table(command, *run_audio(model, model_path or default_model().path)))
        return
    if soak is not None:
        from chatport.bench.soak import markdown, run_soak

        typer.echo(markdown(run_soak(command, model, model_path or default_model().path, soak, out, attacks, threads)))
        return

    levels = [int(c) for c in concurrency.split(",") if c.strip()]
    peers = [p.strip() for p in (compare or "").split(",") if p.strip()]
    unknown = {p for p in peers if p not in ("llama-server", "llama-cpp-python") and not re.fullmatch(r"ray-[1-9][0-9]*", p)}
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
    opts = BenchOptions(
        base_url=base_url,
        model=model,
        model_path=model_path or default_model().path,
        concurrency=levels,
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
    results = run(opts, command)
    paths = report.write(results, out)
    typer.echo(report.markdown(results))
    console.print(f"written: {paths['markdown']}, {paths['plot']}, {paths['json']}")


def _emit_table(out: str, name: str, text: str) -> None:
    """Print a bench mode's table and keep it in --out as NAME-results.md, as the other modes do."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}-results.md")
    with open(path, "w") as f:
        f.write(text)
    typer.echo(text)
    console.print(f"written: {path}")


def _bench_store(command: str, model: str, model_path: str, rows: int, pg_url: str, out: str) -> None:
    import asyncio
    import json
    import secrets

    import asyncpg  # type: ignore[import-untyped]

    from chatport.bench.store import markdown, run_store_bench

    os.makedirs(out, exist_ok=True)
    sqlite_path = os.path.join(os.path.abspath(out), "store-bench.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(sqlite_path + suffix):
            os.remove(sqlite_path + suffix)
    base, _, _ = pg_url.rpartition("/")
    name = f"chatport_bench_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        results = run_store_bench(
            {"sqlite": f"sqlite:///{sqlite_path}", "postgresql": f"{base}/{name}"},
            model_path,
            model,
            rows,
            200,
            os.path.join(out, "servers.log"),
        )
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    results["command"] = command
    with open(os.path.join(out, "store-results.json"), "w") as f:
        json.dump(results, f, indent=2)
    _emit_table(out, "store", f"Command: `{command}`\n\n" + markdown(results))


@app.callback()
def _root() -> None:
    """chatport: the OpenAI Chat Completions API on your own machine."""


def main() -> None:
    app()
