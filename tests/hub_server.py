"""A stand-in for the Hugging Face hub's file endpoint, on 127.0.0.1 only.

It answers HEAD and GET on /{org}/{repo}/resolve/{revision}/{file} the way the hub
does for what huggingface_hub needs: `X-Repo-Commit`, `ETag` (the sha256, as for
LFS files), `Content-Length`, `Range: bytes=N-` with 206 and `Content-Range` (416
past the end), and 404 with `X-Error-Code` (RepoNotFound, RevisionNotFound,
EntryNotFound). It can also misbehave on request: cut a transfer after N bytes, stall
one after N bytes until released, ignore Range (answer 200 with the whole file), or
serve corrupted bytes under the right checksum; `add` again to publish a new version
(a new etag). Every request is logged with its Range header. Use it as a context
manager and point HF_ENDPOINT at `.url`.
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
    stalls: list[int] = field(default_factory=list)  # next GETs hang after this many bytes
    corrupt: bool = False  # serve one flipped byte under the same checksum
    ignore_range: bool = False  # answer every GET with 200 and the whole file


class HubServer:
    def __init__(self):
        self.files: dict[tuple[str, str], HostedFile] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self._lock = threading.Lock()
        self.stalled = threading.Event()  # set once a stalled GET has sent its bytes
        self.release = threading.Event()  # set to let stalled GETs hang up
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

    def stall_next_get(self, repo: str, filename: str, after_bytes: int) -> None:
        """The next GET of this file sends `after_bytes`, sets `stalled`, then waits for
        `release` (or 30 s) before hanging up: a client can be killed mid-transfer."""
        self.files[(repo, filename)].stalls.append(after_bytes)

    def corrupt(self, repo: str, filename: str) -> None:
        self.files[(repo, filename)].corrupt = True

    def ignore_range(self, repo: str, filename: str) -> None:
        self.files[(repo, filename)].ignore_range = True

    def sha(self, filename: str) -> str:
        """The sha256 (and ETag) of the hosted file with this name."""
        (hosted,) = [f for (_, name), f in self.files.items() if name == filename]
        return hosted.sha256

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
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up mid-answer is what these tests do on purpose


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
        asked = self.headers.get("Range")
        start = _range_start(asked) if send_body and not hosted.ignore_range else 0
        if start >= len(data) > 0:
            return self._error(416, None)
        body = data[start:]
        self.send_response(206 if asked and start == _range_start(asked) else 200)
        if self._status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hosted.sha256}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self._send_body(hosted, body)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def _send_body(self, hosted: HostedFile, body: bytes) -> None:
        cut = hosted.cuts.pop(0) if hosted.cuts else None
        stall = hosted.stalls.pop(0) if hosted.stalls and cut is None else None
        try:
            if cut is None and stall is None:
                self.wfile.write(body)
                return
            self.wfile.write(body[: cut if cut is not None else stall])
            self.wfile.flush()
            if stall is not None:
                self.hub.stalled.set()
                self.hub.release.wait(timeout=30)
            self.connection.shutdown(socket.SHUT_RDWR)  # the peer sees a truncated body
        except OSError:
            pass  # the client went away first (it was killed, or gave up)
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
