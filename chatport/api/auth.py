"""Bearer API keys: when any are configured, every /v1 route needs one of them."""

from __future__ import annotations

import hmac

from fastapi import Request

from chatport.protocol.errors import AuthenticationError


class KeyChecker:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def __call__(self, request: Request) -> None:
        if not self._keys:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        given = token.strip().encode()
        if not any(hmac.compare_digest(given, key) for key in self._keys):
            raise AuthenticationError(f"Incorrect API key provided: {_redact(token.strip())}.", code="invalid_api_key")


def _redact(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)
