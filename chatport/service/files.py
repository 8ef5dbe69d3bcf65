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

(text files have no page markers). A PDF page with no text, a scan, is rendered with
PDFium and placed there as an image when the model sees images (as OpenAI gives vision
models both the text and the page images); otherwise it is marked ``(no text on this
page)``. Uploaded files (``file_id``) need the Files API, which this
server does not offer. Every failure is a 400 naming the part.

Extraction is CPU work: callers run it in the files pool, never on the event loop; a PDF's
text is read by pypdf in a child process at the lowest priority (``LowPriorityProcess``),
whose pure-Python work would otherwise hold up every stream. Both are bounded
(``FileWork``): a PDF may decompress to at most ``MAX_PDF_CONTENT_BYTES`` of page
content and run at most ``MAX_PDF_OPERATORS`` content operators, all of a request's files
must be read within ``FILE_SECONDS``, and the work stops when the client leaves. A 16 KB
PDF whose 100 pages share one deflated stream of operators asked for minutes of CPU.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.prompt import Image
from chatport.protocol.requests import FileRef
from chatport.service.dataurl import DATA_URL, PayloadError, decode_payload
from chatport.service.images import ImagePlacer, image_of
from chatport.service.workers import LowPriorityProcess, WorkStopped

# pypdf logs what it repairs in broken files: a client's bad PDF is a 400, not a server warning.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MAX_FILE_BYTES = 20 * 1024 * 1024  # decoded size of one file
MAX_PDF_PAGES = 100  # pages of one PDF, as OpenAI limits file inputs
MAX_SCANNED_PAGES = 20  # pages without text rendered as images, per file (the rest say they have no text)
SCAN_SIDE = 1024  # pixels on a rendered page's long side
MAX_PDF_CONTENT_BYTES = 32 * 1024 * 1024  # page content one PDF may decompress to, all pages together
MAX_PDF_OPERATORS = 300_000  # content operators one PDF may run (a dense page has a few thousand; ~4 s of a worker)
FILE_SECONDS = 30.0  # to read all of a request's files
_pdfium_lock = threading.Lock()


@dataclass
class FileWork:
    """The budget of one request's file reading: a deadline, and a stop flag set when its
    client leaves. Checked as the work goes, between pages and every few operators."""

    stop: threading.Event = field(default_factory=threading.Event)
    deadline: float = field(default_factory=lambda: time.monotonic() + FILE_SECONDS)

    def check(self, param: str, name: str) -> None:
        if self.stop.is_set():
            raise FileWorkStopped
        if time.monotonic() > self.deadline:
            raise InvalidRequestError(
                f"Invalid file in '{param}': {name!r} could not be read within {FILE_SECONDS:g} seconds "
                "(the request's files together take too long to read).",
                param=param,
                code="file_too_large",
            )


class FileWorkStopped(Exception):
    """The client left while its files were being read."""


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


def file_text(ref: FileRef, param: str, images: ImagePlacer | None = None, work: FileWork | None = None) -> str:
    """The part's text as the prompt holds it; ``param`` names the part in errors
    (``messages[0].content[1]``). ``images``: the model sees images, so PDF pages without
    text (scans) are rendered and placed as images where their text would be. ``work``:
    the request's budget for reading files."""
    work = work or FileWork()
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
        body = pdf_text(data, f"{param}.file.file_data", name, images, work)
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
    match = DATA_URL.match(file_data)
    if match:
        if not match.group("b64"):
            raise _bad_data(param, "the data URL is not base64-encoded (expected ';base64,')")
        media_type = (match.group("type") or "").lower() or None
        payload = file_data[match.end() :]
    elif file_data.startswith("data:"):
        raise _bad_data(param, "it is not a valid data URL")
    try:
        return media_type, decode_payload(payload, MAX_FILE_BYTES)
    except PayloadError as exc:
        if exc.kind == "too_large":
            raise InvalidRequestError(
                f"Invalid file data in '{param}': the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.",
                param=param,
                code="file_too_large",
            ) from None
        raise _bad_data(param, "the file is empty" if exc.kind == "empty" else "it is not valid base64") from None


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


