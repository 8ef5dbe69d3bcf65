"""Stored chat completions, always seen through one project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatport.store.database import Database
from chatport.store.schema import CompletionMessage, CompletionMetadata, StoredCompletion

Order = Literal["asc", "desc"]


class UnknownCursor(Exception):
    """An ``after`` cursor that names nothing in this listing."""


@dataclass
class Page:
    items: list[dict[str, Any]]
    has_more: bool


class CompletionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(
        self, project: str, completion: dict[str, Any], metadata: dict[str, str], messages: list[dict[str, Any]]
    ) -> None:
        async with self.db.transaction() as session:
            row = StoredCompletion(
                id=completion["id"],
                project_id=project,
                model=completion["model"],
                created=completion["created"],
                body=completion,
                meta=metadata,
            )
            session.add(row)
            await session.flush()  # assigns seq
            session.add_all(
                CompletionMetadata(completion_seq=row.seq, key=k, value=v, project_id=project) for k, v in metadata.items()
            )
            session.add_all(CompletionMessage(completion_seq=row.seq, position=i, body=m) for i, m in enumerate(messages))

    async def get(self, project: str, completion_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as session:
            row = await self._row(session, project, completion_id)
            return _public(row) if row else None

    async def page_of(
        self,
        project: str,
        *,
        model: str | None,
        metadata: dict[str, str],
        after: str | None,
        limit: int,
        order: Order,
    ) -> Page:
        """One page of the project's stored completions, filtered and in order."""
        async with self.db.transaction() as session:
            query = select(StoredCompletion).where(StoredCompletion.project_id == project)
            if model is not None:
                query = query.where(StoredCompletion.model == model)
            for key, value in metadata.items():
                query = query.where(
                    exists().where(
                        and_(
                            CompletionMetadata.project_id == project,
                            CompletionMetadata.key == key,
                            CompletionMetadata.value == value,
                            CompletionMetadata.completion_seq == StoredCompletion.seq,
                        )
                    )
                )
            if after is not None:
                cursor = await session.scalar(
                    select(StoredCompletion.seq).where(StoredCompletion.project_id == project, StoredCompletion.id == after)
                )
                if cursor is None:
                    raise UnknownCursor(after)
                query = query.where(StoredCompletion.seq > cursor if order == "asc" else StoredCompletion.seq < cursor)
            ordering = StoredCompletion.seq.asc() if order == "asc" else StoredCompletion.seq.desc()
            rows = (await session.scalars(query.order_by(ordering).limit(limit + 1))).all()
            return Page([_public(r) for r in rows[:limit]], len(rows) > limit)

    async def update_metadata(self, project: str, completion_id: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        async with self.db.transaction() as session:
            row = await self._row(session, project, completion_id)
            if row is None:
                return None
            await session.execute(update(StoredCompletion).where(StoredCompletion.seq == row.seq).values(meta=metadata))
            await session.execute(delete(CompletionMetadata).where(CompletionMetadata.completion_seq == row.seq))
            session.add_all(
                CompletionMetadata(completion_seq=row.seq, key=k, value=v, project_id=project) for k, v in metadata.items()
            )
            row.meta = metadata
            return _public(row)

    async def delete(self, project: str, completion_id: str) -> bool:
        async with self.db.transaction() as session:
            row = await self._row(session, project, completion_id)
            if row is None:
                return False
            await session.execute(delete(CompletionMessage).where(CompletionMessage.completion_seq == row.seq))
            await session.execute(delete(CompletionMetadata).where(CompletionMetadata.completion_seq == row.seq))
            await session.execute(delete(StoredCompletion).where(StoredCompletion.seq == row.seq))
            return True

    async def messages(self, project: str, completion_id: str, *, after: int | None, limit: int, order: Order) -> Page | None:
        async with self.db.transaction() as session:
            row = await self._row(session, project, completion_id)
            if row is None:
                return None
            query = select(CompletionMessage).where(CompletionMessage.completion_seq == row.seq)
            if after is not None:
                query = query.where(CompletionMessage.position > after if order == "asc" else CompletionMessage.position < after)
            ordering = CompletionMessage.position.asc() if order == "asc" else CompletionMessage.position.desc()
            rows = (await session.scalars(query.order_by(ordering).limit(limit + 1))).all()
            items = [{"id": f"{completion_id}-{m.position}", **m.body} for m in rows[:limit]]
            return Page(items, len(rows) > limit)

    @staticmethod
    async def _row(session: AsyncSession, project: str, completion_id: str) -> StoredCompletion | None:
        row: StoredCompletion | None = await session.scalar(
            select(StoredCompletion).where(StoredCompletion.project_id == project, StoredCompletion.id == completion_id)
        )
        return row


def _public(row: StoredCompletion) -> dict[str, Any]:
    return {**row.body, "metadata": dict(row.meta)}
