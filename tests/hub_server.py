"""A stand-in for the Hugging Face hub's file endpoint, on 127.0.0.1 only.

It answers HEAD and GET on /{org}/{repo}/resolve/{revision}/{file} the way the hub
does for what huggingface_hub needs: `X-Repo-Commit`, `ETag` (the sha256, as for
LFS files), `Content-Length`, `Range: bytes=N-` with 206 and `Content-Range`, and
404 with `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound). It can also
misbehave on request: cut a transfer after N bytes, or serve corrupted bytes under
the right checksum. Use it as a context manager and point HF_ENDPOINT at `.url`.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HostedFile:
    data: bytes
    sha256: str
    cuts: list[int] = field(default_factory=list)  # next GETs stop after this many bytes
    corrupt: bool = False  # serve one flipped byte under the same checksum


class HubServer:
    def __init__(self):
        self.files: dict[tuple[str, str], HostedFile] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    # --- content -------------------------------------------------------------------

    def add(self, repo: str, filename: str, data: bytes) -> str:
        """Host a file; returns its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        self.files[(repo, filename)] = HostedFile(data, sha)
        return sha

    def cut_next_get(self, repo: str, filename: str, after_bytes: int) -> None:
        """The next GET of this file sends its headers, then `after_bytes`, then hangs up."""
        self.files[(repo, filename)].cuts.append(after_bytes)

    def corrupt(self, repo: str, filename: str) -> None:
        self.files[(repo, filename)].corrupt = True

    def gets(self, filename: str) -> list[str | None]:
        """The Range header of each GET of this file so far (None: the whole file)."""
        with self._lock:
            return [
                rng
                for method, path, rng in self.requests
                if method == "GET" and path.endswith("/" + filename)
            ]

    # --- lifecycle -----------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds: no test connection may hang the suite
    hub: HubServer

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        with self.hub._lock:
            self.hub.requests.append((self.command, self.path, self.headers.get("Range")))
        parts = unquote(self.path.split("?")[0]).strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(404, None)
        repo, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        if not any(r == repo for r, _ in self.hub.files):
            return self._error(404, "RepoNotFound")
        if revision not in ("main", COMMIT):
            return self._error(404, "RevisionNotFound")
        hosted = self.hub.files.get((repo, filename))
        if hosted is None:
            return self._error(404, "EntryNotFound")
        self._send_file(hosted, send_body)

    def _send_file(self, hosted: HostedFile, send_body: bool) -> None:
        data = hosted.data
        if hosted.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = _range_start(self.headers.get("Range")) if send_body else 0
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hosted.sha256}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not send_body:
            return
        cut = hosted.cuts.pop(0) if hosted.cuts else None
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)  # the peer sees a truncated body
        self.close_connection = True

    def _error(self, status: int, code: str | None) -> None:
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        if code == "EntryNotFound":
            self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    return int(header.removeprefix("bytes=").split("-")[0] or 0)
