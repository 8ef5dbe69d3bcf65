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
    assert "not authenticated" in await auth.decide()
    await database.close()
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
    await database.close()
    break_file(path)
    assert await status(auth, None) == 401  # keys are known to be required: no store needed to refuse
    for token in ("sk-cp-wrong", key):
        assert await status(auth, token) == 503
    await database.close()
    restore_file(path)
    assert await status(auth, key) == "team-a"
    assert await status(auth, None) == 401


async def test_static_keys_work_without_the_store_and_other_keys_need_it(store):
    database, path = store
    auth = Authenticator(["static-key"], KeyStore(database))
    await database.close()
    break_file(path)
    assert await status(auth, "static-key") == "default"
    assert await status(auth, None) == 401  # static keys exist: a key is required either way
    assert await status(auth, "sk-cp-other") == 503  # it may be a stored key: cannot tell


async def test_no_auth_is_explicit_and_says_so(store):
    database, _path = store
    await KeyStore(database).create("team-a")
    auth = Authenticator([], KeyStore(database), mode=AuthMode.OFF)
    assert await status(auth, None) == "default"
    assert "--no-auth" in await auth.decide()


async def test_decide_names_a_store_that_cannot_be_checked(store):
    database, path = store
    await KeyStore(database).create("team-a")
    await database.close()
    break_file(path)
    assert "503" in await Authenticator([], KeyStore(database)).decide()


async def test_revoking_every_key_never_switches_authentication_off(store):
    database, _path = store
    keys = KeyStore(database)
    key, info = await keys.create("team-a")
    auth = Authenticator([], keys)
    assert "required" in await auth.decide()
    assert await keys.revoke(info.id)
    for token in (None, key, "sk-cp-wrong"):
        assert await status(auth, token) == 401  # not project 'default': no key works until a restart
    assert auth.keys_required


async def test_a_key_created_while_serving_turns_authentication_on_for_good(store):
    database, _path = store
    keys = KeyStore(database)
    auth = Authenticator([], keys)
    await auth.decide()
    assert await status(auth, None) == "default" and not auth.keys_required
    key, info = await keys.create("team-a")
    assert await status(auth, None) == 401 and await status(auth, key) == "team-a"
    await keys.revoke(info.id)
    assert await status(auth, None) == 401


async def test_beyond_loopback_keys_are_required_before_any_exists(store):
    database, _path = store
    auth = Authenticator([], KeyStore(database), require=True)
    assert auth.keys_required and "required" in await auth.decide()
    assert await status(auth, None) == 401


async def test_a_locked_sqlite_store_refuses_a_key_lookup_within_seconds(store):
    """Before: a lookup waited out SQLite's 30 s busy timeout (requests waited 30-70 s for their 503)."""
    import sqlite3
    import time

    database, path = store
    key, _ = await KeyStore(database).create("team-a")
    await database.close()  # no connection of ours is open while the file is locked
    locker = sqlite3.connect(path, timeout=1)
    try:
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("CREATE TABLE lock_holder (x)")  # an exclusive lock that readers must wait for
        auth = Authenticator([], KeyStore(database))
        started = time.monotonic()
        assert await status(auth, key) == 503
        assert time.monotonic() - started < 5
    finally:
        locker.close()
    assert await status(auth, key) == "team-a"  # and back once the lock is gone
