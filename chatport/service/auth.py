"""API keys and the project each one belongs to.

Keys come from the command line / environment (project "default") and from the key
store (`chatport keys create --project NAME`). Authentication fails closed: a key is
accepted only once it has been checked, and when keys cannot be checked (the store is
down) requests are refused with 503 and Retry-After, never let through.

Whether keys are required is decided at start-up and stated in the log: they are when
``--api-key`` gives some, when the store holds some, or when the server listens beyond
loopback; they are not with ``--no-auth``, or with no key configured anywhere on loopback.
It never relaxes while the server runs: a key created later turns authentication on
within seconds, and revoking every key leaves it on (401 for everyone until a restart).
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from enum import Enum

from chatport.protocol.errors import APIError, authentication_error, overloaded_error
from chatport.protocol.limits import NO_LIMITS, RateLimits
from chatport.store.database import StoreUnavailable
from chatport.store.keys import DEFAULT_PROJECT, KeyStore

log = logging.getLogger("chatport.auth")

# Stored keys are re-checked this often, so a revoked key stops working within seconds.
_CACHE_SECONDS = 5.0
_RETRY_SECONDS = 5


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: its project, and that project's rate limits."""

    project: str
    limits: RateLimits = NO_LIMITS


DEFAULT = Principal(DEFAULT_PROJECT)


class AuthMode(Enum):
    OFF = "off"  # --no-auth: no key is asked for
    KEYS = "keys"  # keys are checked (and none may exist yet)


class Authenticator:
    def __init__(
        self, static_keys: list[str], keys: KeyStore | None = None, *, mode: AuthMode = AuthMode.KEYS, require: bool = False
    ) -> None:
        """``require``: keys are required even if none exists yet (the server listens beyond loopback)."""
        self._static = [k.encode() for k in static_keys if k]
        self._keys = keys
        self.mode = mode
        self._projects: dict[str, tuple[Principal | None, float]] = {}
        self._any_stored: tuple[bool, float] | None = None
        # Once true, true until the process ends: no revocation switches authentication off.
        self._required = mode is AuthMode.KEYS and (bool(self._static) or require)

    @property
    def keys_required(self) -> bool:
        """Whether requests must carry a key (as far as is known: a store that cannot be
        read yet may still turn this on)."""
        return self._required

    async def decide(self) -> str:
        """At start-up: whether keys are required (from now on, if they are), and how
        requests are authenticated, for the log."""
        if self.mode is AuthMode.OFF:
            return "authentication is off (--no-auth): every request belongs to project 'default'"
        if self._static:
            return f"API keys required ({len(self._static)} from --api-key/CHATPORT_API_KEYS, and the stored keys)"
        try:
            stored = await self._keys_required()
        except APIError:
            return "API keys required, but the key store is unavailable: /v1 requests get 503 until it is back"
        if stored:
            return "API keys required (stored keys, or the server listens beyond loopback)"
        return (
            "no API keys configured: requests are not authenticated and belong to project 'default' "
            "(create a key with `chatport keys create`, or pass --no-auth to make this explicit)"
        )

    async def principal_for(self, token: str | None) -> Principal:
        """The project of a request that presented ``token`` (None: no key at all)."""
        if self.mode is AuthMode.OFF:
            return DEFAULT
        if token and any(hmac.compare_digest(token.encode(), k) for k in self._static):
            return DEFAULT
        if not await self._keys_required():
            return DEFAULT
        if not token:
            raise authentication_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        principal = await self._stored_principal(token)
        if principal is None:
            raise authentication_error(f"Incorrect API key provided: {_redact(token)}.", code="invalid_api_key")
        return principal

    async def _keys_required(self) -> bool:
        if not self._required and await self._stored_keys_exist():
            self._required = True
            log.warning("auth: a stored key exists: API keys are required from now on")
        return self._required

    async def _stored_keys_exist(self) -> bool:
        if self._keys is None:
            return False
        now = time.monotonic()
        if self._any_stored is None or now - self._any_stored[1] > _CACHE_SECONDS:
            try:
                self._any_stored = (await self._keys.any_live(), now)
            except StoreUnavailable:
                raise _cannot_check() from None
        return self._any_stored[0]

    async def _stored_principal(self, token: str) -> Principal | None:
        if self._keys is None:
            return None
        now = time.monotonic()
        cached = self._projects.get(token)
        if cached and now - cached[1] <= _CACHE_SECONDS:
            return cached[0]
        try:
            found = await self._keys.project_of(token)
        except StoreUnavailable:
            raise _cannot_check() from None
        principal = Principal(*found) if found is not None else None
        if len(self._projects) > 10_000:
            self._projects.clear()
        self._projects[token] = (principal, now)
        return principal


def _cannot_check() -> APIError:
    return overloaded_error(
        "API keys cannot be checked right now (the key store is unavailable). Please retry after a brief wait.",
        code="auth_unavailable",
        retry_after=_RETRY_SECONDS,
    )


def _redact(key: str) -> str:
    return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)
