"""Models from the Hub, through the real download code against a stand-in Hub on
loopback (HF_ENDPOINT): pull, serve, serve offline from the cache, split files, resumed
downloads, cache listing and removal, and the errors a user meets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from openai import OpenAI

from chatport.catalog import default_model
from tests.conftest import start_server, stop_server
from tests.support.fake_hub import FakeHub
from tests.support.images import data_url, encode
from tests.support.images import picture as tiny_picture
from tests.support.mmproj import IMAGE_TOKENS, tiny_mmproj

REPO = "chatport-test/SmolLM2-135M-Instruct-GGUF"
GGUF = "SmolLM2-135M-Instruct-Q4_1.gguf"
SPLIT = ["SmolLM2-135M-Instruct-Q8_0-00001-of-00002.gguf", "SmolLM2-135M-Instruct-Q8_0-00002-of-00002.gguf"]
PROJECTOR = "mmproj-SmolLM2-F16.gguf"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    projector = tiny_mmproj(str(tmp_path_factory.mktemp("projector") / PROJECTOR))
    fake = FakeHub(
        {
            REPO: {
                GGUF: default_model().path,
                SPLIT[0]: b"first part " * 1000,
                SPLIT[1]: b"second part " * 1000,
                PROJECTOR: projector,
                "README.md": b"# SmolLM2 GGUF\n",
            }
        }
    )
    yield fake
    fake.stop()


def hf_env(tmp_path, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_ETAG_TIMEOUT": "3",
        **extra,
    }


def chatport(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatport", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_model_pulled_by_quant_serves_and_then_serves_offline(tmp_path, hub):
    env = hf_env(tmp_path, hub.url)
    pulled = chatport(env, "pull", f"hf:{REPO}:Q4_1")
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    paths = pulled.stdout.split()
    assert paths[0].endswith(GGUF) and paths[0].startswith(str(tmp_path / "hf"))
    assert paths[-1].endswith(PROJECTOR)  # the repo's vision projector comes along
    with open(paths[0], "rb") as got, open(default_model().path, "rb") as want:
        assert got.read() == want.read()

    listed = chatport(env, "models")
    assert f"hf:{REPO}" in listed.stdout and GGUF in listed.stdout and "MB" in listed.stdout

    for offline_env in (hf_env(tmp_path, "http://127.0.0.1:9"), hf_env(tmp_path, hub.url, HF_HUB_OFFLINE="1")):
        srv = start_server(str(tmp_path), "--model", f"hf:{REPO}:Q4_1", env=offline_env)
        try:
            client = OpenAI(base_url=srv.api, api_key="x", max_retries=0)
            assert [m.id for m in client.models.list().data] == ["smollm2-135m-instruct-q4_1"]
            answer = client.chat.completions.create(
                model="smollm2-135m-instruct-q4_1", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
            )
            assert answer.choices[0].message.content
            # The repo's projector was loaded with the model: it takes images.
            picture = {"type": "image_url", "image_url": {"url": data_url(encode(tiny_picture(), "PNG"))}}
            seen = client.chat.completions.create(
                model="smollm2-135m-instruct-q4_1", messages=[{"role": "user", "content": [picture]}], max_tokens=3
            )
            assert seen.usage.prompt_tokens > IMAGE_TOKENS
        finally:
            stop_server(srv)


def test_serve_downloads_what_is_not_cached(tmp_path, hub):
    srv = start_server(str(tmp_path), "--model", f"hf:{REPO}/{GGUF}", env=hf_env(tmp_path, hub.url))
    try:
        assert OpenAI(base_url=srv.api, api_key="x", max_retries=0).models.list().data[0].id == "smollm2-135m-instruct-q4_1"
    finally:
        stop_server(srv)


def test_a_split_model_is_fetched_whole(tmp_path, hub):
    pulled = chatport(hf_env(tmp_path, hub.url), "pull", f"hf:{REPO}:q8_0")
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    names = [os.path.basename(p) for p in pulled.stdout.split()]
    assert names == [*SPLIT, PROJECTOR]


def test_an_interrupted_download_resumes(tmp_path, hub):
    hub.requests.clear()
    hub.cut_next_download_at = 30_000_000  # the connection breaks 30 MB into the 98 MB file
    env = hf_env(tmp_path, hub.url)
    first = chatport(env, "pull", f"hf:{REPO}/{GGUF}")
    if first.returncode != 0:  # gave up this time: the next pull picks up where it stopped
        assert chatport(env, "pull", f"hf:{REPO}/{GGUF}").returncode == 0
    ranges = [r for method, path, r in hub.requests if method == "GET" and path.endswith(GGUF) and r]
    # Resumed from what had been written (whole 10 MiB chunks), not from the start.
    assert ranges and 0 < int(ranges[-1].removeprefix("bytes=").split("-")[0]) <= 30_000_000, hub.requests
    path = chatport(env, "pull", f"hf:{REPO}/{GGUF}").stdout.split()[0]
    assert os.path.getsize(path) == os.path.getsize(default_model().path)


def test_rm_removes_a_cached_model(tmp_path, hub):
    env = hf_env(tmp_path, hub.url)
    assert chatport(env, "pull", f"hf:{REPO}:Q4_1").returncode == 0
    removed = chatport(env, "rm", f"hf:{REPO}")
    assert removed.returncode == 0 and "removed" in removed.stderr
    assert REPO not in chatport(env, "models").stdout
    assert chatport(env, "rm", REPO).returncode == 1  # nothing left to remove


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("hf:nobody/no-such-repo:Q4_K_M", "no repository nobody/no-such-repo"),
        (f"hf:{REPO}:Q2_K", "has no GGUF for Q2_K; it has: Q4_1, Q8_0"),
        (f"hf:{REPO}/missing.gguf", "has no file missing.gguf"),
        (f"hf:{REPO}/README.md", "is not a .gguf file"),
        ("hf:just-a-name", "hf:OWNER/REPO:QUANT"),
    ],
)
def test_errors_say_what_is_wrong(tmp_path, hub, spec, said):
    out = chatport(hf_env(tmp_path, hub.url), "pull", spec)
    assert out.returncode == 1 and said in " ".join(out.stderr.split()), out.stderr[-1500:]


def test_no_network_and_nothing_cached_is_said(tmp_path):
    out = chatport(hf_env(tmp_path, "http://127.0.0.1:9"), "pull", f"hf:{REPO}:Q4_1")
    assert out.returncode == 1 and "cannot reach the Hugging Face Hub" in " ".join(out.stderr.split())
    refused = chatport(hf_env(tmp_path, "http://127.0.0.1:9"), "serve", "--model", f"hf:{REPO}:Q4_1", "--port", "1")
    assert refused.returncode == 2 and "cannot reach" in " ".join(refused.stderr.split())
