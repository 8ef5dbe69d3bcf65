"""Fixtures that start the real server (``python -m chatport serve``) on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from chatport.bench.servers import RunningServer, start_chatport

MODEL = "smollm2-135m-instruct"


Server = RunningServer


def start_server(tmp_dir: str, *args: str, env: dict[str, str] | None = None) -> Server:
    """``chatport serve`` with small test limits and its own SQLite store unless given one."""
    if "--store" not in args:
        args = ("--store", f"sqlite:///{tmp_dir}/store-{os.getpid()}-{time.monotonic_ns()}.db", *args)
    if "--cache-dir" not in args:  # prompt prefixes kept 24h go to the test's directory, not the user's
        args = ("--cache-dir", os.path.join(tmp_dir, "prompt-cache"), *args)
    log_path = os.path.join(tmp_dir, f"server-{time.monotonic_ns()}.log")
    return start_chatport("--ctx-size", "2048", "--max-seqs", "8", *args, log_path=log_path, env=env)


def stop_server(server: Server) -> None:
    server.stop()


def start_with_projects(tmp: str, *args: str):
    """A server whose key store holds one key of project alpha and one of beta:
    (the server, alpha's key, beta's key)."""
    store = f"sqlite:///{tmp}/keys.db"
    key_a, _ = cli_key(store, "alpha")
    key_b, _ = cli_key(store, "beta")
    return start_server(tmp, "--store", store, *args), key_a, key_b


def cli_key(store_url: str, project: str) -> tuple[str, str]:
    """``chatport keys create``: (the key, its id)."""
    out = subprocess.run(
        [sys.executable, "-m", "chatport", "keys", "create", "--project", project, "--store", store_url],
        capture_output=True,
        text=True,
        check=True,
    )
    key = out.stdout.strip().splitlines()[-1]
    key_id = next(w for w in out.stderr.split() if w.startswith("key_"))
    return key, key_id


@pytest.fixture(scope="session")
def vocab():
    """The default model's vocabulary (loaded without weights), for token ids in requests."""
    from chatport.catalog import default_model
    from chatport.engine.llama import LlamaModel

    return LlamaModel(default_model().path, vocab_only=True)


@pytest.fixture(scope="session")
def eog_bias(vocab) -> dict[str, int]:
    """A logit_bias that bans every end-of-generation token: the model talks to max_tokens."""
    return {str(int(t)): -100 for t in vocab.eog_mask.nonzero()[0]}


@pytest.fixture(scope="session")
def newest_python_sdk() -> str:
    from tests.support.newest import newest_python_sdk

    return newest_python_sdk()


@pytest.fixture(scope="session")
def newest_node_sdk() -> str:
    from tests.support.newest import newest_node_sdk

    return newest_node_sdk()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    srv = start_server(
        str(tmp_path_factory.mktemp("srv")),
        *("--alias", "gpt-4o=" + MODEL, "--alias", "gpt-4=" + MODEL, "--alias", "gpt-4o-audio-preview=" + MODEL),
    )
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def async_client(server):
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=120)


def _pg_admin(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run():
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def create_pg_database(prefix: str = "chatport_test") -> str:
    """A fresh database on the machine's PostgreSQL; returns its URL."""
    import secrets

    name = f"{prefix}_{secrets.token_hex(4)}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"


def drop_pg_database(url: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


PG_HOST = os.environ.get("CHATPORT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CHATPORT_TEST_PG_PORT", "5432"))


def _fresh_store(kind: str, tmp_path_factory):
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/stored.db"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request, tmp_path_factory):
    """A new, empty store per test module, on each database."""
    yield from _fresh_store(request.param, tmp_path_factory)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_store_url(request, tmp_path_factory):
    """A new, empty store per test, on each database."""
    yield from _fresh_store(request.param, tmp_path_factory)


QWEN = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="session")
def qwen_server(tmp_path_factory) -> Iterator[Server]:
    """Qwen2.5-Coder-0.5B-Instruct, which has a native tool-calling template."""
    from tests.support.qwen import qwen_gguf

    path = qwen_gguf(str(tmp_path_factory.getbasetemp().parent / "chatport-models"))
    srv = start_server(
        str(tmp_path_factory.mktemp("qwen")), "--model", path, "--model-id", QWEN, "--max-seqs", "4", "--alias", "gpt-4o=" + QWEN
    )
    yield srv
    stop_server(srv)


@pytest.fixture(params=["smollm2", "qwen"])
def model_target(request) -> tuple[Server, str]:
    """(server, model id) for each model under test."""
    if request.param == "smollm2":
        return request.getfixturevalue("server"), MODEL
    return request.getfixturevalue("qwen_server"), QWEN
