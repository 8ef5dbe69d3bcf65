"""SIGTERM drains instead of cutting; /ready tells a load balancer whether to send work;
/metrics needs a key when keys are configured."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import orjson
from openai import OpenAI

from tests.conftest import MODEL, cli_key, start_server, stop_server
from tests.support.tcp_proxy import TcpProxy

STORY = [{"role": "user", "content": "Tell me a long story."}]


def test_sigterm_drains_refuses_new_work_cuts_what_is_left_and_keeps_what_was_answered(tmp_path, eog_bias):
    store = f"sqlite:///{tmp_path}/drain.db"
    # Margins, not timings: the short answers (40 tokens) need a small part of the drain even
    # on a loaded machine, and the long stream (3,500 tokens) outlasts it even on a fast one.
    srv = start_server(str(tmp_path), "--store", store, "--drain-seconds", "12", "--ctx-size", "4096")
    events: list[bytes] = []
    finished: dict[str, httpx.Response] = {}

    def long_stream() -> None:  # outlives the drain: cut, with an error event
        body = {"model": MODEL, "messages": STORY, "max_tokens": 3500, "logit_bias": eog_bias, "stream": True, "store": True}
        with httpx.stream("POST", srv.api + "/chat/completions", json=body, timeout=120) as r:
            events.extend(line.encode() for line in r.iter_lines() if line)

    def short(name: str, stream: bool) -> None:  # finishes within the drain: answered and stored
        body = {"model": MODEL, "messages": STORY, "max_tokens": 40, "logit_bias": eog_bias, "store": True, "stream": stream}
        finished[name] = httpx.post(srv.api + "/chat/completions", json=body, timeout=120)

    try:
        threads = [threading.Thread(target=long_stream)]
        threads += [threading.Thread(target=short, args=(f"short-{s}", s)) for s in (False, True)]
        threads[0].start()
        time.sleep(1.0)
        for t in threads[1:]:
            t.start()
        time.sleep(0.2)
        srv.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        refused = httpx.post(srv.api + "/chat/completions", json={"model": MODEL, "messages": STORY, "max_tokens": 1})
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
        assert refused.json()["error"]["code"] == "server_shutting_down"
        ready = httpx.get(srv.base_url + "/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["draining"] == "yes"
        assert httpx.get(srv.base_url + "/health").status_code == 200  # alive, just not ready
        for t in threads:
            t.join(timeout=60)
        assert events[-1] == b"data: [DONE]"
        last = orjson.loads(events[-2].removeprefix(b"data: "))
        assert last["error"]["code"] == "server_shutting_down", last
        assert finished["short-False"].status_code == 200
        assert finished["short-True"].text.rstrip().endswith("data: [DONE]")
        assert '"finish_reason":"length"' in finished["short-True"].text
        srv.process.wait(timeout=30)
    finally:
        stop_server(srv)

    again = start_server(str(tmp_path), "--store", store)
    try:
        stored = OpenAI(base_url=again.api, api_key="x", max_retries=0).chat.completions.list(limit=100).data
        assert finished["short-False"].json()["id"] in {c.id for c in stored}
        assert len(stored) == 2  # both answered requests; the cut stream was not answered
    finally:
        stop_server(again)


def test_ready_checks_the_engine_and_the_store(tmp_path):
    from tests.conftest import create_pg_database, drop_pg_database

    url = create_pg_database()
    host_port, name = url.rsplit("@", 1)[1].rsplit("/", 1)
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port))
    srv = start_server(str(tmp_path), "--store", f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}")
    try:
        ok = httpx.get(srv.base_url + "/ready")
        assert ok.status_code == 200, ok.text
        assert ok.json()["checks"] == {"model:" + MODEL: "ok", "store": "ok", "draining": "no"}
        proxy.down()
        down = httpx.get(srv.base_url + "/ready", timeout=30)
        assert down.status_code == 503 and down.json()["checks"]["store"].startswith("unavailable")
        assert int(down.headers["retry-after"]) > 0
        assert httpx.get(srv.base_url + "/health").status_code == 200
        proxy.up()
        deadline = time.monotonic() + 30
        while httpx.get(srv.base_url + "/ready").status_code != 200:
            assert time.monotonic() < deadline, "ready again once the store is back"
            time.sleep(0.5)
    finally:
        stop_server(srv)
        drop_pg_database(url)


def test_metrics_need_a_key_when_keys_are_configured(tmp_path, server):
    assert httpx.get(server.base_url + "/metrics").status_code == 200  # no keys: open, as the API is
    store = f"sqlite:///{tmp_path}/keys.db"
    key, _ = cli_key(store, "ops")
    srv = start_server(str(tmp_path), "--store", store)
    try:
        assert httpx.get(srv.base_url + "/metrics").status_code == 401
        scraped = httpx.get(srv.base_url + "/metrics", headers={"authorization": f"Bearer {key}"})
        assert scraped.status_code == 200 and "chatport_running_sequences" in scraped.text
        assert "chatport_draining 0.0" in scraped.text
    finally:
        stop_server(srv)
