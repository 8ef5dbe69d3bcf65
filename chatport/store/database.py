"""Connections and migrations, one code path for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine


class StoreUnavailable(Exception):
    """The database cannot be reached (or refuses work) right now."""


_UNAVAILABLE = (OperationalError, InterfaceError, DBAPIError, OSError, ConnectionError, asyncio.TimeoutError)
# Errors in what we asked, not in reaching the database: they are bugs, not outages.
_OUR_FAULT = (IntegrityError, DataError, ProgrammingError)
# SQLSTATE classes that mean the database cannot work right now: connection, resources,
# operator intervention, system errors, and lock/serialization conflicts worth a retry.
_OUTAGE_SQLSTATE_CLASSES = ("08", "40", "53", "55", "57", "58")


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means "unavailable" rather than "we asked wrongly".

    asyncpg's data and constraint errors reach SQLAlchemy as a plain DBAPIError, so the
    exception class alone cannot tell a value too long for its column from a lost
    connection; the SQLSTATE can.
    """
    if isinstance(exc, _OUR_FAULT):
        return False
    if not isinstance(exc, _UNAVAILABLE):
        return False
    state = sqlstate(exc)
    return state is None or state[:2] in _OUTAGE_SQLSTATE_CLASSES


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, however the driver wrapped it."""
    seen: BaseException | None = exc
    for _ in range(4):  # DBAPIError -> adapter error -> asyncpg error
        if seen is None:
            return None
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


@contextmanager
def outages_as_unavailable() -> Iterator[None]:
    """Outages become StoreUnavailable; every other database error stays what it is (a
    bug, answered 500 and logged with its real class). Values a client sends are checked
    before they reach a query (a NUL character, a length), so a data exception here is the
    server's own (service/checks.py: check_storable, check_metadata)."""
    try:
        yield
    except Exception as exc:
        if is_outage(exc):
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise


def default_sqlite_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + os.path.join(base, "chatport", "chatport.db")


def database_at(url: str | None) -> Database:
    """The store at ``url``, else ``CHATPORT_STORE``, else the local SQLite file; ValueError
    for a URL that names no supported database."""
    return Database(url or os.environ.get("CHATPORT_STORE") or default_sqlite_url())


def async_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    driver = scheme.split("+", 1)[0]
    if driver == "sqlite":
        return "sqlite+aiosqlite://" + rest
    if driver in ("postgresql", "postgres"):
        return "postgresql+asyncpg://" + rest
    raise ValueError(f"unsupported database {driver!r}: use sqlite:///PATH or postgresql://...")


def redacted_url(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}{at}{host}"


def migrations_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "chatport.store:migrations")
    return config


# Writes may wait this long for a lock (a completion being stored waits rather than fails);
# the lookups every request makes (its key) wait only LOOKUP_SECONDS, then the store counts
# as unavailable (503) instead of holding the request for half a minute.
WRITE_SECONDS = 30
LOOKUP_SECONDS = 2


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        target = async_url(url)
        self.is_sqlite = target.startswith("sqlite")
        if self.is_sqlite:
            path = target.split("///", 1)[1]
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.engine = create_async_engine(target, connect_args={"timeout": WRITE_SECONDS})
            self.lookup_engine = create_async_engine(target, connect_args={"timeout": LOOKUP_SECONDS})
            for engine in (self.engine, self.lookup_engine):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(
                target, pool_pre_ping=True, pool_size=10, connect_args={"timeout": 3, "command_timeout": WRITE_SECONDS}
            )
            self.lookup_engine = create_async_engine(
                target,
                pool_pre_ping=True,
                pool_size=5,
                connect_args={"timeout": LOOKUP_SECONDS, "command_timeout": LOOKUP_SECONDS},
            )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._lookups = async_sessionmaker(self.lookup_engine, expire_on_commit=False)
        self._migrated = False
        self._lock = asyncio.Lock()

    async def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""

        def run(connection: Connection) -> None:
            config = migrations_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        with outages_as_unavailable():
            async with self.engine.begin() as connection:
                await connection.run_sync(run)

    async def ensure_ready(self) -> None:
        if self._migrated:
            return
        async with self._lock:
            if not self._migrated:
                await self.upgrade()
                self._migrated = True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: it commits whole or not at all."""
        await self.ensure_ready()
        with outages_as_unavailable():
            async with self._sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def lookup(self) -> AsyncIterator[AsyncSession]:
        """A short read that waits at most LOOKUP_SECONDS for a lock (StoreUnavailable then)."""
        await self.ensure_ready()
        with outages_as_unavailable():
            async with asyncio.timeout(LOOKUP_SECONDS + 1), self._lookups() as session, session.begin():
                yield session

    async def ping(self) -> None:
        await self.ensure_ready()
        with outages_as_unavailable():
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
        await self.lookup_engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; FULL syncs every commit, so a completion
    # whose response was sent survives a crash of the server process or the machine.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
