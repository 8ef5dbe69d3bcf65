"""``chatport serve``: the options, gathered into a ``ServeConfig`` and served."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from chatport.catalog import default_model
from chatport.cli.errors import as_usage_errors, console
from chatport.config import (
    AudioConfig,
    AuthConfig,
    HttpConfig,
    ModelSpec,
    RayConfig,
    ServeConfig,
    WebSearchConfig,
    assign_projectors,
    model_specs,
    pairs,
)
from chatport.engine.config import EngineConfig
from chatport.hub import is_hub


class Speculation(enum.Enum):
    AUTO = "auto"
    OFF = "off"


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
            help="Let image URLs and web search result pages reach loopback, private and link-local addresses "
            "(refused by default: SSRF).",
        ),
    ] = False,
    web_search: Annotated[
        str | None,
        typer.Option(
            "--web-search",
            help="The search engine that answers web_search_options: searxng+http(s)://HOST[:PORT][/PATH] (a SearXNG "
            "instance with its JSON format on), brave: (BRAVE_API_KEY), tavily: (TAVILY_API_KEY) or file:PATH (results "
            "from a JSON file). Result pages are fetched under the same address rules as image URLs.",
        ),
    ] = None,
    web_search_queries: Annotated[
        str,
        typer.Option(help="What is searched for: message (the last user turn) or model (up to 3 queries the model writes)."),
    ] = "message",
    web_search_timeout: Annotated[float, typer.Option(help="Seconds the search engine has to answer (then 504).")] = 10.0,
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
    speculation: Annotated[
        Speculation,
        typer.Option(
            help="auto: draft every answer's next tokens from its own context (prompt, tool results, what it wrote) "
            "and verify them in one step, where the measured cost of the rows leaves a gain; off (the default until "
            "auto never loses: docs/benchmarks.md): only a request's prediction drafts. The answer is the same.",
        ),
    ] = Speculation.OFF,
    draft_history: Annotated[
        int,
        typer.Option(
            help="With --speculation auto: tokens of earlier answers kept to draft from, for requests of the same "
            "project only (each project its latest 32768 at most; 0: none).",
            min=0,
        ),
    ] = 262_144,
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
    temperature: Annotated[
        float | None,
        typer.Option(
            help="The temperature of requests that send none (default: OpenAI's 1). For clients that never send one "
            "(the Codex CLI) on a model that wants a lower one.",
        ),
    ] = None,
    top_p: Annotated[float | None, typer.Option(help="The top_p of requests that send none (default: OpenAI's 1).")] = None,
    drop_params: Annotated[
        list[str],
        typer.Option(
            "--drop-params",
            help="Parameters to accept and ignore, comma-separated (reasoning_effort, verbosity, web_search_options, "
            "prompt_cache_options); said in the x-chatport-dropped-params header. Without --web-search, "
            "web_search_options is refused unless dropped.",
        ),
    ] = [],
) -> None:
    """Serve the Chat Completions API (default: SmolLM2-135M-Instruct)."""
    with as_usage_errors():
        sources = [s if is_hub(s) else os.path.abspath(s) for s in model]
        projectors = assign_projectors(sys.argv[1:], max(len(model), 1), [os.path.abspath(p) for p in mmproj])
        default = default_model()
        keys = [*api_key, *(k for k in os.environ.get("CHATPORT_API_KEYS", "").split(",") if k.strip())]
        config = ServeConfig(
            models=model_specs(
                sources, model_id, projectors, [os.path.abspath(t) for t in chat_template], ModelSpec(default.path, default.id)
            ),
            aliases=pairs(alias, "--alias", "NAME=MODEL_ID"),
            engine=EngineConfig(
                context_length=ctx_size,
                max_seqs=max_seqs,
                max_waiting=max_queue,
                queue_timeout=queue_timeout,
                threads=threads,
                repack=repack,
                speculation=speculation is Speculation.AUTO,
                draft_history_tokens=draft_history,
                cache_ram_mb=cache_ram,
                cache_disk_mb=cache_disk,
                cache_dir=cache_dir,
            ),
            http=HttpConfig(
                host=host,
                port=port,
                max_body_mb=max_body_mb,
                header_timeout=header_timeout,
                body_timeout=body_timeout,
                max_connections=max_connections,
                max_connections_per_address=max_connections_per_address,
                allowed_hosts=tuple(allowed_host),
                cors_origins=tuple(cors_origin),
                trusted_proxies=tuple(trusted_proxy),
                ui=not no_ui,
                drain_seconds=drain_seconds,
            ),
            auth=AuthConfig(api_keys=tuple(keys), no_auth=no_auth),
            store=store,
            limits=limits,
            audio=AudioConfig(stt_model=stt_model, input=not no_audio_input, voices=pairs(voice, "--voice", "NAME=PATH.onnx")),
            ray=RayConfig(enabled=ray, replicas=replicas, autoscale=autoscale, address=ray_address),
            drop_params=frozenset(n.strip() for v in drop_params for n in v.split(",") if n.strip()),
            default_temperature=temperature,
            default_top_p=top_p,
            reasoning_format=reasoning_format,
            allow_private_urls=allow_private_urls,
            web_search=WebSearchConfig(web_search, web_search_queries, web_search_timeout),
        )
        from chatport import server  # the whole server: imported once there is something to serve

        server.serve(config, say=console.print, loading=_progress_bar)


@contextmanager
def _progress_bar(model_id: str) -> Iterator[Callable[[float], None]]:
    with Progress(
        TextColumn("loading [bold]{task.description}"), BarColumn(), TaskProgressColumn(), console=console, transient=False
    ) as progress:
        task = progress.add_task(model_id, total=1.0)
        yield lambda fraction: progress.update(task, completed=fraction)
        progress.update(task, completed=1.0)
