"""The HTTP edge without a model: host names, the body guard, the last-resort 500 and the
stream's last-resort error event, over ASGI apps that stand in for a route with a bug."""

from __future__ import annotations

import httpx
import orjson
import pytest

from chatport.api.guards import BrowserGuard, default_allowed_hosts, host_name
from chatport.api.middleware import InFlight, RequestContextMiddleware
from chatport.api.sse import encode_events


def test_host_names_lose_their_port():
    assert host_name("Example.com:8000") == "example.com"
    assert host_name("[::1]:8000") == "::1"
    assert host_name("::1") == "::1"
    assert host_name("localhost") == "localhost"


def test_allowed_hosts_follow_the_bind_address():
    assert default_allowed_hosts("127.0.0.1", []) == frozenset({"localhost", "127.0.0.1", "::1"})
    assert "10.0.0.5" in default_allowed_hosts("10.0.0.5", [])
    assert default_allowed_hosts("0.0.0.0", []) is None  # a wildcard cannot know its names
    assert default_allowed_hosts("0.0.0.0", ["chat.example"]) == frozenset({"localhost", "127.0.0.1", "::1", "chat.example"})
    assert default_allowed_hosts("127.0.0.1", ["*"]) is None


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def failing_app(scope, receive, send):
    raise RuntimeError("a bug")


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def test_the_guard_refuses_other_hosts_and_undeclared_bodies():
    guard = BrowserGuard(ok_app, allowed_hosts=frozenset({"127.0.0.1"}))
    async with client(guard) as http:
        assert (await http.get("/v1/models")).status_code == 200
        other = await http.get("/v1/models", headers={"host": "rebound.example"})
        assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_host"
        plain = await http.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
        assert plain.json()["error"]["code"] == "unsupported_content_type"
        json_ok = await http.post(
            "/v1/chat/completions", content=b"{}", headers={"content-type": "Application/JSON; charset=utf-8"}
        )
        assert json_ok.status_code == 200


async def test_a_bug_is_answered_500_with_a_request_id_and_the_request_is_no_longer_in_flight(caplog):
    in_flight = InFlight()
    app = RequestContextMiddleware(failing_app, max_body_bytes=1000, in_flight=in_flight)
    async with client(app) as http:
        r = await http.get("/v1/models")
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    assert r.headers["x-request-id"] in caplog.text  # the log names the request
    assert in_flight.count == 0 and await in_flight.wait_idle(0.1)


async def test_a_bug_in_a_stream_ends_it_with_an_error_event():
    async def events():
        yield {"n": 1}
        raise RuntimeError("a bug")

    frames = [frame async for frame in encode_events(events())]
    assert frames[0] == b'data: {"n":1}\n\n' and frames[-1] == b"data: [DONE]\n\n"
    assert orjson.loads(frames[1].removeprefix(b"data: "))["error"]["type"] == "server_error"


@pytest.mark.parametrize("timeout", [0.2])
async def test_a_body_that_stops_arriving_is_a_408(timeout):
    import asyncio

    async def reads_body(scope, receive, send):
        from chatport.protocol.errors import APIError

        try:
            await receive()
        except APIError as exc:
            await send({"type": "http.response.start", "status": exc.status_code, "headers": []})
            await send({"type": "http.response.body", "body": orjson.dumps(exc.body())})

    app = RequestContextMiddleware(reads_body, max_body_bytes=1000, in_flight=InFlight(), body_timeout=timeout)
    sent: list[dict] = []

    async def never():
        await asyncio.sleep(10)

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": "POST", "path": "/v1/x", "headers": []}, never, send)
    assert sent[0]["status"] == 408
