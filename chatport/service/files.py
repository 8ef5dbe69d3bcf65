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

Extraction is CPU work: callers run it in the prompt pool, never on the event loop.
"""

from __future__ import annotations

import io
import logging
import os
import threading

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.prompt import Image
from chatport.protocol.requests import FileRef
from chatport.service.dataurl import DATA_URL, PayloadError, decode_payload
from chatport.service.images import ImagePlacer, image_of

# pypdf logs what it repairs in broken files: a client's bad PDF is a 400, not a server warning.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MAX_FILE_BYTES = 20 * 1024 * 1024  # decoded size of one file
MAX_PDF_PAGES = 100  # pages of one PDF, as OpenAI limits file inputs
MAX_SCANNED_PAGES = 20  # pages without text rendered as images, per file (the rest say they have no text)
SCAN_SIDE = 1024  # pixels on a rendered page's long side
_pdfium_lock = threading.Lock()

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


def file_text(ref: FileRef, param: str, images: ImagePlacer | None = None) -> str:
    """The part's text as the prompt holds it; ``param`` names the part in errors
    (``messages[0].content[1]``). ``images``: the model sees images, so PDF pages without
    text (scans) are rendered and placed as images where their text would be."""
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
        body = pdf_text(data, f"{param}.file.file_data", name, images)
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


def pdf_text(data: bytes, param: str, name: str, images: ImagePlacer | None = None) -> str:
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
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
        scans = [n for n, text in enumerate(texts) if not text][:MAX_SCANNED_PAGES] if images is not None else []
        rendered = dict(zip(scans, render_pages(data, scans), strict=True)) if scans else {}
        pages = []
        for number, text in enumerate(texts):
            body = images.page(param, rendered[number]) if number in rendered and images is not None else text
            pages.append(f"--- page {number + 1} ---\n{body or '(no text on this page)'}")
    except InvalidRequestError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        raise invalid("is not a readable PDF") from None
    if not pages:
        raise invalid("has no pages")
    return "\n".join(pages)


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
