"""Projects and their API keys. Keys are shown once and stored only as SHA-256 hashes
(they are long random tokens, so a fast hash is enough)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from chatport.protocol.limits import RateLimits
from chatport.store.database import Database
from chatport.store.schema import ApiKey, Project

DEFAULT_PROJECT = "default"
KEY_PREFIX = "sk-cp-"
# Stored completions keep their project's name in a String(64) column.
MAX_PROJECT_NAME = 64


def check_project_name(name: str) -> None:
    """Raises ValueError for a name the store cannot keep."""
    if not 1 <= len(name) <= MAX_PROJECT_NAME:
        raise ValueError(f"a project name has 1 to {MAX_PROJECT_NAME} characters, got {len(name)}")
    if not name.isprintable() or name != name.strip():
        raise ValueError("a project name has no control characters and no leading or trailing spaces")


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

    async def create(self, project_name: str, limits: RateLimits | None = None) -> tuple[str, KeyInfo]:
        """A new key for the project (created if new); ``limits``, when given, become the
        project's rate limits."""
        check_project_name(project_name)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = int(time.time())
        async with self.db.transaction() as session:
            project = await session.scalar(select(Project).where(Project.name == project_name))
            if project is None:
                project = Project(id="proj_" + secrets.token_hex(12), name=project_name, created_at=now)
                session.add(project)
                await session.flush()  # the key row refers to it
            if limits is not None:
                project.rpm, project.tpm, project.max_concurrent = limits.rpm, limits.tpm, limits.max_concurrent
            row = ApiKey(
                id="key_" + secrets.token_hex(12),
                project_id=project.id,
                key_hash=hash_key(key),
                redacted=key[:9] + "..." + key[-4:],
                created_at=now,
            )
            session.add(row)
        return key, KeyInfo(row.id, project_name, row.redacted, now, None)

    async def all_keys(self) -> list[KeyInfo]:
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

    async def project_of(self, key: str) -> tuple[str, RateLimits] | None:
        """The project a live key belongs to, with its rate limits, or None."""
        async with self.db.lookup() as session:
            row = (
                await session.execute(
                    select(Project.name, Project.rpm, Project.tpm, Project.max_concurrent)
                    .join(ApiKey, ApiKey.project_id == Project.id)
                    .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
                )
            ).first()
        if row is None:
            return None
        return row.name, RateLimits(row.rpm, row.tpm, row.max_concurrent)

    async def any_live(self) -> bool:
        async with self.db.lookup() as session:
            return bool(await session.scalar(select(func.count()).where(ApiKey.revoked_at.is_(None))))
