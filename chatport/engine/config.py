"""An engine's settings: plain data, read by the command line without loading the engine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    context_length: int = 4096  # KV cells per sequence slot (--ctx-size)
    max_seqs: int = 16
    batch_tokens: int = 512  # tokens per decode step (decode tokens + prefill chunks)
    max_waiting: int = 256
    queue_timeout: float = 60.0  # seconds a request may wait for a slot
    threads: int = 0  # 0: every core
    repack: bool = False  # repacked weights for the CPU's wide kernels (see LlamaModel)
    cache_ram_mb: int = 1024  # prompt prefixes kept in memory after their slot is taken (0: none)
    cache_disk_mb: int = 4096  # prompt_cache_retention "24h" prefixes on disk (0: none)
    cache_dir: str | None = None  # where those go (default: the data directory)
    speculation: bool = False  # drafts from each request's context, where they pay (--speculation auto)
    draft_history_tokens: int = 262_144  # earlier answers kept for drafts, all projects together (0: none)
