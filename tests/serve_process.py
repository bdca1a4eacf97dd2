"""A real `baco serve` process on 127.0.0.1 for tests: started on a free port (--port 0),
ready once it prints its URL, stopped with SIGINT (Ctrl-C) like a user stops it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

READY_SECONDS = 120  # loading a tiny pair takes a second or two; a busy CI machine more


@dataclass
class ServerProcess:
    process: subprocess.Popen
    url: str  # the base URL for OpenAI clients, http://127.0.0.1:PORT/v1
    stdout: Path
    stderr: Path

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def interrupt(self, timeout: float = 60) -> int:
        """Send Ctrl-C; return the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()


def start_server(args: list[str], folder: Path) -> ServerProcess:
    """Start `baco serve ARGS --port 0` and wait until it listens."""
    folder.mkdir(parents=True, exist_ok=True)
    stdout, stderr = folder / "stdout.txt", folder / "stderr.txt"
    with open(stdout, "w") as out, open(stderr, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "baco_local", "serve", *args, "--port", "0"],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        for line in stdout.read_text().splitlines():
            if " at http://" in line:
                url = line.rsplit(" at ", 1)[1].strip()
                return ServerProcess(process, url, stdout, stderr)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"baco serve did not start:\n{stdout.read_text()}{stderr.read_text()}")


def stop_server(server: ServerProcess) -> int:
    """Stop the server if it still runs; return its exit code."""
    if server.process.poll() is None:
        try:
            return server.interrupt()
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
            raise
    return server.process.returncode


def streamed_text(client, started=None, **kw) -> str:
    """One streamed chat completion's text (`started` is set at its first chunk)."""
    parts = []
    for chunk in client.chat.completions.create(stream=True, **kw):
        if started is not None:
            started.set()
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)
