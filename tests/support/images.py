"""Small real image files made by the tests (Pillow), and a local HTTP server that serves
them, redirects and misbehaves on request."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import PIL.Image

# Four flat blocks of colour: every format (GIF's palette, lossless WebP) keeps them exactly.
COLOURS = [(220, 40, 40), (40, 180, 60), (30, 60, 200), (250, 250, 250)]


def picture(width: int = 48, height: int = 32, shift: int = 0) -> PIL.Image.Image:
    image = PIL.Image.new("RGB", (width, height))
    for x in range(width):
        for y in range(height):
            image.putpixel((x, y), COLOURS[(2 * (y >= height // 2) + (x >= width // 2) + shift) % 4])
    return image


def encode(image: PIL.Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def animated_gif() -> bytes:
    """Two frames: the picture, then the same blocks shifted (only the first counts)."""
    buf = io.BytesIO()
    picture().save(buf, "GIF", save_all=True, append_images=[picture(shift=1)], duration=100, loop=0)
    return buf.getvalue()


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class ImageHost:
    """A loopback HTTP server; ``routes`` maps a path to a handler; ``hits`` lists paths asked."""

    port: int
    routes: dict[str, Route]
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def send(handler: BaseHTTPRequestHandler, body: bytes, kind: str = "image/png", status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(to: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@contextmanager
def image_host(routes: dict[str, Route] | None = None, bind: str = "127.0.0.1") -> Iterator[ImageHost]:
    host = ImageHost(0, dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host.hits.append(self.path)
            route = host.routes.get(self.path)
            if route is None:
                send(self, b"no such image", "text/plain", 404)
            else:
                route(self)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer((bind, 0), Handler)
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()
