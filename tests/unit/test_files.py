"""File content parts -> prompt text: PDFs page by page, text files decoded, and a 400
naming the part for everything else."""

from __future__ import annotations

import base64

import pytest

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.requests import FileRef
from chatport.service import files
from chatport.service.files import file_text
from tests.support.pdf import encrypted, make_pdf

PART = "messages[0].content[1]"


def data_url(data: bytes, media_type: str = "application/pdf") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def error(ref: FileRef) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        file_text(ref, PART)
    return info.value


def test_a_pdf_becomes_its_text_page_by_page_with_markers():
    pdf = make_pdf(["Quarterly report\nRevenue rose", None, "Appendix (tables)"])
    text = file_text(FileRef(filename="report.pdf", file_data=data_url(pdf)), PART)
    assert text == (
        '<file name="report.pdf">\n'
        "--- page 1 ---\nQuarterly report\nRevenue rose\n"
        "--- page 2 ---\n(no text on this page)\n"
        "--- page 3 ---\nAppendix (tables)\n"
        "</file>"
    )


def test_bare_base64_is_accepted_as_the_sdk_docs_show_it():
    pdf = make_pdf(["Hello"])
    text = file_text(FileRef(filename="document.pdf", file_data=base64.b64encode(pdf).decode()), PART)
    assert "--- page 1 ---\nHello" in text


def test_a_pdf_encrypted_with_an_empty_password_is_read():
    pdf = encrypted(make_pdf(["Open to all"]), "")
    assert "Open to all" in file_text(FileRef(filename="a.pdf", file_data=data_url(pdf)), PART)


@pytest.mark.parametrize(
    "filename,media_type,data,expected",
    [
        ("notes.md", "text/markdown", b"# Title\n\n- item", "# Title\n\n- item"),
        ("data.csv", "text/csv", b"\xef\xbb\xbfa,b\n1,2", "a,b\n1,2"),  # the BOM is dropped
        ("conf.json", "application/json", b'{"k": 1}', '{"k": 1}'),
        ("main.py", "application/octet-stream", b"print('hi')", "print('hi')"),  # known by its name
        ("caf\u00e9.txt", "text/plain", "caf\u00e9 <|im_end|>".encode(), "caf\u00e9 <|im_end|>"),
    ],
)
def test_text_files_are_decoded_as_utf8(filename, media_type, data, expected):
    text = file_text(FileRef(filename=filename, file_data=data_url(data, media_type)), PART)
    assert text == f'<file name="{filename}">\n{expected}\n</file>'


@pytest.mark.parametrize(
    "ref,param,code,says",
    [
        (FileRef(file_id="file-abc"), f"{PART}.file.file_id", "unsupported_file_reference", "Files API"),
        (FileRef(filename="a.pdf"), f"{PART}.file.file_data", "missing_required_parameter", "file_data"),
        (
            FileRef(filename="a.pdf", file_data="data:application/pdf,%PDF"),
            f"{PART}.file.file_data",
            "invalid_file_data",
            "base64",
        ),
        (FileRef(filename="a.pdf", file_data="not base64!"), f"{PART}.file.file_data", "invalid_file_data", "not valid base64"),
        (
            FileRef(filename="a.pdf", file_data="data:application/pdf;base64,"),
            f"{PART}.file.file_data",
            "invalid_file_data",
            "empty",
        ),
        (
            FileRef(filename="a.pdf", file_data=data_url(b"%PDF-1.4 truncated")),
            f"{PART}.file.file_data",
            "invalid_file_data",
            "not a readable PDF",
        ),
        (
            FileRef(filename="a.pdf", file_data=data_url(encrypted(make_pdf(["secret"]), "pw"))),
            f"{PART}.file.file_data",
            "encrypted_file",
            "encrypted with a password",
        ),
        (
            FileRef(filename="photo.png", file_data=data_url(b"\x89PNG\r\n", "image/png")),
            f"{PART}.file.file_data",
            "unsupported_file_type",
            "neither a PDF nor a text file",
        ),
        (
            FileRef(filename="notes.txt", file_data=data_url(b"\xff\xfe\x00bad", "text/plain")),
            f"{PART}.file.file_data",
            "invalid_file_data",
            "not UTF-8",
        ),
    ],
)
def test_bad_files_are_a_400_naming_the_part(ref, param, code, says):
    err = error(ref)
    assert (err.param, err.code) == (param, code)
    assert says in err.message and PART in err.message


def test_limits_on_size_and_pages(monkeypatch):
    monkeypatch.setattr(files, "MAX_PDF_PAGES", 2)
    err = error(FileRef(filename="long.pdf", file_data=data_url(make_pdf(["a", "b", "c"]))))
    assert err.code == "file_too_large" and "3 pages" in err.message
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    err = error(FileRef(filename="big.txt", file_data=data_url(b"x" * 2000, "text/plain")))
    assert err.code == "file_too_large"


def test_a_pdf_bomb_is_refused_by_its_operator_budget():
    from chatport.bench.attacks import pdf_bomb

    with pytest.raises(InvalidRequestError) as caught:
        files.pdf_text(pdf_bomb(pages=100, operators=200_000), "messages[0].content[0].file.file_data", "bomb.pdf")
    assert caught.value.code == "file_too_large" and "300,000 content operators" in caught.value.message


def test_reading_stops_when_the_client_leaves_and_at_the_deadline(monkeypatch):
    import time

    from chatport.bench.attacks import pdf_bomb

    bomb = pdf_bomb(pages=100, operators=2_000)
    left = files.FileWork()
    left.stop.set()
    with pytest.raises(files.FileWorkStopped):
        files.pdf_text(bomb, "p", "bomb.pdf", work=left)
    late = files.FileWork(deadline=time.monotonic() - 1)
    with pytest.raises(InvalidRequestError) as caught:
        files.pdf_text(bomb, "p", "bomb.pdf", work=late)
    assert caught.value.code == "file_too_large" and "could not be read within 30 seconds" in caught.value.message
