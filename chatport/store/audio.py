"""Spoken answers' transcripts by id, for an hour: an assistant message that sends back
``audio: {id}`` stands for what was said. Seen through one project, like completions."""

from __future__ import annotations

from sqlalchemy import delete, select

from chatport.store.database import Database
from chatport.store.schema import AudioAnswer


class AudioAnswerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, project: str, answer_id: str, transcript: str, expires_at: int) -> None:
        async with self.db.transaction() as session:
            # Expired answers go as new ones come: the table holds about an hour of them.
            await session.execute(delete(AudioAnswer).where(AudioAnswer.expires_at < expires_at - 2 * 3600))
            session.add(AudioAnswer(id=answer_id, project_id=project, transcript=transcript, expires_at=expires_at))

    async def transcript(self, project: str, answer_id: str, now: int) -> str | None:
        """The transcript, or None when the id is unknown to the project or has expired."""
        async with self.db.transaction() as session:
            row = await session.scalar(
                select(AudioAnswer).where(
                    AudioAnswer.id == answer_id, AudioAnswer.project_id == project, AudioAnswer.expires_at > now
                )
            )
            return row.transcript if row is not None else None
