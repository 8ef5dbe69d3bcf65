"""Hardening at the HTTP edge, through the real server: inputs that used to be 500s,
browser-facing checks (Host, Content-Type, CORS), connection limits, and small things
(Allow on 405, empty cursors, project names the store cannot keep)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.conftest import MODEL, start_server, stop_server

USER = [{"role": "user", "content": "Say one word."}]


def chat(server, **extra) -> httpx.Response:
    return httpx.post(server.api + "/chat/completions", json={"model": MODEL, "messages": USER, "max_tokens": 1, **extra})


# --- what used to be 500s ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["²", "¹", "٣", "9" * 5000, "-1", " 7"])
def test_logit_bias_keys_that_are_not_token_ids_are_400(client, key):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, logit_bias={key: 1})
    assert info.value.param == "logit_bias" and info.value.code == "invalid_value"
    assert len(info.value.body["message"]) < 300  # a 5,000-digit key is not echoed whole


@pytest.mark.parametrize("tail", ["²", "9" * 5000, "1" * 30, "-1"])
def test_message_cursors_that_are_not_positions_are_400(client, tail):
    done = client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, store=True)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.messages.list(done.id, after=f"{done.id}-{tail}")
    assert info.value.param == "after"


def test_an_empty_cursor_is_no_cursor(server, client):
    done = client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, store=True)
    for url in ("/chat/completions", f"/chat/completions/{done.id}/messages"):
        plain = httpx.get(server.api + url, params={"limit": 100})
        empty = httpx.get(server.api + url, params={"limit": 100, "after": ""})
        assert empty.status_code == plain.status_code == 200
        assert [d["id"] for d in empty.json()["data"]] == [d["id"] for d in plain.json()["data"]]


def test_a_405_says_which_methods_the_path_takes(server):
    r = httpx.put(server.api + "/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = httpx.patch(server.api + "/chat/completions/chatcmpl-x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST, DELETE"
    assert r.headers["x-request-id"].startswith("req_")


# --- browsers --------------------------------------------------------------------------


def test_a_body_not_declared_as_json_is_refused(server):
    body = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        r = httpx.post(server.api + "/chat/completions", content=body, headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_content_type", content_type
    ok = httpx.post(server.api + "/chat/completions", content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_host_names_other_than_the_servers_are_refused(server):
    # A DNS-rebinding page reaches 127.0.0.1 under its own host name.
    for host in ("attacker.example", f"attacker.example:{server.port}", "127.0.0.1.attacker.example"):
        r = httpx.get(server.api + "/chat/completions", headers={"host": host})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host", host
        redirected = httpx.get(server.base_url + "/v1/models/", headers={"host": host})
        assert redirected.status_code == 400 and "attacker" not in redirected.headers.get("location", "")
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        assert httpx.get(server.api + "/models", headers={"host": host}).status_code == 200, host


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory):
    srv = start_server(
        str(tmp_path_factory.mktemp("edge")),
        "--cors-origin",
        "https://app.example",
        "--allowed-host",
        "chat.internal",
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--max-connections",
        "8",
    )
    yield srv
    stop_server(srv)


def test_cors_answers_only_the_configured_origins(edge_server, server):
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type"}
    allowed = httpx.options(edge_server.api + "/chat/completions", headers={"origin": "https://app.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.options(edge_server.api + "/chat/completions", headers={"origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    default = httpx.options(server.api + "/chat/completions", headers={"origin": "https://app.example", **preflight})
    assert "access-control-allow-origin" not in default.headers  # none by default
    simple = httpx.get(edge_server.api + "/models", headers={"origin": "https://app.example"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"]


def test_an_allowed_host_name_is_answered(edge_server):
    assert httpx.get(edge_server.api + "/models", headers={"host": "chat.internal:443"}).status_code == 200


# --- connections -----------------------------------------------------------------------


def _read_all(sock: socket.socket, limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_headers_sent_too_slowly_get_408(edge_server):
    with socket.create_connection(("127.0.0.1", edge_server.port)) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        started = time.monotonic()
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert time.monotonic() - started < 5


JSON_POST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes on a new connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        return _read_all(sock)


def test_a_body_sent_too_slowly_gets_408(edge_server):
    answer = exchange(edge_server.port, JSON_POST + b"Content-Length: 100\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert b"x-request-id" in answer


def test_two_framings_for_one_body_are_refused_and_the_connection_closed(server):
    smuggled = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answer = exchange(server.port, JSON_POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
    assert answer.startswith(b"HTTP/1.1 400") and b"connection: close" in answer.lower()
    assert answer.count(b"HTTP/1.1") == 1  # the smuggled second request was not answered


def test_connections_over_the_cap_get_503_with_retry_after(edge_server):
    held = [socket.create_connection(("127.0.0.1", edge_server.port)) for _ in range(8)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", edge_server.port)) as extra:
            answer = _read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after:" in answer.lower()
        assert b"too_many_connections" in answer
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(edge_server.api + "/models").status_code == 200


# --- store -----------------------------------------------------------------------------


def test_project_names_the_store_cannot_keep_are_refused(tmp_path):
    for name in ("p" * 65, "p" * 255, "", " padded", "tab\there"):
        out = subprocess.run(
            [sys.executable, "-m", "chatport", "keys", "create", "--project", name, "--store", f"sqlite:///{tmp_path}/k.db"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 2 and "project name" in out.stderr, (name, out.stderr[-300:])


def test_a_data_error_in_the_store_is_a_500_that_says_so_not_store_unavailable(tmp_path, fresh_store_url):
    """A project made before names were checked (too long for the completions table) makes
    storing fail: that is an error in the data, not an outage."""
    import asyncio

    from chatport.store.database import Database
    from chatport.store.keys import KeyStore

    async def make_key() -> str:
        db = Database(fresh_store_url)
        try:
            await db.upgrade()
            key, _ = await KeyStore(db).create("short")
            async with db.transaction() as session:
                from sqlalchemy import update

                from chatport.store.schema import Project

                await session.execute(update(Project).values(name="p" * 200))
            return key
        finally:
            await db.close()

    key = asyncio.run(make_key())
    srv = start_server(str(tmp_path), "--store", fresh_store_url)
    try:
        client = OpenAI(base_url=srv.api, api_key=key, max_retries=0)
        assert client.models.list().data  # the key works
        if fresh_store_url.startswith("sqlite"):
            # SQLite does not enforce VARCHAR lengths: the row is kept whole.
            assert client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, store=True).id
            return
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, store=True)
        assert info.value.status_code == 500 and info.value.code != "store_unavailable"
        log = srv.log()
        assert "StringDataRightTruncation" in log or "DataError" in log or "value too long" in log
        assert client.models.list().data  # and the server goes on
    finally:
        stop_server(srv)


# --- issue 26: what the second probe found ------------------------------------------------


NUL = "a\x00b"


def test_a_nul_character_is_a_400_naming_the_parameter_on_postgresql(tmp_path):
    from tests.conftest import create_pg_database, drop_pg_database

    url = create_pg_database()
    srv = start_server(str(tmp_path), "--store", url)
    try:
        client = OpenAI(base_url=srv.api, api_key="x", max_retries=0)
        done = client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1, store=True)
        before = [c.id for c in client.chat.completions.list(limit=100)]
        refused = {
            "metadata": lambda: chat(srv, store=True, metadata={NUL: "v"}),
            "metadata.k": lambda: chat(srv, store=True, metadata={"k": NUL}),
            "metadata.k ": lambda: httpx.post(srv.api + f"/chat/completions/{done.id}", json={"metadata": {"k": NUL}}),
            "completion_id": lambda: httpx.get(srv.api + "/chat/completions/chatcmpl-%00x"),
            "completion_id ": lambda: httpx.delete(srv.api + "/chat/completions/chatcmpl-%00x"),
            "after": lambda: httpx.get(srv.api + "/chat/completions", params={"after": NUL}),
            "model": lambda: httpx.get(srv.api + "/chat/completions", params={"model": NUL}),
            "metadata[k]": lambda: httpx.get(srv.api + "/chat/completions", params={"metadata[k]": NUL}),
        }
        for param, send in refused.items():
            response = send()
            assert response.status_code == 400, (param, response.status_code, response.text)
            assert response.json()["error"]["param"] == param.strip().replace("metadata[k]", "metadata.k"), response.text
        # Refused before generating: nothing was stored by the two requests with bad metadata.
        assert [c.id for c in client.chat.completions.list(limit=100)] == before
        # NUL in message content is stored and read back as sent.
        kept = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": NUL}], max_tokens=1, store=True)
        assert client.chat.completions.messages.list(kept.id).data[0].content == NUL
    finally:
        stop_server(srv)
        drop_pg_database(url)


def test_a_trickled_body_is_cut_by_the_minimum_rate(edge_server):
    # One byte each 0.6 s: every part arrives within --body-timeout (1 s), but the whole body
    # falls below the minimum rate once the first second is over.
    with socket.create_connection(("127.0.0.1", edge_server.port)) as sock:
        sock.sendall(JSON_POST + b"Content-Length: 1000\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(10)
        answer = b""
        for _ in range(20):
            try:
                sock.sendall(b" ")
            except OSError:
                break
            try:
                sock.settimeout(0.6)
                answer += sock.recv(65536)
                if answer:
                    break
            except TimeoutError:
                continue
        answer += _read_all(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert time.monotonic() - started < 5


def test_one_address_cannot_hold_every_connection(tmp_path):
    srv = start_server(str(tmp_path), "--max-connections", "64", "--max-connections-per-address", "16")
    held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(16)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", srv.port)) as extra:
            answer = _read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer
        # Another address (all of 127/8 is loopback) is served while the first holds its share.
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        assert other.get(srv.api + "/models").status_code == 200
    finally:
        for sock in held:
            sock.close()
        stop_server(srv)


def test_a_host_with_anything_after_the_brackets_is_refused(server):
    for host in ("[::1]evil.example", "[::1]evil.example:80", "localhost:x"):
        r = httpx.get(server.api + "/models", headers={"host": host})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host", host
    assert httpx.get(server.api + "/models", headers={"host": f"[::1]:{server.port}"}).status_code == 200


def test_ready_shows_its_checks_only_to_a_valid_key(tmp_path):
    from tests.conftest import cli_key

    store = f"sqlite:///{tmp_path}/k.db"
    key, _ = cli_key(store, "team")
    srv = start_server(str(tmp_path), "--store", store)
    try:
        anonymous = httpx.get(srv.base_url + "/ready")
        assert anonymous.status_code == 200 and anonymous.json() == {"status": "ready"}
        keyed = httpx.get(srv.base_url + "/ready", headers={"authorization": f"Bearer {key}"})
        assert keyed.json()["checks"] == {"model:" + MODEL: "ok", "store": "ok", "draining": "no"}
    finally:
        stop_server(srv)


def test_an_empty_list_has_string_ids(server):
    page = httpx.get(server.api + "/chat/completions", params={"metadata[never]": "set"}).json()
    assert page == {"object": "list", "data": [], "first_id": "", "last_id": "", "has_more": False}


def test_an_integer_past_64_bits_is_out_of_range_not_a_decimal(server):
    body = b'{"model":"%s","messages":[{"role":"user","content":"hi"}],"max_tokens":18446744073709551616}' % MODEL.encode()
    r = httpx.post(server.api + "/chat/completions", content=body, headers={"content-type": "application/json"})
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == "max_tokens" and error["code"] == "integer_above_max_value"
    assert "18446744073709551616" in error["message"] and "decimal" not in error["message"]
