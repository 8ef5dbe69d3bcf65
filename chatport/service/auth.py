"""API keys and the project each one belongs to.

Keys come from the command line / environment (project "default") and from the key
store (`chatport keys create --project NAME`). With no key configured anywhere, every
request belongs to the default project and no key is needed.
"""

from __future__ import annotations

import hmac
import time

from chatport.protocol.errors import authentication_error
from chatport.store.database import StoreUnavailable
from chatport.store.keys import DEFAULT_PROJECT, KeyStore

# Stored keys are re-checked this often, so a revoked key stops working within seconds.
_CACHE_SECONDS = 5.0


class Authenticator:
    def __init__(self, static_keys: list[str], keys: KeyStore | None = None) -> None:
        self._static = [k.encode() for k in static_keys if k]
        self._keys = keys
        self._projects: dict[str, tuple[str | None, float]] = {}
        self._any_stored: tuple[bool, float] | None = None

    async def project_for(self, token: str | None) -> str:
        """The project of a request that presented ``token`` (None: no key at all)."""
        if token and any(hmac.compare_digest(token.encode(), k) for k in self._static):
            return DEFAULT_PROJECT
        if not self._static and not await self._stored_keys_exist():
            return DEFAULT_PROJECT
        if not token:
            raise authentication_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        project = await self._stored_project(token)
        if project is None:
            raise authentication_error(f"Incorrect API key provided: {_redact(token)}.", code="invalid_api_key")
        return project

    async def _stored_keys_exist(self) -> bool:
        if self._keys is None:
            return False
        now = time.monotonic()
        if self._any_stored is None or now - self._any_stored[1] > _CACHE_SECONDS:
            try:
                self._any_stored = (await self._keys.any_live(), now)
            except StoreUnavailable:
                # The last answer stands while the database is away (none yet: no keys).
                return self._any_stored[0] if self._any_stored else False
        return self._any_stored[0]

    async def _stored_project(self, token: str) -> str | None:
        if self._keys is None:
            return None
        now = time.monotonic()
        cached = self._projects.get(token)
        if cached and now - cached[1] <= _CACHE_SECONDS:
            return cached[0]
        try:
            project = await self._keys.project_of(token)
        except StoreUnavailable:
            return cached[0] if cached else None
        if len(self._projects) > 10_000:
            self._projects.clear()
        self._projects[token] = (project, now)
        return project


def _redact(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)
