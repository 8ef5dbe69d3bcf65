"""The composition root: the one module that knows every layer. ``serve(config)`` builds
the backends, the store and the services from a checked ``ServeConfig``, hands them to the
API and runs it; nothing else constructs them."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from fastapi import FastAPI

from chatport.api.app import create_app
from chatport.api.guards import default_allowed_hosts
from chatport.api.lifecycle import serve as run_server
from chatport.catalog import ModelSource, default_model, model_id_for
from chatport.config import ConfigError, ModelSpec, ServeConfig, StartError, exposed_without_keys
from chatport.engine.backend import LlamaBackend
from chatport.engine.config import EngineConfig
from chatport.engine.llama import ModelLoadError
from chatport.replicas.scale import Scale
from chatport.service.audio import AudioService
from chatport.service.auth import Authenticator, AuthMode
from chatport.service.chat import ChatService, SamplingDefaults
from chatport.service.fetch import FetchPolicy, UrlFetcher
from chatport.service.limits import RateLimiter
from chatport.service.models import ModelRegistry, ServedModel
from chatport.service.responses.conversations import ConversationsService
from chatport.service.responses.service import ResponsesService
from chatport.service.search.backends import backend_for
from chatport.service.search.web import WebSearch
from chatport.service.services import Services
from chatport.service.stored import StoredCompletions
from chatport.store.audio import AudioAnswerStore
from chatport.store.completions import CompletionStore
from chatport.store.conversations import ConversationStore
from chatport.store.counters import counters_for
from chatport.store.database import Database, StoreUnavailable, database_at, redacted_url
from chatport.store.keys import KeyStore
from chatport.store.responses import ResponseStore

# Told how far a model has loaded (0 to 1).
Progress = Callable[[float], None]
# Shows a model loading: given its id, a context whose value takes the progress.
Loading = Callable[[str], AbstractContextManager[Progress]]


@contextmanager
def _quietly(_model_id: str) -> Iterator[Progress]:
    yield lambda _fraction: None


def serve(config: ServeConfig, *, say: Callable[[str], None] = print, loading: Loading = _quietly) -> None:
    """Run the server until it is stopped (SIGTERM drains it). ``say``: a line for the
    operator; ``loading``: shows each model loading. Raises ConfigError for what could only
    be checked by opening it (the store, a model file, a template, the speech models)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config.check()
    search = open_search(config)  # before the models load: a missing API key is said at once
    database = open_database(config.store)
    if config.needs_stored_keys and not stored_keys_or_unknown(database):
        raise exposed_without_keys(config.http.host)
    started_ray = _start_ray(config) if config.ray.enabled else False
    try:
        registry = load_models(config, say, loading)
        say(f"stored completions: {redacted_url(database.url)}")
        audio = load_audio(config)
        heard = "off" if audio.transcriber is None else "Whisper"
        spoken = ", ".join(audio.synthesizer.voices) if audio.synthesizer is not None else f"off ({audio.speech_unavailable})"
        say(f"audio input: {heard}; spoken answers: {spoken}")
        if search is not None:
            say(f"web search: {search.backend.name} ({config.web_search.queries} queries)")
        api = build_app(config, registry, database, audio, search)
        if config.http.ui:
            say(f"web UI: http://{_url_host(config.http.host)}:{config.http.port}/")
        http = config.http
        run_server(
            api,
            host=http.host,
            port=http.port,
            drain_seconds=http.drain_seconds,
            max_connections=http.max_connections,
            header_timeout=http.header_timeout,
            max_per_address=http.max_connections_per_address,
            trusted_proxies=list(http.trusted_proxies),
        )
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def open_search(config: ServeConfig) -> WebSearch | None:
    """The search engine --web-search names (its results' pages fetched under the
    image URLs' address rules), or None."""
    spec = config.web_search
    if spec.url is None:
        return None
    try:
        backend = backend_for(spec.url, timeout=spec.timeout)
    except ValueError as exc:
        raise ConfigError("--web-search", str(exc)) from None
    return WebSearch(backend, _fetcher(config), queries=spec.queries)


def _fetcher(config: ServeConfig) -> UrlFetcher:
    return UrlFetcher(FetchPolicy(allow_private=config.allow_private_urls))


def build_app(
    config: ServeConfig,
    registry: ModelRegistry,
    database: Database | None,
    audio: AudioService,
    search: WebSearch | None = None,
) -> FastAPI:
    """The API over the services a configuration asks for."""
    stored = StoredCompletions(CompletionStore(database)) if database is not None else None
    if database is not None:
        audio.answers = AudioAnswerStore(database)
    try:
        counters = counters_for(config.limits)
    except ValueError as exc:
        raise ConfigError("--limits", str(exc)) from None
    auth = config.auth
    chat = ChatService(
        registry,
        stored,
        drop=config.drop_params,
        show_reasoning=config.reasoning_format == "reasoning_content",
        fetcher=_fetcher(config),
        audio=audio,
        search=search,
        sampling=SamplingDefaults(config.default_temperature, config.default_top_p),
    )
    services = Services(
        registry=registry,
        chat=chat,
        responses=ResponsesService(
            chat,
            ResponseStore(database) if database is not None else None,
            ConversationsService(ConversationStore(database) if database is not None else None),
        ),
        stored=stored,
        auth=Authenticator(
            list(auth.api_keys),
            KeyStore(database) if database is not None else None,
            mode=AuthMode.OFF if auth.no_auth else AuthMode.KEYS,
            require=not config.http.loopback,
        ),
        limits=RateLimiter(counters),
        database=database,
    )
    http = config.http
    return create_app(
        services,
        max_body_bytes=http.max_body_mb * 1024 * 1024,
        allowed_hosts=default_allowed_hosts(http.host, list(http.allowed_hosts)),
        cors_origins=list(http.cors_origins),
        body_timeout=http.body_timeout,
        ui=http.ui,
    )


