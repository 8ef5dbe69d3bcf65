"""The composition root: the one module that knows every layer. It builds the backends,
the store and the services, and hands them to the API."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from chatport.api.app import create_app
from chatport.api.middleware import DEFAULT_BODY_TIMEOUT
from chatport.engine.backend import LlamaBackend
from chatport.engine.engine import EngineConfig
from chatport.replicas.scale import Scale
from chatport.service.audio import AudioService
from chatport.service.auth import Authenticator, AuthMode
from chatport.service.chat import ChatService
from chatport.service.fetch import FetchPolicy, ImageFetcher
from chatport.service.limits import RateLimiter
from chatport.service.models import ModelRegistry, ServedModel
from chatport.service.services import Services
from chatport.service.stored import StoredCompletions
from chatport.store.audio import AudioAnswerStore
from chatport.store.completions import CompletionStore
from chatport.store.counters import counters_for
from chatport.store.database import Database
from chatport.store.keys import KeyStore


def load_model(
    path: str,
    model_id: str,
    config: EngineConfig,
    progress: Callable[[float], None] | None = None,
    chat_template: str | None = None,
    mmproj: str | None = None,
) -> ServedModel:
    return ServedModel.create(model_id, LlamaBackend(path, config, progress=progress, mmproj=mmproj), chat_template)


def load_model_on_ray(
    path: str,
    model_id: str,
    config: EngineConfig,
    scale: Scale,
    chat_template: str | None = None,
    drain_seconds: float = 30.0,
) -> ServedModel:
    """The model's engines as Ray Serve replicas (the ray extra); Ray must be started."""
    from chatport.replicas.deploy import deploy_model

    return ServedModel.create(model_id, deploy_model(path, model_id, config, scale, drain_seconds=drain_seconds), chat_template)


def load_audio(stt_model: str | None, voices: dict[str, str], *, stt: bool = True, threads: int = 1) -> AudioService:
    """Speech in (Whisper) and out (Piper, when the tts extra is installed). ``voices``:
    request names -> voice files (--voice); the default voice speaks for every OpenAI name."""
    from chatport.speech.piper import PiperSynthesizer, SpeechUnavailable, default_voice
    from chatport.speech.whisper import WhisperTranscriber

    transcriber = WhisperTranscriber(stt_model, threads=threads) if stt else None
    synthesizer, why = None, ""
    try:
        files = {"default": default_voice(), **voices}
        synthesizer = PiperSynthesizer(files)
    except SpeechUnavailable as exc:
        why = str(exc)
    return AudioService(transcriber, synthesizer, voices={name: name for name in voices}, speech_unavailable=why or "no voice")


def build_app(
    registry: ModelRegistry,
    *,
    api_keys: list[str],
    database: Database | None,
    max_body_bytes: int,
    no_auth: bool = False,
    require_keys: bool = False,
    limits: str | None = None,
    allowed_hosts: frozenset[str] | None = None,
    cors_origins: list[str] | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    drop_params: frozenset[str] = frozenset(),
    show_reasoning: bool = True,
    allow_private_urls: bool = False,
    audio: AudioService | None = None,
    ui: bool = True,
) -> FastAPI:
    stored = StoredCompletions(CompletionStore(database)) if database is not None else None
    if audio is not None and database is not None:
        audio.answers = AudioAnswerStore(database)
    services = Services(
        registry=registry,
        chat=ChatService(
            registry,
            stored,
            drop=drop_params,
            show_reasoning=show_reasoning,
            fetcher=ImageFetcher(FetchPolicy(allow_private=allow_private_urls)),
            audio=audio,
        ),
        stored=stored,
        auth=Authenticator(
            api_keys,
            KeyStore(database) if database is not None else None,
            mode=AuthMode.OFF if no_auth else AuthMode.KEYS,
            require=require_keys,
        ),
        limits=RateLimiter(counters_for(limits)),
        database=database,
    )
    return create_app(
        services,
        max_body_bytes=max_body_bytes,
        allowed_hosts=allowed_hosts,
        cors_origins=cors_origins,
        body_timeout=body_timeout,
        ui=ui,
    )
