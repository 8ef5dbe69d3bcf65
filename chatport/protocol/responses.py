"""Response and chunk shapes, exactly as the spec lays them out.

Plain dicts (serialized by orjson) rather than models: streaming builds one per token
and the shapes are fixed, including fields that must be present as null.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from typing import Any

_ID_ALPHABET = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 29) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def usage(
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    *,
    accepted_prediction: int = 0,
    rejected_prediction: int = 0,
    reasoning: int = 0,
    audio_prompt: int = 0,
    audio_completion: int = 0,
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": audio_prompt},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": audio_completion,
            "accepted_prediction_tokens": accepted_prediction,
            "rejected_prediction_tokens": rejected_prediction,
        },
    }


def token_logprob(entry: Any) -> dict[str, Any]:
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": entry.bytes,
        "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in entry.top],
    }


def choice_logprobs(entries: Iterable[Any] | None) -> dict[str, Any] | None:
    if entries is None:
        return None
    return {"content": [token_logprob(e) for e in entries], "refusal": None}


def assistant_message(content: str | None) -> dict[str, Any]:
    return {"role": "assistant", "content": content, "refusal": None, "annotations": []}


def completion(
    *,
    id: str,
    created: int,
    model: str,
    choices: list[dict[str, Any]],
    usage: dict[str, Any],
    service_tier: str,
    system_fingerprint: str,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage,
        "service_tier": service_tier,
        "system_fingerprint": system_fingerprint,
    }


def model_object(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def model_list(models: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": list(models)}


# --- chat.completion.chunk ---------------------------------------------------------------


def chunk_base(*, id: str, created: int, model: str, service_tier: str, system_fingerprint: str) -> dict[str, Any]:
    """The fields every chunk of one stream repeats."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": service_tier,
        "system_fingerprint": system_fingerprint,
    }


def chunk(
    base: dict[str, Any],
    index: int,
    delta: dict[str, Any],
    *,
    logprobs: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    with_usage: bool = False,
    obfuscation: str | None = None,
) -> dict[str, Any]:
    """One choice's delta. ``with_usage``: the stream ends with a usage chunk, so every
    other chunk says ``usage: null``; ``obfuscation``: the padding OpenAI adds by default."""
    out = {**base, "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}
    if with_usage:
        out["usage"] = None
    if obfuscation is not None:
        out["obfuscation"] = obfuscation
    return out


def role_delta(call: dict[str, Any] | None = None, *, content: str | None = "") -> dict[str, Any]:
    """A choice's first delta: the role, with empty content before text, or merged into the
    first call delta (content null)."""
    if call is not None:
        return {"role": "assistant", "content": None, "refusal": None, **call}
    return {"role": "assistant", "content": content, "refusal": None}


def usage_chunk(base: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """The stream's last chunk when ``stream_options.include_usage`` asked for it."""
    return {**base, "choices": [], "usage": usage}
