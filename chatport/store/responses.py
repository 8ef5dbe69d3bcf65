"""Stored responses (the Responses API), always seen through one project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatport.store.completions import Order, Page, UnknownCursor
from chatport.store.database import Database
from chatport.store.schema import ResponseInputItem, StoredResponse


@dataclass(frozen=True)
class Found:
    body: dict[str, Any]  # the response object
    conversation: list[dict[str, Any]]  # chat messages, its output last


class ResponseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(
        self, project: str, response: dict[str, Any], conversation: list[dict[str, Any]], items: list[dict[str, Any]]
    ) -> None:
        """``items``: the request's input items, each with its ``id``."""
        async with self.db.transaction() as session:
            row = StoredResponse(
                id=response["id"],
                project_id=project,
                created=int(response["created_at"]),
                body=response,
                conversation=conversation,
            )
            session.add(row)
            await session.flush()  # assigns seq
            session.add_all(
                ResponseInputItem(response_seq=row.seq, position=i, item_id=item["id"], body=item) for i, item in enumerate(items)
            )

    async def update(self, project: str, response: dict[str, Any], conversation: list[dict[str, Any]]) -> bool:
        """A stored response's new state (a background response as it runs); False when it
        is gone (deleted meanwhile)."""
        async with self.db.transaction() as session:
            row = await _row(session, project, response["id"])
            if row is None:
                return False
            await session.execute(
                update(StoredResponse).where(StoredResponse.seq == row.seq).values(body=response, conversation=conversation)
            )
            return True

    async def get(self, project: str, response_id: str) -> Found | None:
        async with self.db.lookup() as session:
            row = await _row(session, project, response_id)
            return Found(row.body, list(row.conversation)) if row else None

    async def delete(self, project: str, response_id: str) -> bool:
        async with self.db.transaction() as session:
            row = await _row(session, project, response_id)
            if row is None:
                return False
            await session.execute(delete(ResponseInputItem).where(ResponseInputItem.response_seq == row.seq))
            await session.execute(delete(StoredResponse).where(StoredResponse.seq == row.seq))
            return True

    async def input_items(self, project: str, response_id: str, *, after: str | None, limit: int, order: Order) -> Page | None:
        """One page of a response's input items (None: no such response); raises
        ``UnknownCursor`` when ``after`` is not one of its items."""
        async with self.db.lookup() as session:
            row = await _row(session, project, response_id)
            if row is None:
                return None
            query = select(ResponseInputItem).where(ResponseInputItem.response_seq == row.seq)
            if after is not None:
                position = await session.scalar(
                    select(ResponseInputItem.position).where(
                        ResponseInputItem.response_seq == row.seq, ResponseInputItem.item_id == after
                    )
                )
                if position is None:
                    raise UnknownCursor(after)
                query = query.where(
                    ResponseInputItem.position > position if order == "asc" else ResponseInputItem.position < position
                )
            ordering = ResponseInputItem.position.asc() if order == "asc" else ResponseInputItem.position.desc()
            rows = (await session.scalars(query.order_by(ordering).limit(limit + 1))).all()
            return Page([dict(r.body) for r in rows[:limit]], len(rows) > limit)


async def _row(session: AsyncSession, project: str, response_id: str) -> StoredResponse | None:
    row: StoredResponse | None = await session.scalar(
        select(StoredResponse).where(StoredResponse.project_id == project, StoredResponse.id == response_id)
    )
    return row
