"""Conversations (the Conversations API) and their items, always seen through one project."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatport.store.completions import Order, Page, UnknownCursor
from chatport.store.database import Database
from chatport.store.schema import Conversation, ConversationItem


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, project: str, conversation_id: str, created_at: int, metadata: dict[str, str], items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        async with self.db.transaction() as session:
            row = Conversation(id=conversation_id, project_id=project, created_at=created_at, meta=metadata)
            session.add(row)
            await session.flush()  # assigns seq
            _add(session, row.seq, 0, items)
            return _public(row)

    async def get(self, project: str, conversation_id: str) -> dict[str, Any] | None:
        async with self.db.lookup() as session:
            row = await _row(session, project, conversation_id)
            return _public(row) if row else None

    async def update_metadata(self, project: str, conversation_id: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        async with self.db.transaction() as session:
            row = await _row(session, project, conversation_id)
            if row is None:
                return None
            await session.execute(update(Conversation).where(Conversation.seq == row.seq).values(meta=metadata))
            row.meta = metadata
            return _public(row)

    async def delete(self, project: str, conversation_id: str) -> bool:
        async with self.db.transaction() as session:
            row = await _row(session, project, conversation_id)
            if row is None:
                return False
            await session.execute(delete(ConversationItem).where(ConversationItem.conversation_seq == row.seq))
            await session.execute(delete(Conversation).where(Conversation.seq == row.seq))
            return True

    async def add_items(self, project: str, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        """``items`` appended, each with its ``id``; False when there is no such conversation."""
        async with self.db.transaction() as session:
            row = await _row(session, project, conversation_id)
            if row is None:
                return False
            last = await session.scalar(
                select(func.max(ConversationItem.position)).where(ConversationItem.conversation_seq == row.seq)
            )
            _add(session, row.seq, 0 if last is None else last + 1, items)
            return True

    async def items(self, project: str, conversation_id: str) -> list[dict[str, Any]] | None:
        """Every item, oldest first (the history a response continues)."""
        async with self.db.lookup() as session:
            row = await _row(session, project, conversation_id)
            if row is None:
                return None
            query = select(ConversationItem).where(ConversationItem.conversation_seq == row.seq)
            return [dict(i.body) for i in (await session.scalars(query.order_by(ConversationItem.position))).all()]

    async def page_of(self, project: str, conversation_id: str, *, after: str | None, limit: int, order: Order) -> Page | None:
        """One page of the items (None: no such conversation); raises ``UnknownCursor``
        when ``after`` is not one of them."""
        async with self.db.lookup() as session:
            row = await _row(session, project, conversation_id)
            if row is None:
                return None
            query = select(ConversationItem).where(ConversationItem.conversation_seq == row.seq)
            if after is not None:
                position = await _position(session, row.seq, after)
                if position is None:
                    raise UnknownCursor(after)
                query = query.where(
                    ConversationItem.position > position if order == "asc" else ConversationItem.position < position
                )
            ordering = ConversationItem.position.asc() if order == "asc" else ConversationItem.position.desc()
            rows = (await session.scalars(query.order_by(ordering).limit(limit + 1))).all()
            return Page([dict(r.body) for r in rows[:limit]], len(rows) > limit)

    async def item(self, project: str, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        async with self.db.lookup() as session:
            row = await _row(session, project, conversation_id)
            if row is None:
                return None
            found = await session.scalar(
                select(ConversationItem).where(ConversationItem.conversation_seq == row.seq, ConversationItem.item_id == item_id)
            )
            return dict(found.body) if found else None

    async def delete_item(self, project: str, conversation_id: str, item_id: str) -> bool:
        async with self.db.transaction() as session:
            row = await _row(session, project, conversation_id)
            if row is None:
                return False
            deleted = await session.execute(
                delete(ConversationItem).where(ConversationItem.conversation_seq == row.seq, ConversationItem.item_id == item_id)
            )
            return bool(getattr(deleted, "rowcount", 0))


def _add(session: AsyncSession, seq: int, start: int, items: list[dict[str, Any]]) -> None:
    """``items`` at positions from ``start`` on."""
    session.add_all(
        ConversationItem(conversation_seq=seq, position=start + i, item_id=item["id"], body=item) for i, item in enumerate(items)
    )


async def _position(session: AsyncSession, seq: int, item_id: str) -> int | None:
    position: int | None = await session.scalar(
        select(ConversationItem.position).where(ConversationItem.conversation_seq == seq, ConversationItem.item_id == item_id)
    )
    return position


async def _row(session: AsyncSession, project: str, conversation_id: str) -> Conversation | None:
    row: Conversation | None = await session.scalar(
        select(Conversation).where(Conversation.project_id == project, Conversation.id == conversation_id)
    )
    return row


def _public(row: Conversation) -> dict[str, Any]:
    return {"id": row.id, "object": "conversation", "created_at": row.created_at, "metadata": dict(row.meta)}