def pdf_text(data: bytes, param: str, name: str, images: ImagePlacer | None = None, work: FileWork | None = None) -> str:
    work = work or FileWork()

    def invalid(why: str, code: str = "invalid_file_data") -> InvalidRequestError:
        return InvalidRequestError(f"Invalid file in '{param}': {name!r} {why}.", param=param, code=code)

    work.check(param, name)
    try:
        limits = PdfLimits(MAX_PDF_PAGES, MAX_PDF_CONTENT_BYTES, MAX_PDF_OPERATORS)
        outcome = _reader().call(pdf_pages, data, work.deadline, limits, stop=work.stop, timeout=FILE_SECONDS)
    except WorkStopped:
        work.check(param, name)  # the deadline, said as such
        raise FileWorkStopped from None
    kind, detail = outcome
    if kind == "encrypted":
        raise invalid("is encrypted with a password", "encrypted_file")
    if kind == "pages_over":
        raise invalid(f"has {detail} pages; at most {MAX_PDF_PAGES} are accepted", "file_too_large")
    if kind == "too_much":
        raise InvalidRequestError(
            f"Invalid file in '{param}': {name!r} holds {detail} (a PDF may decompress to at most "
            f"{MAX_PDF_CONTENT_BYTES // (1024 * 1024)} MB and run at most {MAX_PDF_OPERATORS:,} operators).",
            param=param,
            code="file_too_large",
        )
    if kind == "late":
        work.deadline = 0.0
        work.check(param, name)
    if kind == "unreadable":
        raise invalid("is not a readable PDF")
    texts: list[str] = detail
    if not texts:
        raise invalid("has no pages")
    scans = [n for n, text in enumerate(texts) if not text][:MAX_SCANNED_PAGES] if images is not None else []
    work.check(param, name)
    try:
        rendered = dict(zip(scans, render_pages(data, scans), strict=True)) if scans else {}
    except Exception:  # PDFium could not render what pypdf read: the pages stay without text
        rendered = {}
    pages = []
    for number, text in enumerate(texts):
        body = images.page(param, rendered[number]) if number in rendered and images is not None else text
        pages.append(f"--- page {number + 1} ---\n{body or '(no text on this page)'}")
    return "\n".join(pages)


@functools.cache
def _reader() -> LowPriorityProcess:
    return LowPriorityProcess("pdf-reader")


def start_pdf_reader() -> None:
    """At start-up: the first PDF then does not wait for the reader's process to start."""
    _reader().start()


@dataclass(frozen=True)
class PdfLimits:
    pages: int
    content_bytes: int
    operators: int


def pdf_pages(data: bytes, deadline: float, limits: PdfLimits) -> tuple[str, Any]:
    """In the PDF reader's process: (``"pages"``, each page's text), or why not:
    ``encrypted``, ``pages_over`` (how many), ``too_much`` (what), ``late``, ``unreadable``."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    budget = _PdfBudget(deadline, limits)
    try:
        # pypdf's own caps, per stream, under ours per file.
        with apply_configuration(
            stream_parsing_work_maximum_count=2 * limits.operators, zlib_maximum_output_length=limits.content_bytes
        ):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                # Many PDFs are encrypted with an empty user password: readable by anyone.
                try:
                    if not reader.decrypt(""):
                        return "encrypted", None
                except (FileNotDecryptedError, DependencyError, NotImplementedError):
                    return "encrypted", None
            n_pages = len(reader.pages)
            if n_pages > limits.pages:
                return "pages_over", n_pages
            texts = []
            for page in reader.pages:
                budget.content(page)
                texts.append((page.extract_text(visitor_operand_before=budget.operator) or "").strip())
    except _OverBudget as over:
        return over.outcome
    except LimitReachedError:
        return "too_much", "more page content than pypdf reads in one stream"
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        return "unreadable", None
    return "pages", texts


class _OverBudget(Exception):
    def __init__(self, kind: str, detail: str | None = None) -> None:
        self.outcome = (kind, detail)


class _PdfBudget:
    """What one PDF has spent: decompressed page content, content operators, time."""

    CHECK_EVERY = 1000  # operators between looks at the clock

    def __init__(self, deadline: float, limits: PdfLimits) -> None:
        self.deadline = deadline
        self.limits = limits
        self.bytes = 0
        self.operators = 0

    def content(self, page: Any) -> None:
        """Count the page's content streams, decompressed (pypdf keeps them for the extraction)."""
        if time.monotonic() > self.deadline:
            raise _OverBudget("late")
        contents = page.get("/Contents")
        streams = contents.get_object() if contents is not None else None
        for stream in streams if isinstance(streams, list) else [streams]:
            data = stream.get_object().get_data() if stream is not None else b""
            self.bytes += len(data)
        if self.bytes > self.limits.content_bytes:
            raise _OverBudget("too_much", f"more than {self.limits.content_bytes // (1024 * 1024)} MB of page content")

    def operator(self, _operator: Any, _operands: Any, _cm: Any, _tm: Any) -> None:
        self.operators += 1
        if self.operators % self.CHECK_EVERY == 0 and time.monotonic() > self.deadline:
            raise _OverBudget("late")
        if self.operators > self.limits.operators:
            raise _OverBudget("too_much", f"more than {self.limits.operators:,} content operators")


def render_pages(data: bytes, numbers: list[int]) -> list[Image]:
    """Pages (0-based) rendered to RGB with PDFium, the long side at SCAN_SIDE pixels."""
    import pypdfium2 as pdfium

    out = []
    with _pdfium_lock:  # PDFium is not thread-safe, and the prompt pool has several threads
        document = pdfium.PdfDocument(data)
        try:
            for number in numbers:
                page = document[number]
                width, height = page.get_size()
                bitmap = page.render(scale=min(SCAN_SIDE / max(width, height, 1.0), 4.0))
                out.append(image_of(bitmap.to_pil().convert("RGB")))
        finally:
            document.close()
    return out


def _attribute(name: str) -> str:
    return name.replace("&", "&amp;").replace('"', "&quot;").replace("\n", " ")
