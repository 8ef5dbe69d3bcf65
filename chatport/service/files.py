"""``file`` content parts -> prompt text.

A file arrives inline as ``file_data``: a base64 data URL (``data:application/pdf;base64,...``)
or bare base64, as the SDK docs show both. PDFs become their text, page by page in order,
extracted with pypdf; text-like files (plain text, Markdown, CSV, JSON, XML, YAML, source
code) are decoded as UTF-8. Either way the part becomes this text in the message, in place::

    <file name="report.pdf">
    --- page 1 ---
    ...
    --- page 2 ---
    ...
    </file>

(text files have no page markers; a PDF page with no text, a scan, is marked
``(no text on this page)``). Uploaded files (``file_id``) need the Files API, which this
server does not offer. Every failure is a 400 naming the part.

Extraction is CPU work: callers run it in the prompt pool, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import re

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.requests import FileRef

# pypdf logs what it repairs in broken files: a client's bad PDF is a 400, not a server warning.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MAX_FILE_BYTES = 20 * 1024 * 1024  # decoded size of one file
MAX_PDF_PAGES = 100  # pages of one PDF, as OpenAI limits file inputs

TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/javascript",
        "application/x-python",
        "application/x-sh",
        "application/sql",
        "application/toml",
    }
)
TEXT_EXTENSIONS = frozenset(
    [
        ".txt",
        ".md",
        ".markdown",
        ".rst",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".xml",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".log",
        ".html",
        ".htm",
        ".css",
        ".py",
        ".js",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".swift",
        ".kt",
        ".scala",
        ".sh",
        ".sql",
        ".r",
        ".m",
        ".tex",
    ]
)

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.ASCII)


def file_text(ref: FileRef, param: str) -> str:
    """The part's text as the prompt holds it; ``param`` names the part in errors
    (``messages[0].content[1]``)."""
    if ref.file_id is not None and ref.file_data is None:
        raise InvalidRequestError(
            f"Invalid file reference in '{param}': file_id {ref.file_id!r} refers to the Files API, which this server "
            "does not offer. Send the file inline as 'file_data' (a base64 data URL, e.g. "
            "'data:application/pdf;base64,...') with its 'filename'.",
            param=f"{param}.file.file_id",
            code="unsupported_file_reference",
        )
    if not ref.file_data:
        raise InvalidRequestError(
            f"Missing file data in '{param}': give 'file_data' (a base64 data URL) and 'filename'.",
            param=f"{param}.file.file_data",
            code="missing_required_parameter",
        )
    media_type, data = _decode(ref.file_data, f"{param}.file.file_data")
    name = ref.filename or "file"
    if media_type == "application/pdf" or data.startswith(b"%PDF-"):
        body = pdf_text(data, f"{param}.file.file_data", name)
    elif _is_text(media_type, name):
        body = _utf8(data, f"{param}.file.file_data", name)
    else:
        raise InvalidRequestError(
            f"Invalid file in '{param}': {name!r} ({media_type or 'unknown type'}) is neither a PDF nor a text file. "
            "Supported: PDF, and text files (plain text, Markdown, CSV, JSON, XML, YAML, source code).",
            param=f"{param}.file.file_data",
            code="unsupported_file_type",
        )
    return f'<file name="{_attribute(name)}">\n{body}\n</file>'


def _decode(file_data: str, param: str) -> tuple[str | None, bytes]:
    """(media type or None, bytes) of a data URL or of bare base64."""
    media_type, payload = None, file_data
    match = _DATA_URL.match(file_data)
    if match:
        if not match.group("b64"):
            raise _bad_data(param, "the data URL is not base64-encoded (expected ';base64,')")
        media_type = (match.group("type") or "").lower() or None
        payload = file_data[match.end() :]
    elif file_data.startswith("data:"):
        raise _bad_data(param, "it is not a valid data URL")
    # Decoded size from the encoded length: refused before any decoding.
    if len(payload) * 3 // 4 > MAX_FILE_BYTES:
        raise InvalidRequestError(
            f"Invalid file data in '{param}': the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.",
            param=param,
            code="file_too_large",
        )
    try:
        data = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _bad_data(param, "it is not valid base64") from None
    if not data:
        raise _bad_data(param, "the file is empty")
    return media_type, data


def _bad_data(param: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid file data in '{param}': {why}. Expected a base64-encoded data URL, e.g. 'data:application/pdf;base64,JVBERi0x...'.",
        param=param,
        code="invalid_file_data",
    )


def _is_text(media_type: str | None, name: str) -> bool:
    if media_type is not None and (media_type.startswith("text/") or media_type in TEXT_TYPES):
        return True
    return os.path.splitext(name)[1].lower() in TEXT_EXTENSIONS


def _utf8(data: bytes, param: str, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            f"Invalid file in '{param}': {name!r} is not UTF-8 text (undecodable byte at offset {exc.start}).",
            param=param,
            code="invalid_file_data",
        ) from None


def pdf_text(data: bytes, param: str, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

    def invalid(why: str, code: str = "invalid_file_data") -> InvalidRequestError:
        return InvalidRequestError(f"Invalid file in '{param}': {name!r} {why}.", param=param, code=code)

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs are encrypted with an empty user password: readable by anyone.
            try:
                if not reader.decrypt(""):
                    raise invalid("is encrypted with a password", "encrypted_file")
            except (FileNotDecryptedError, DependencyError, NotImplementedError):
                raise invalid("is encrypted with a password", "encrypted_file") from None
        n_pages = len(reader.pages)
        if n_pages > MAX_PDF_PAGES:
            raise invalid(f"has {n_pages} pages; at most {MAX_PDF_PAGES} are accepted", "file_too_large")
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            pages.append(f"--- page {number} ---\n{text or '(no text on this page)'}")
    except InvalidRequestError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        raise invalid("is not a readable PDF") from None
    if not pages:
        raise invalid("has no pages")
    return "\n".join(pages)


def _attribute(name: str) -> str:
    return name.replace("&", "&amp;").replace('"', "&quot;").replace("\n", " ")
