"""Projects and their API keys. Keys are shown once and stored only as SHA-256 hashes
(they are long random tokens, so a fast hash is enough)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from chatport.store.database import Database
from chatport.store.schema import ApiKey, Project

DEFAULT_PROJECT = "default"
KEY_PREFIX = "sk-cp-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class KeyInfo:
    id: str
    project: str
    redacted: str
    created_at: int
    revoked_at: int | None


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, project_name: str) -> tuple[str, KeyInfo]:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = int(time.time())
        async with self.db.transaction() as session:
            project = await session.scalar(select(Project).where(Project.name == project_name))
            if project is None:
                project = Project(id="proj_" + secrets.token_hex(12), name=project_name, created_at=now)
                session.add(project)
                await session.flush()  # the key row refers to it
            row = ApiKey(
                id="key_" + secrets.token_hex(12),
                project_id=project.id,
                key_hash=hash_key(key),
                redacted=key[:9] + "..." + key[-4:],
                created_at=now,
            )
            session.add(row)
        return key, KeyInfo(row.id, project_name, row.redacted, now, None)

    async def list(self) -> list[KeyInfo]:
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(ApiKey, Project.name).join(Project, Project.id == ApiKey.project_id).order_by(ApiKey.created_at)
            )
            return [KeyInfo(k.id, name, k.redacted, k.created_at, k.revoked_at) for k, name in rows]

    async def revoke(self, key_id: str) -> bool:
        async with self.db.transaction() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = int(time.time())
            return True

    async def project_of(self, key: str) -> str | None:
        """The project a live key belongs to, or None."""
        async with self.db.transaction() as session:
            return await session.scalar(
                select(Project.name)
                .join(ApiKey, ApiKey.project_id == Project.id)
                .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            )

    async def any_live(self) -> bool:
        async with self.db.transaction() as session:
            return bool(await session.scalar(select(func.count()).where(ApiKey.revoked_at.is_(None))))
