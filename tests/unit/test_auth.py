"""Authentication fails closed, over a real SQLite key store that goes away and comes back."""

from __future__ import annotations

import os
import shutil

import pytest

from chatport.protocol.errors import APIError
from chatport.service import auth as auth_module
from chatport.service.auth import Authenticator, AuthMode
from chatport.store.database import Database
from chatport.store.keys import KeyStore


@pytest.fixture
async def store(tmp_path):
    path = tmp_path / "keys.db"
    database = Database(f"sqlite:///{path}")
    yield database, path
    await database.close()


def break_file(path) -> None:
    """The store is gone: its file is not a database any more (kept aside for later)."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            shutil.move(f"{path}{suffix}", f"{path}{suffix}.aside")
    path.write_bytes(b"this is not a database" * 100)


def restore_file(path) -> None:
    os.remove(path)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}.aside"):
            shutil.move(f"{path}{suffix}.aside", f"{path}{suffix}")


async def status(auth: Authenticator, token: str | None) -> int | str:
    try:
        return (await auth.principal_for(token)).project
    except APIError as exc:
        assert exc.status_code != 503 or exc.retry_after, "a 503 says when to retry"
        return exc.status_code


@pytest.fixture(autouse=True)
def no_cache(monkeypatch):
    monkeypatch.setattr(auth_module, "_CACHE_SECONDS", 0.0)


async def test_no_keys_anywhere_means_the_default_project_while_the_store_can_say_so(store):
    database, path = store
    auth = Authenticator([], KeyStore(database))
    assert await status(auth, None) == "default"
    assert "not authenticated" in await auth.describe()
    await database.engine.dispose()
    break_file(path)
    # The store cannot say whether keys exist now: refused, not let through.
    assert await status(auth, None) == 503
    assert await status(auth, "anything") == 503


async def test_stored_keys_are_required_and_a_store_outage_refuses_instead_of_letting_through(store):
    database, path = store
    key, _ = await KeyStore(database).create("team-a")
    auth = Authenticator([], KeyStore(database))
    assert await status(auth, key) == "team-a"
    assert await status(auth, None) == 401
    assert await status(auth, "sk-cp-wrong") == 401
    await database.engine.dispose()
    break_file(path)
    for token in (None, "sk-cp-wrong", key):
        assert await status(auth, token) == 503
    await database.engine.dispose()
    restore_file(path)
    assert await status(auth, key) == "team-a"
    assert await status(auth, None) == 401


async def test_static_keys_work_without_the_store_and_other_keys_need_it(store):
    database, path = store
    auth = Authenticator(["static-key"], KeyStore(database))
    await database.engine.dispose()
    break_file(path)
    assert await status(auth, "static-key") == "default"
    assert await status(auth, None) == 401  # static keys exist: a key is required either way
    assert await status(auth, "sk-cp-other") == 503  # it may be a stored key: cannot tell


async def test_no_auth_is_explicit_and_says_so(store):
    database, _path = store
    await KeyStore(database).create("team-a")
    auth = Authenticator([], KeyStore(database), mode=AuthMode.OFF)
    assert await status(auth, None) == "default"
    assert "--no-auth" in await auth.describe()


async def test_describe_names_a_store_that_cannot_be_checked(store):
    database, path = store
    await KeyStore(database).create("team-a")
    await database.engine.dispose()
    break_file(path)
    assert "503" in await Authenticator([], KeyStore(database)).describe()
