"""Stored responses (POST /v1/responses with store: true) and their input items, and the
Conversations API's conversations and their items.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("conversation", sa.JSON, nullable=False),
    )
    op.create_index("ix_stored_responses_project_seq", "stored_responses", ["project_id", "seq"])
    op.create_table(
        "stored_response_input_items",
        sa.Column("response_seq", _SEQ, sa.ForeignKey("stored_responses.seq", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "conversations",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
    )
    op.create_index("ix_conversations_project_seq", "conversations", ["project_id", "seq"])
    op.create_table(
        "conversation_items",
        sa.Column("conversation_seq", _SEQ, sa.ForeignKey("conversations.seq", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_conversation_items_item", "conversation_items", ["conversation_seq", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_conversation_items_item", table_name="conversation_items")
    op.drop_table("conversation_items")
    op.drop_index("ix_conversations_project_seq", table_name="conversations")
    op.drop_table("conversations")
    op.drop_table("stored_response_input_items")
    op.drop_index("ix_stored_responses_project_seq", table_name="stored_responses")
    op.drop_table("stored_responses")
