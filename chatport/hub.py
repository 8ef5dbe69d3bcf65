"""Models from the Hugging Face Hub, named as ``hf:OWNER/REPO:QUANT`` (the GGUF of that
quantization in the repo) or ``hf:OWNER/REPO/PATH.gguf`` (that file), as llama-server's
``-hf`` names them.

Files are downloaded with huggingface_hub into its standard cache (``HF_HOME``,
``HF_HUB_CACHE``), which resumes interrupted downloads, shows progress, sends ``HF_TOKEN``
for gated repos and lets cached models serve with no network (``HF_HUB_OFFLINE=1``, or
simply no answer from the Hub). A split GGUF (``-00001-of-0000N``) is fetched whole; a
repo's vision projector (a GGUF with ``mmproj`` in its name) comes along.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from huggingface_hub import HFCacheInfo

PREFIX = "hf:"
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


class HubError(Exception):
    """A model cannot be had from the Hub; the message says why and what to do."""


@dataclass(frozen=True)
class HubRef:
    repo: str  # OWNER/REPO
    quant: str | None = None  # Q4_K_M
    filename: str | None = None  # a path inside the repo
    revision: str = "main"

    def __str__(self) -> str:
        return PREFIX + self.repo + (f":{self.quant}" if self.quant else f"/{self.filename}" if self.filename else "")


@dataclass
class HubModel:
    ref: HubRef
    path: str  # the GGUF to load (a split model's first part)
    files: list[str] = field(default_factory=list)  # every file fetched for it
    mmproj: str | None = None


def is_hub(spec: str) -> bool:
    return spec.startswith(PREFIX)


def parse(spec: str) -> HubRef:
    """``hf:OWNER/REPO:QUANT``, ``hf:OWNER/REPO/FILE.gguf`` or ``hf:OWNER/REPO`` (the repo's
    only GGUF, or its Q4_K_M when there are several, as llama-server picks)."""
    rest, _, quant = spec.removeprefix(PREFIX).partition(":")
    parts = rest.split("/")
    revision = "main"
    if len(parts) >= 2 and "@" in parts[1]:  # OWNER/REPO@REVISION
        parts[1], revision = parts[1].split("@", 1)
    if len(parts) < 2 or not all(parts[:2]) or not revision:
        raise HubError(f"{spec!r}: name a model as hf:OWNER/REPO:QUANT or hf:OWNER/REPO/FILE.gguf")
    repo = "/".join(parts[:2])
    filename = "/".join(parts[2:]) or None
    if filename and quant:
        raise HubError(f"{spec!r}: give a file or a quantization, not both")
    if filename and not filename.lower().endswith(".gguf"):
        raise HubError(f"{spec!r}: {filename} is not a .gguf file")
    return HubRef(repo, quant or None, filename, revision)


def fetch(ref: HubRef) -> HubModel:
    """The model's files, from the cache or downloaded into it."""
    files = _remote_files(ref)
    offline = files is None
    if files is None:
        files = _cached_files(ref.repo)
        if not files:
            raise HubError(
                f"cannot reach the Hugging Face Hub ({_endpoint()}) and nothing of {ref.repo} is cached: "
                "connect to the network once, or set HF_ENDPOINT to a reachable mirror"
            )
    chosen = _choose(ref, files)
    mmproj = _projector(files)
    wanted = chosen + ([mmproj] if mmproj else [])
    local = [_download(ref, name, offline) for name in wanted]
    return HubModel(ref, local[0], local, local[-1] if mmproj else None)


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _remote_files(ref: HubRef) -> list[str] | None:
    """The repo's files, or None when the Hub cannot be reached."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if not _reachable(_endpoint()):
        return None
    try:
        tree = HfApi().list_repo_tree(ref.repo, recursive=True, revision=ref.revision)
        return [entry.path for entry in tree if hasattr(entry, "size")]
    except GatedRepoError:
        raise HubError(f"{ref.repo} is gated: accept its terms on the Hub, then set HF_TOKEN to a token of yours") from None
    except RepositoryNotFoundError:
        raise HubError(f"no repository {ref.repo} on the Hub (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise HubError(f"{ref.repo} has no revision {ref.revision!r}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status is not None and status < 500 and status != 429:
            raise HubError(f"the Hub refused to list {ref.repo}: {exc}") from None
        return None
    except (OfflineModeIsEnabled, OSError):
        return None
    except Exception as exc:  # the HTTP client's connection errors
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            return None
        raise


def _reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Whether the Hub's address takes a connection. huggingface_hub retries a refused
    connection for about 25 seconds; a user without network should hear at once that the
    cache is used."""
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _scan() -> HFCacheInfo | None:
    """The Hugging Face cache, or None when there is none yet."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        return scan_cache_dir()
    except CacheNotFound:
        return None


def _cached_files(repo: str) -> list[str]:
    cache = _scan()
    if cache is None:
        return []
    names: set[str] = set()
    for cached in cache.repos:
        if cached.repo_id == repo and cached.repo_type == "model":
            for revision in cached.revisions:
                names.update(str(f.file_path.relative_to(revision.snapshot_path)) for f in revision.files)
    return sorted(names)


def _ggufs(files: list[str]) -> list[str]:
    return sorted(f for f in files if f.lower().endswith(".gguf") and "mmproj" not in Path(f).name.lower())


def _projector(files: list[str]) -> str | None:
    projectors = sorted(f for f in files if f.lower().endswith(".gguf") and "mmproj" in Path(f).name.lower())
    # Several precisions are common (mmproj-F16, mmproj-F32): the smaller one will do.
    for preferred in ("f16", "bf16", "q8_0"):
        for name in projectors:
            if preferred in Path(name).name.lower():
                return name
    return projectors[0] if projectors else None


def _quant_of(name: str) -> str:
    """``Qwen2.5-0.5B-Instruct-Q4_K_M-00001-of-00002.gguf`` -> ``Q4_K_M``."""
    stem = _SPLIT.sub(".gguf", Path(name).name)[: -len(".gguf")]
    return re.split(r"[-.]", stem)[-1]


def _choose(ref: HubRef, files: list[str]) -> list[str]:
    """The file(s) of the model: one GGUF, or every part of a split one."""
    ggufs = _ggufs(files)
    if not ggufs:
        raise HubError(f"{ref.repo} holds no GGUF file")
    if ref.filename:
        if ref.filename not in files:
            raise HubError(f"{ref.repo} has no file {ref.filename}; its GGUF files: {', '.join(ggufs)}")
        first = ref.filename
    else:
        quants = {_quant_of(name).upper(): name for name in reversed(ggufs)}
        wanted = (ref.quant or ("Q4_K_M" if len(quants) > 1 else next(iter(quants)))).upper()
        if wanted not in quants:
            raise HubError(
                f"{ref.repo} has no GGUF for {ref.quant or wanted}; it has: {', '.join(sorted(quants))}"
                + ("" if ref.quant else f" (name one: hf:{ref.repo}:QUANT)")
            )
        first = quants[wanted]
    split = _SPLIT.search(first)
    if split is None:
        return [first]
    prefix = first[: split.start()]
    parts = sorted(f for f in files if f.startswith(prefix) and _SPLIT.search(f))
    if len(parts) != int(split.group(2)):
        raise HubError(f"{first} is part of a {int(split.group(2))}-part model, but {len(parts)} parts were found")
    return parts


def _download(ref: HubRef, filename: str, offline: bool) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return str(hf_hub_download(ref.repo, filename, revision=ref.revision, local_files_only=offline))
    except LocalEntryNotFoundError:
        raise HubError(
            f"{ref.repo}/{filename} is not cached and the Hub ({_endpoint()}) cannot be reached to download it"
        ) from None


@dataclass(frozen=True)
class CachedModel:
    repo: str
    files: list[tuple[str, int]]  # GGUF files and their sizes in bytes

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)


def cached_models() -> list[CachedModel]:
    """GGUF models in the Hugging Face cache."""
    cache = _scan()
    if cache is None:
        return []
    out = []
    for cached in sorted(cache.repos, key=lambda r: r.repo_id):
        if cached.repo_type != "model":
            continue
        files = {
            str(f.file_path.relative_to(revision.snapshot_path)): f.size_on_disk
            for revision in cached.revisions
            for f in revision.files
            if f.file_name.lower().endswith(".gguf")
        }
        if files:
            out.append(CachedModel(cached.repo_id, sorted(files.items())))
    return out


def remove(repo: str) -> int:
    """Deletes a repo's cached files; returns the bytes freed (0: nothing was cached)."""
    cache = _scan()
    if cache is None:
        return 0
    hashes = [rev.commit_hash for r in cache.repos if r.repo_id == repo for rev in r.revisions]
    if not hashes:
        return 0
    strategy = cache.delete_revisions(*hashes)
    freed = strategy.expected_freed_size
    strategy.execute()
    return int(freed)
