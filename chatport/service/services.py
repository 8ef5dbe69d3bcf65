"""Everything the API layer calls, built in one place (``chatport.server``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatport.service.auth import Authenticator
from chatport.service.chat import ChatService
from chatport.service.models import ModelRegistry
from chatport.service.stored import StoredCompletions
from chatport.store.database import Database, StoreUnavailable, describe

log = logging.getLogger("chatport.service")


@dataclass
class Services:
    registry: ModelRegistry
    chat: ChatService
    stored: StoredCompletions | None
    auth: Authenticator
    database: Database | None = None

    async def start(self) -> None:
        if self.database is not None:
            try:
                await self.database.ensure_ready()
            except StoreUnavailable as exc:
                # Serving goes on; stored-completion routes answer 503 until it is back.
                log.warning("completion store %s is unavailable: %s", describe(self.database.url), exc)
        log.warning("auth: %s", await self.auth.describe())

    async def stop(self) -> None:
        self.chat.prompt_pool.shutdown(wait=False, cancel_futures=True)
        self.registry.close()
        if self.database is not None:
            await self.database.close()