# --- models --------------------------------------------------------------------------


def load_models(config: ServeConfig, say: Callable[[str], None], loading: Loading) -> ModelRegistry:
    registry = ModelRegistry()
    specs = config.models or (_default_spec(),)
    for spec in specs:
        source = _source(spec)
        template = _template(spec.chat_template)
        with loading(source.id) as progress:
            try:
                if config.ray.enabled:
                    served = load_model_on_ray(source, config, template)
                else:
                    served = load_model(source, config.engine, progress, template)
            except ModelLoadError as exc:
                raise StartError(str(exc)) from None
        registry.add(served)
        context = served.capabilities.context_length
        also = ", thinks (reasoning_effort)" if served.reasoning is not None else ""
        also += ", sees images" if served.capabilities.vision else ""
        say(f"serving {served.id} from {source.path} (context {context} tokens, {config.engine.max_seqs} sequences{also})")
    for name, target in config.aliases:
        try:
            registry.alias(name, target)
        except KeyError:
            raise ConfigError("--alias", f"{name}={target}: no served model is called {target!r}") from None
    return registry


def load_model(
    source: ModelSource, engine: EngineConfig, progress: Progress | None = None, chat_template: str | None = None
) -> ServedModel:
    backend = LlamaBackend(source.path, engine, progress=progress, mmproj=source.mmproj)
    return ServedModel.create(source.id, backend, chat_template)


def load_model_on_ray(source: ModelSource, config: ServeConfig, chat_template: str | None = None) -> ServedModel:
    """The model's engines as Ray Serve replicas (the ray extra); Ray must be started."""
    from chatport.replicas.deploy import deploy_model

    scale = Scale.parse(config.ray.replicas, config.ray.autoscale)
    backend = deploy_model(source.path, source.id, config.engine, scale, drain_seconds=config.http.drain_seconds)
    return ServedModel.create(source.id, backend, chat_template)


def _default_spec() -> ModelSpec:
    default = default_model()
    return ModelSpec(default.path, default.id)


def _source(spec: ModelSpec) -> ModelSource:
    """Where a model's files are: a local file, or the Hub's cache (downloaded if needed)."""
    from chatport.hub import HubError, fetch, is_hub, parse

    if not is_hub(spec.source):
        path = os.path.abspath(spec.source)
        return ModelSource(path, spec.id or model_id_for(path), spec.mmproj)
    try:
        model = fetch(parse(spec.source))
    except HubError as exc:
        raise ConfigError("--model", str(exc)) from None
    return ModelSource(model.path, spec.id or model_id_for(model.path), spec.mmproj or model.mmproj)


def _template(path: str | None) -> str | None:
    if path is None:
        return None
    from chatport.service.template import TemplateFileError, read_template_file

    try:
        return read_template_file(path)
    except TemplateFileError as exc:
        raise ConfigError("--chat-template", str(exc)) from None


# --- speech, store, Ray -------------------------------------------------------------------


def load_audio(config: ServeConfig, *, threads: int = 1) -> AudioService:
    """Speech in (Whisper) and out (Piper, when the tts extra is installed). A voice given
    with --voice answers to its name; the default voice speaks for every OpenAI name."""
    from chatport.speech.piper import PiperSynthesizer, SpeechUnavailable, default_voice
    from chatport.speech.whisper import ModelMissing, WhisperTranscriber

    voices = {name: os.path.abspath(path) for name, path in config.audio.voices}
    try:
        transcriber = WhisperTranscriber(config.audio.stt_model, threads=threads) if config.audio.input else None
    except ModelMissing as exc:
        raise ConfigError("--stt-model", str(exc)) from None
    synthesizer, why = None, ""
    try:
        synthesizer = PiperSynthesizer({"default": default_voice(), **voices})
    except SpeechUnavailable as exc:
        why = str(exc)
    if voices and synthesizer is None:
        raise ConfigError("--voice", why)
    return AudioService(transcriber, synthesizer, voices={name: name for name in voices}, speech_unavailable=why or "no voice")


def open_database(url: str | None) -> Database:
    try:
        return database_at(url)
    except ValueError as exc:
        raise ConfigError("--store", str(exc)) from None


def stored_keys_or_unknown(database: Database) -> bool:
    """Whether the store holds live keys; True also when it cannot say (requests are then
    refused until it can: authentication fails closed)."""

    async def check() -> bool:
        try:
            return await KeyStore(database).any_live()
        finally:
            await database.close()

    try:
        return asyncio.run(check())
    except StoreUnavailable:
        return True


def _start_ray(config: ServeConfig) -> bool:
    """True when a local Ray instance was started (and must be shut down on exit)."""
    try:
        from chatport.replicas.deploy import start_ray
    except ImportError:
        raise ConfigError("--ray", 'needs the ray extra: pip install "chatport[ray]"') from None
    return start_ray(config.ray.address)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
