"""Projects, API keys and stored completions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("redacted", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "stored_completions",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
    )
    op.create_index("ix_stored_completions_project_seq", "stored_completions", ["project_id", "seq"])
    op.create_index("ix_stored_completions_project_model_seq", "stored_completions", ["project_id", "model", "seq"])
    op.create_table(
        "stored_completion_metadata",
        sa.Column("completion_seq", SEQ, sa.ForeignKey("stored_completions.seq", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_stored_completion_metadata_lookup",
        "stored_completion_metadata",
        ["project_id", "key", "value", "completion_seq"],
    )
    op.create_table(
        "stored_completion_messages",
        sa.Column("completion_seq", SEQ, sa.ForeignKey("stored_completions.seq", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("body", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stored_completion_messages")
    op.drop_index("ix_stored_completion_metadata_lookup", table_name="stored_completion_metadata")
    op.drop_table("stored_completion_metadata")
    op.drop_index("ix_stored_completions_project_model_seq", table_name="stored_completions")
    op.drop_index("ix_stored_completions_project_seq", table_name="stored_completions")
    op.drop_table("stored_completions")
    op.drop_table("api_keys")
    op.drop_table("projects")
