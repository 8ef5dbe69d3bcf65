"""Stored completions, projects and API keys, on SQLite or PostgreSQL (SQLAlchemy 2, async)."""
