"""Alembic environment: always handed a live connection by chatport.store.database."""

from alembic import context

from chatport.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
