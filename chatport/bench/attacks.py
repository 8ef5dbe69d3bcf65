"""Requests that ask a server for far more work than they are worth, as the reliability
probe of issue 26 sent them: the soak mixes them into its load (``chatport bench soak
MINUTES --attacks``) and the tests send each one alone. A well-bounded server refuses
each by its size or cuts it by its budget while small requests go on being served."""

from __future__ import annotations

import asyncio
import base64
import io
import zlib
from typing import Any

import httpx


def rule_chain(rules: int) -> str:
    """A Lark grammar whose rules each refer to the next: llguidance's compiler recursed once
    per rule (5,000 overflowed an 8 MiB stack and killed the process)."""
    return "\n".join(["start: r0", *(f"r{i}: r{i + 1}" for i in range(rules)), f'r{rules}: "yes"'])


def definition_chain(definitions: int) -> dict[str, Any]:
    """A JSON schema whose definitions each refer to the next (~9 KiB of compiler stack each)."""
    defs: dict[str, Any] = {
        f"d{i}": {"type": "object", "properties": {"a": {"$ref": f"#/$defs/d{i + 1}"}}, "required": ["a"]}
        for i in range(definitions - 1)
    }
    defs[f"d{definitions - 1}"] = {"type": "string", "maxLength": 3}
    return {"$ref": "#/$defs/d0", "$defs": defs}


def custom_tool(definition: str, syntax: str = "lark") -> dict[str, Any]:
    grammar = {"syntax": syntax, "definition": definition}
    return {"type": "custom", "custom": {"name": "answer", "format": {"type": "grammar", "grammar": grammar}}}


def pdf_bomb(pages: int = 100, operators: int = 200_000) -> bytes:
    """A few kilobytes that ask for minutes of CPU: every page shows one deflated content
    stream of ``operators`` text operators."""
    ops = b"BT /F1 1 Tf " + b"(a) Tj " * operators + b"ET"
    packed = zlib.compress(ops, 9)
    objects = [
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream",
    ]
    pages_id = 3 + pages
    page = b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 1 0 R >> >> /Contents 2 0 R >>"
    objects += [page % pages_id] * pages
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    objects.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages))
    objects.append(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, len(objects), xref))
    return out.getvalue()


def file_part(pdf: bytes, name: str = "bomb.pdf") -> dict[str, Any]:
    data = "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    return {"type": "file", "file": {"filename": name, "file_data": data}}


def bodies(model: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each attack as (path under the server's root, JSON body)."""
    user = [{"role": "user", "content": "Say yes."}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    return {
        "rule-chain": (
            "/v1/chat/completions",
            {"model": model, "messages": user, "tools": [custom_tool(rule_chain(5000))], "tool_choice": "required"},
        ),
        "definition-chain": (
            "/v1/chat/completions",
            {
                "model": model,
                "messages": user,
                "response_format": {"type": "json_schema", "json_schema": {"name": "d", "schema": definition_chain(1001)}},
            },
        ),
        "10k-tools": ("/v1/chat/completions", {"model": model, "messages": user, "tools": [tool] * 10_000}),
        "100k-parts": (
            "/v1/chat/completions",
            {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}] * 100_000}]},
        ),
        "pdf-bomb": (
            "/v1/chat/completions",
            {
                "model": model,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Sum up."}, file_part(pdf_bomb())]}],
            },
        ),
        "markdown-bomb": ("/ui/markdown", {"text": "[" * 64 * 1024}),
    }


async def trickle(host: str, port: int, seconds: float) -> bool:
    """One connection that sends a body a byte a second (slowloris), for ``seconds`` or until
    the server cuts it off; returns whether it did."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        for _ in range(int(seconds)):
            writer.write(b" ")
            await writer.drain()
            try:
                await asyncio.wait_for(reader.read(1), 1.0)
                return True  # answered (408), or closed: cut off
            except TimeoutError:
                continue
    except (ConnectionError, OSError):
        return True
    finally:
        writer.close()
    return False


async def send(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> int:
    return (await http.post(path, json=body)).status_code
