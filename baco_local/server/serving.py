"""Run the app under uvicorn until Ctrl-C (or SIGTERM), then shut down cleanly.

On the signal the server stops accepting connections, the answer being generated ends
with what it has (finish_reason "stop"; "cancelled" in the baco object), waiting
requests get 503, the models are freed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

import uvicorn

from ..core.settings import GenerationSettings
from ..errors import BacoError
from .app import create_app
from .model import PairHost
from .settings import ServerSettings

GRACE_SECONDS = 10  # at most this long for responses still being sent after a signal


def serve(pair, defaults: GenerationSettings, settings: ServerSettings, *, verbose=False) -> int:
    """Serve `pair` until a signal; return the exit code (0). Closes the pair."""
    host = PairHost(pair, defaults, settings.queue)
    config = uvicorn.Config(
        create_app(host, settings),
        host=settings.host,
        port=settings.port,
        log_level="info" if verbose else "warning",
        access_log=verbose,
        lifespan="off",
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    server = _Server(config, on_ready=lambda url: _announce(url, host), on_exit=host.stop)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot listen (it logged why, above)
        if server.started:
            raise
        raise BacoError(
            f"Could not listen on {settings.host} port {settings.port}.",
            "pick another --port (0 takes a free one), or stop the program that uses it",
        ) from None
    finally:
        host.close()
    sys.stderr.write("baco serve: stopped\n")
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server, telling us when it listens and when a signal asks it to stop.

    uvicorn re-raises the signal once it has shut down (so a Ctrl-C would end as a
    KeyboardInterrupt); a shutdown asked for and completed is a success here, so the
    signal is handled without being recorded for that.
    """

    def __init__(self, config, *, on_ready: Callable[[str], None], on_exit: Callable[[], None]):
        super().__init__(config)
        self._on_ready = on_ready
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready(_url(self))

    def handle_exit(self, sig: int, frame) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for responses
        self.should_exit = True
        if self._loop is not None:  # a signal handler must not touch the loop's state
            self._loop.call_soon_threadsafe(self._on_exit)


def _url(server: uvicorn.Server) -> str:
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/v1"


def _announce(url: str, host: PairHost) -> None:
    print(f"baco serve: {host.pair.label} at {url}", flush=True)
    print(f"  models: {host.model_id} (and {host.model_id}:<router>)", flush=True)
    print("  Ctrl-C stops", flush=True)
