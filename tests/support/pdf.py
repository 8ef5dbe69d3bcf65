"""Small PDFs made in the tests: pages of text (or blank pages, as a scan without a text
layer reads), optionally encrypted, written as a minimal PDF by hand."""

from __future__ import annotations

import io

import PIL.Image


def make_pdf(pages: list[str | None]) -> bytes:
    """One page per entry: its text in Helvetica, or no content at all for None."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page_ids = []
    pages_id = len(pages) * 2 + 2  # filled in below, after the pages and their contents
    for text in pages:
        lines = [] if text is None else text.split("\n")
        ops = b"BT /F1 12 Tf 72 720 Td 14 TL " + b"".join(b"(" + _escape(line) + b") Tj T* " for line in lines) + b"ET"
        stream = add(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_id, font, stream)
            )
        )
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref))
    return out.getvalue()


def pdf_with_scan(before: list[str], scan: PIL.Image.Image, after: list[str]) -> bytes:
    """Text pages, then a page that is only a picture (as a scanner makes it), then more text."""
    from pypdf import PdfReader, PdfWriter

    scanned = io.BytesIO()
    scan.save(scanned, "PDF", resolution=72.0)
    writer = PdfWriter()
    for part in (make_pdf(list(before)), scanned.getvalue(), make_pdf(list(after))):
        writer.append(PdfReader(io.BytesIO(part)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted(pdf: bytes, password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _escape(text: str) -> bytes:
    return text.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
