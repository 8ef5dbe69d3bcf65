"""Spoken answers (audio output): their transcripts, kept until they expire so that a
later turn can refer to one by its id.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audio_answers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("transcript", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_audio_answers_expires_at", "audio_answers", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_audio_answers_expires_at", table_name="audio_answers")
    op.drop_table("audio_answers")
