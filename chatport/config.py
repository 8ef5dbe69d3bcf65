"""What ``chatport serve`` is asked to run, as plain frozen data: the command line (or a
test, or a program embedding chatport) fills a ``ServeConfig``, ``check()`` refuses what
cannot run with a ``ConfigError`` naming the option, and ``chatport.server.serve(config)``
turns it into a running server. Nothing here loads a model or touches the network."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from chatport.engine.config import EngineConfig

REASONING_FORMATS = ("reasoning_content", "none")
WEB_SEARCH_QUERIES = ("message", "model")
# Parameters an operator may drop (accepted and ignored): chatport.service.checks.DROPPABLE.
LIMIT_SCHEMES = ("memory", "redis://", "rediss://", "unix://")
STORE_SCHEMES = ("sqlite", "postgresql", "postgres")


class ConfigError(ValueError):
    """An option (``param``, as the command line spells it) that cannot be served."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


class StartError(RuntimeError):
    """Something the configuration names could not be started (a model file that does not
    load): not a usage error, so the command exits 1 with the reason."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to serve: a GGUF file or ``hf:OWNER/REPO[:QUANT|/FILE.gguf]``."""

    source: str
    id: str | None = None  # default: the file's name
    mmproj: str | None = None  # a vision projector GGUF (hf: models bring theirs)
    chat_template: str | None = None  # a Jinja file or tokenizer_config.json used instead of the model's own


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_mb: int = 32
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1024
    max_connections_per_address: int | None = None  # default: a quarter of max_connections
    allowed_hosts: tuple[str, ...] = ()  # besides the loopback names and the bound address; "*": any
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For names the client
    ui: bool = True
    drain_seconds: float = 30.0

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the server."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class AuthConfig:
    api_keys: tuple[str, ...] = ()  # --api-key and CHATPORT_API_KEYS: project "default"
    no_auth: bool = False  # serve without keys, said explicitly


@dataclass(frozen=True)
class AudioConfig:
    stt_model: str | None = None  # a CTranslate2 Whisper directory (default: tiny.en from a package)
    input: bool = True  # take input_audio parts (load Whisper)
    voices: tuple[tuple[str, str], ...] = ()  # (name, Piper .onnx path), for spoken answers


@dataclass(frozen=True)
class WebSearchConfig:
    url: str | None = None  # --web-search: searxng+http(s)://..., brave:, tavily: or file:PATH (None: no search)
    queries: str = "message"  # what is searched for: the last user turn, or up to 3 queries the model writes
    timeout: float = 10.0  # seconds the engine has to answer


@dataclass(frozen=True)
class RayConfig:
    enabled: bool = False
    replicas: int | None = None
    autoscale: str | None = None  # MIN:MAX
    address: str | None = None  # join this cluster (default: a local Ray instance)


