"""Tables. Alembic migrations in ``migrations/`` create them; this module is the ORM view.

Completions are ordered by ``seq`` (insertion order), which also makes list cursors
stable. Metadata pairs live in their own indexed table so that a filter over many
stored completions is an index lookup, not a scan of JSON.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Rate limits (NULL: none), set with `chatport keys create --rpm/--tpm/--max-concurrent`.
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redacted: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class StoredCompletion(Base):
    __tablename__ = "stored_completions"
    __table_args__ = (
        Index("ix_stored_completions_project_seq", "project_id", "seq"),
        Index("ix_stored_completions_project_model_seq", "project_id", "model", "seq"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    created: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON)


class CompletionMetadata(Base):
    __tablename__ = "stored_completion_metadata"
    __table_args__ = (Index("ix_stored_completion_metadata_lookup", "project_id", "key", "value", "completion_seq"),)

    completion_seq: Mapped[int] = mapped_column(ForeignKey("stored_completions.seq", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))
    project_id: Mapped[str] = mapped_column(String(64))


class CompletionMessage(Base):
    __tablename__ = "stored_completion_messages"

    completion_seq: Mapped[int] = mapped_column(ForeignKey("stored_completions.seq", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class AudioAnswer(Base):
    """A spoken answer's transcript, until ``expires_at`` (unix seconds)."""

    __tablename__ = "audio_answers"
    __table_args__ = (Index("ix_audio_answers_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    transcript: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class StoredResponse(Base):
    """A response of POST /v1/responses (store: true), with the conversation it closes in
    chat form (every earlier turn and its own output, without instructions), which is what
    a later ``previous_response_id`` continues."""

    __tablename__ = "stored_responses"
    __table_args__ = (Index("ix_stored_responses_project_seq", "project_id", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(String(64))
    created: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    conversation: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class ResponseInputItem(Base):
    __tablename__ = "stored_response_input_items"

    response_seq: Mapped[int] = mapped_column(ForeignKey("stored_responses.seq", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class Conversation(Base):
    """A conversation of the Conversations API: its items are the history of the responses
    that name it (``conversation``), each response's input and output appended as it ends."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_project_seq", "project_id", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON)


class ConversationItem(Base):
    __tablename__ = "conversation_items"
    __table_args__ = (Index("ix_conversation_items_item", "conversation_seq", "item_id"),)

    conversation_seq: Mapped[int] = mapped_column(ForeignKey("conversations.seq", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
