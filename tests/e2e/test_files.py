"""File parts through the official SDK: a PDF or a text file reaches the model as exactly
the documented text (the same prompt, token for token, as that text typed in: the second
finds the first's whole prompt in the prefix cache), and a bad file is a 400 naming the
part while the server goes on serving."""

from __future__ import annotations

import base64

import openai
import pytest

from tests.conftest import MODEL
from tests.e2e.test_cancellation import reused
from tests.support.pdf import make_pdf


def ask(client, parts: list[dict]):
    return client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": parts}],
        temperature=0,
        max_completion_tokens=16,
    )


QUESTION = {"type": "text", "text": "What does the document say?"}


def test_a_pdf_is_read_as_its_text(server, client):
    pdf = make_pdf(["The launch code is BLUE HERON.", None])
    file_part = {
        "type": "file",
        "file": {"filename": "memo.pdf", "file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()},
    }
    typed = (
        '<file name="memo.pdf">\n--- page 1 ---\nThe launch code is BLUE HERON.\n--- page 2 ---\n(no text on this page)\n</file>'
    )
    with_file = ask(client, [QUESTION, file_part])
    same_prompt(server, with_file, lambda: ask(client, [QUESTION, {"type": "text", "text": typed}]))


def same_prompt(server, first, ask_second) -> None:
    """``ask_second()`` sends the text ``first`` should have become: the same prompt, whose
    tokens all but the last (its logits are computed again) come from the cache."""
    second, cached = reused(server, ask_second)
    assert first.usage.prompt_tokens == second.usage.prompt_tokens
    assert cached == second.usage.prompt_tokens - 1


def test_a_text_file_as_bare_base64_as_the_sdk_docs_show(server, client):
    file_part = {"type": "file", "file": {"filename": "notes.md", "file_data": base64.b64encode(b"# Notes\nbuy milk").decode()}}
    typed = '<file name="notes.md">\n# Notes\nbuy milk\n</file>'
    with_file = ask(client, [file_part, QUESTION])
    same_prompt(server, with_file, lambda: ask(client, [{"type": "text", "text": typed}, QUESTION]))


@pytest.mark.parametrize(
    "file,param,code",
    [
        ({"file_id": "file-123"}, "messages[0].content[1].file.file_id", "unsupported_file_reference"),
        (
            {"filename": "x.pdf", "file_data": "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7 junk").decode()},
            "messages[0].content[1].file.file_data",
            "invalid_file_data",
        ),
    ],
)
def test_a_bad_file_is_a_400_naming_the_part(client, file, param, code):
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, [QUESTION, {"type": "file", "file": file}])
    assert (info.value.param, info.value.code) == (param, code)
    assert ask(client, [QUESTION]).choices[0].finish_reason in ("stop", "length")