@dataclass(frozen=True)
class ServeConfig:
    models: tuple[ModelSpec, ...] = ()  # empty: the default model
    aliases: tuple[tuple[str, str], ...] = ()  # (name, model id)
    engine: EngineConfig = field(default_factory=EngineConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    store: str | None = None  # sqlite:///PATH or postgresql://... (default: the local SQLite file)
    limits: str = "memory"  # or redis://HOST:PORT/DB
    audio: AudioConfig = field(default_factory=AudioConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    drop_params: frozenset[str] = frozenset()
    # What a request that sends no temperature / top_p samples with (None: OpenAI's 1).
    default_temperature: float | None = None
    default_top_p: float | None = None
    reasoning_format: str = "reasoning_content"
    allow_private_urls: bool = False
    web_search: WebSearchConfig = field(default_factory=WebSearchConfig)

    def check(self) -> None:
        """Raises ConfigError for the first option that cannot be served. Every rule that
        needs no model, file or network: the rest are checked as they are loaded."""
        from chatport.service.checks import DROPPABLE

        _check_models(self.models)
        for name, target in self.aliases:
            if not name or not target:
                raise ConfigError("--alias", f"takes NAME=MODEL_ID, got {name}={target}")
        _check_engine(self.engine)
        _check_http(self.http)
        if self.reasoning_format not in REASONING_FORMATS:
            raise ConfigError("--reasoning-format", "takes reasoning_content or none")
        unknown = self.drop_params - DROPPABLE
        if unknown:
            raise ConfigError(
                "--drop-params",
                f"{', '.join(sorted(unknown))} cannot be dropped; these can: {', '.join(sorted(DROPPABLE))}",
            )
        if self.default_temperature is not None and not 0 <= self.default_temperature <= 2:
            raise ConfigError("--temperature", "takes 0 to 2, as a request's temperature")
        if self.default_top_p is not None and not 0 <= self.default_top_p <= 1:
            raise ConfigError("--top-p", "takes 0 to 1, as a request's top_p")
        if not (self.limits == "memory" or self.limits.startswith(LIMIT_SCHEMES[1:])):
            raise ConfigError("--limits", f"unsupported --limits {self.limits!r}: use memory or redis://HOST:PORT/DB")
        if self.store is not None:
            scheme, sep, _ = self.store.partition("://")
            if not sep or scheme.split("+", 1)[0] not in STORE_SCHEMES:
                raise ConfigError("--store", f"not a database URL: {self.store!r} (use sqlite:///PATH or postgresql://...)")
        for name, path in self.audio.voices:
            if not name or not path:
                raise ConfigError("--voice", f"takes NAME=PATH.onnx, got {name}={path}")
        _check_ray(self.ray, self.models)
        _check_web_search(self.web_search)

    @property
    def needs_stored_keys(self) -> bool:
        """Beyond loopback without --api-key or --no-auth, the store must hold keys (checked
        when the server starts, as it needs the store: ``chatport.server.serve``)."""
        return not (self.http.loopback or self.auth.api_keys or self.auth.no_auth)


def exposed_without_keys(host: str) -> ConfigError:
    return ConfigError(
        "--host",
        f"{host} is reachable from other machines and no API key is configured: pass --api-key, create one with "
        "`chatport keys create --project NAME`, or pass --no-auth to serve without keys.",
    )


def _check_web_search(search: WebSearchConfig) -> None:
    from chatport.service.search.backends import SCHEMES

    if search.url is not None and not search.url.startswith(SCHEMES):
        raise ConfigError(
            "--web-search",
            f"unknown search engine {search.url!r}: use searxng+http(s)://HOST[:PORT][/PATH], brave:, tavily: or file:PATH",
        )
    if search.queries not in WEB_SEARCH_QUERIES:
        raise ConfigError("--web-search-queries", f"takes {' or '.join(WEB_SEARCH_QUERIES)}, not {search.queries!r}")
    if search.timeout <= 0:
        raise ConfigError("--web-search-timeout", f"takes a positive number, not {search.timeout}")


def _check_models(models: tuple[ModelSpec, ...]) -> None:
    ids: set[str] = set()
    for spec in models:
        if not spec.source:
            raise ConfigError("--model", "takes a GGUF file or hf:OWNER/REPO:QUANT")
        if spec.id is not None:
            if not spec.id:
                raise ConfigError("--model-id", "an id cannot be empty")
            if spec.id in ids:
                raise ConfigError("--model-id", f"two models are called {spec.id!r}")
            ids.add(spec.id)


def _check_engine(engine: EngineConfig) -> None:
    positive = {
        "--ctx-size": engine.context_length,
        "--max-seqs": engine.max_seqs,
        "--queue-timeout": engine.queue_timeout,
    }
    for param, value in positive.items():
        if value <= 0:
            raise ConfigError(param, f"takes a positive number, not {value}")
    at_least_zero = {
        "--max-queue": engine.max_waiting,
        "--threads": engine.threads,
        "--cache-ram": engine.cache_ram_mb,
        "--cache-disk": engine.cache_disk_mb,
    }
    for param, value in at_least_zero.items():
        if value < 0:
            raise ConfigError(param, f"takes 0 or more, not {value}")


def _check_http(http: HttpConfig) -> None:
    if not 0 <= http.port <= 65535:
        raise ConfigError("--port", f"takes 0 to 65535, not {http.port}")
    positive = {
        "--max-body-mb": http.max_body_mb,
        "--header-timeout": http.header_timeout,
        "--body-timeout": http.body_timeout,
        "--max-connections": http.max_connections,
        "--max-connections-per-address": http.max_connections_per_address or 1,
    }
    for param, value in positive.items():
        if value <= 0:
            raise ConfigError(param, f"takes a positive number, not {value}")
    if http.drain_seconds < 0:
        raise ConfigError("--drain-seconds", f"takes 0 or more, not {http.drain_seconds}")
    for proxy in http.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError("--trusted-proxy", f"takes an address or a network, not {proxy!r}") from None


def _check_ray(ray: RayConfig, models: tuple[ModelSpec, ...]) -> None:
    from chatport.replicas.scale import Scale

    if not ray.enabled:
        for param, value in (("--replicas", ray.replicas), ("--autoscale", ray.autoscale), ("--ray-address", ray.address)):
            if value is not None:
                raise ConfigError(param, "takes effect with --ray only")
        return
    if any(spec.mmproj for spec in models):
        raise ConfigError("--mmproj", "image input is not served by Ray replicas yet")
    if ray.replicas is not None and ray.autoscale is not None:
        raise ConfigError("--autoscale", "give --replicas or --autoscale, not both")
    try:
        Scale.parse(ray.replicas, ray.autoscale)
    except ValueError as exc:
        raise ConfigError("--autoscale" if ray.autoscale else "--replicas", str(exc)) from None


def assign_projectors(argv: list[str], n_models: int, given: list[str]) -> list[str | None]:
    """Each model's --mmproj: a --mmproj belongs to the --model before it on the command
    line (as in llama.cpp's server); with no --model, to the default model. Without the
    command line to read (``argv`` empty), in order."""
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
            raise ConfigError("--mmproj", "a --mmproj belongs to the --model before it; give the --model first")
        if owner >= n_models:
            raise ConfigError("--mmproj", "more --mmproj than --model")
        if out[owner] is not None:
            raise ConfigError("--mmproj", "one --mmproj per --model")
        out[owner] = path
    return out


def model_specs(
    sources: list[str], ids: list[str], projectors: list[str | None], templates: list[str], default: ModelSpec
) -> tuple[ModelSpec, ...]:
    """The --model options, each with the --model-id, --mmproj and --chat-template matched to
    it (ids and templates in order, projectors as ``assign_projectors`` gave them). With
    no --model, ``default`` is served (and takes a --mmproj or --chat-template given)."""
    if not sources:
        if ids:
            raise ConfigError("--model-id", "names a --model; give the --model too")
        sources, ids = [default.source], [default.id or ""]
    if len(ids) > len(sources):
        raise ConfigError("--model-id", "more --model-id than --model")
    if len(templates) > len(sources):
        raise ConfigError("--chat-template", "more --chat-template than --model")
    projectors = projectors or [None] * len(sources)
    return tuple(
        ModelSpec(
            source,
            ids[i] if i < len(ids) else None,
            projectors[i] if i < len(projectors) else None,
            templates[i] if i < len(templates) else None,
        )
        for i, source in enumerate(sources)
    )


def pairs(values: list[str], param: str, shape: str) -> tuple[tuple[str, str], ...]:
    """``NAME=VALUE`` options (--alias, --voice) as pairs."""
    out = []
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise ConfigError(param, f"takes {shape}, got {value!r}")
        out.append((name, target))
    return tuple(out)
