"""A stand-in for the Hugging Face Hub on loopback: the routes huggingface_hub calls to
list a repo (``/api/models/OWNER/REPO/tree/REV``) and to download a file
(``/OWNER/REPO/resolve/REV/PATH``: HEAD with ETag and X-Repo-Commit, GET with ranges),
with the Hub's error headers. Selected by setting ``HF_ENDPOINT`` to its URL."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeHub:
    repos: dict[str, dict[str, str | bytes]]  # repo -> path -> a file on disk, or the bytes
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    cut_next_download_at: int | None = None  # the next GET breaks off after this many bytes

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def content(self, repo: str, path: str) -> bytes:
        source = self.repos[repo][path]
        if isinstance(source, bytes):
            return source
        with open(source, "rb") as f:
            return f.read()

    def size(self, repo: str, path: str) -> int:
        source = self.repos[repo][path]
        return len(source) if isinstance(source, bytes) else os.path.getsize(source)

    def etag(self, repo: str, path: str) -> str:
        source = self.repos[repo][path]
        if isinstance(source, bytes):
            return hashlib.sha256(source).hexdigest()
        stat = os.stat(source)
        return hashlib.sha256(f"{source}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"hub": hub})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._route(body=True)

    def do_HEAD(self) -> None:
        self._route(body=False)

    def _route(self, *, body: bool) -> None:
        path = unquote(urlparse(self.path).path)
        self.hub.requests.append((self.command, path, self.headers.get("Range")))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            self._tree("/".join(parts[2:4]))
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._file("/".join(parts[:2]), "/".join(parts[4:]), body=body)
        else:
            self._error(404, "RepoNotFound", "Not found")

    def _error(self, status: int, code: str, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _tree(self, repo: str) -> None:
        if repo not in self.hub.repos:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        entries = [
            {"type": "file", "path": p, "size": self.hub.size(repo, p), "oid": self.hub.etag(repo, p)[:40]}
            for p in sorted(self.hub.repos[repo])
        ]
        data = json.dumps(entries).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _file(self, repo: str, name: str, *, body: bool) -> None:
        if repo not in self.hub.repos:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if name not in self.hub.repos[repo]:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        size = self.hub.size(repo, name)
        start = 0
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
            start = int(ranged[len("bytes=") :].split("-", 1)[0] or 0)
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{self.hub.etag(repo, name)}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        if not body:
            return
        data = self.hub.content(repo, name)[start:]
        cut, self.hub.cut_next_download_at = self.hub.cut_next_download_at, None
        if cut is not None:
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the connection breaks mid-file
            return
        self.wfile.write(data)
