"""The official openai npm package (v6) against the real server: create, stream, the
stream helper, errors, stored completions with for-await pagination, and a file part."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import MODEL, start_server, stop_server
from tests.support.pdf import make_pdf

PDF_LINE = "The launch code is BLUE HERON."
NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def node_server(store_url, tmp_path_factory):
    # The TypeScript SDK runs against a server on each database (SQLite and PostgreSQL).
    srv = start_server(str(tmp_path_factory.mktemp("node")), "--store", store_url, "--alias", "gpt-4o=" + MODEL)
    yield srv
    stop_server(srv)


def run_node_checks(server) -> dict:
    return run_node_script(
        "sdk_check.mjs",
        {
            "CHATPORT_BASE_URL": server.api,
            "CHATPORT_PDF_B64": base64.b64encode(make_pdf([PDF_LINE])).decode(),
            "CHATPORT_PDF_TEXT": f'<file name="document.pdf">\n--- page 1 ---\n{PDF_LINE}\n</file>',
        },
    )


def run_node_script(script: str, env: dict[str, str]) -> dict:
    """Run one of tests/node's scripts with ``env`` added; its last line is a JSON report."""
    if shutil.which("node") is None:
        pytest.fail("node is required for the TypeScript SDK tests")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "openai")):
        pytest.fail("run `npm ci --prefix tests/node` first (the README's test command does)")
    out = subprocess.run(
        ["node", script], cwd=NODE_DIR, env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def report(node_server):
    return run_node_checks(node_server)


def test_create(report):
    create = report["create"]
    assert create["object"] == "chat.completion"
    assert create["content"]
    assert create["finish_reason"] in ("stop", "length")
    assert create["total_tokens"] > 0


def test_stream_with_usage(report):
    stream = report["stream"]
    assert stream["text"] and stream["chunks"] >= 3
    assert 1 <= stream["completion_tokens"] <= 10


def test_stream_helper(report):
    assert report["helper"]["deltas"] == report["helper"]["final"]


def test_errors(report):
    assert report["badRequest"] == {
        "badRequest": True,
        "notFound": False,
        "auth": False,
        "status": 400,
        "param": "top_logprobs",
        "code": "integer_above_max_value",
    }
    assert report["notFound"]["notFound"] and report["notFound"]["code"] == "model_not_found"


def test_stored_completions_with_for_await_pagination(report):
    stored = report["stored"]
    assert stored["paged"] == stored["made"]  # five items over three pages of two, in order
    assert stored["retrievedId"] == stored["made"][0]
    assert stored["updatedMetadata"]["seen"] == "yes"
    assert stored["messages"] == [{"id": stored["made"][0] + "-0", "role": "user", "content": "Number 0"}]
    assert stored["deleted"] == {"object": "chat.completion.deleted", "id": stored["made"][0], "deleted": True}
    assert stored["afterDelete"]["notFound"]


def test_parse_with_zod_response_format(report):
    parsed = report["parse"]["parsed"]
    assert report["parse"]["finish"] == "stop"
    assert isinstance(parsed["colors"], list) and len(parsed["colors"]) <= 3
    assert all(set(c) == {"name", "hex"} for c in parsed["colors"])


def test_run_tools_calls_the_function(report):
    run = report["runTools"]
    assert run["toolMessages"] == 1
    assert len(run["seen"]) == 1 and isinstance(run["seen"][0]["location"], str)


def test_the_stream_helper_gives_what_create_gives(report):
    for case in report["consistency"]:
        assert case["streamed"] == case["created"], case
        assert case["finish"][0] == case["finish"][1], case


def test_arguments_stream_as_they_are_written(report):
    with_calls = [c for c in report["consistency"] if c["created"]["calls"]]
    assert with_calls
    for case in with_calls:
        assert case["argumentDeltas"] > 3, case  # not one delta at the end
        assert case["joined"] == "".join(arguments for _, arguments in case["streamed"]["calls"])


def test_streaming_run_tools_ends_like_run_tools(report):
    assert report["runToolsStreamed"]["streamed"] == report["runToolsStreamed"]["plain"]


def test_a_file_part_as_the_sdk_docs_show_it_reads_as_its_text(report):
    file = report["file"]
    assert file["prompt_tokens"] == file["typed_prompt_tokens"]
    # The typed text's prompt is the file's (tests/e2e/test_files.py checks it token for
    # token); the SDK reads cached_tokens in OpenAI's whole blocks.
    assert file["typed_cached_tokens"] % 128 == 0
