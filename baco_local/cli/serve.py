"""`baco serve`: an OpenAI-compatible HTTP server over one pair (see baco_local/server)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import BacoError
from ..server.settings import ServerSettings  # a plain dataclass: imports no server stack
from . import common


def register(commands) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve a pair over an OpenAI-compatible HTTP API",
        description="Serve a pair at /v1/chat/completions, /v1/completions and /v1/models, "
        "for any OpenAI client; every routing and sampling option below is also a request "
        "field of the same name (top_p for --top-p). The options are the defaults for "
        "requests that leave a field out. Ctrl-C ends the answer "
        "in progress with what it has and exits 0.",
    )
    common.add_pair_options(parser)
    common.add_generation_options(parser)
    net = parser.add_argument_group("server")
    net.add_argument(
        "--host",
        default=ServerSettings.host,
        help="address to listen on (default %(default)s: this machine only)",
    )
    net.add_argument(
        "--port",
        type=int,
        default=ServerSettings.port,
        help="port (default %(default)s; 0 takes a free one)",
    )
    net.add_argument(
        "--api-key",
        metavar="KEY",
        default=os.environ.get("BACO_API_KEY"),
        help="require `Authorization: Bearer KEY` on every route but /health "
        "(default: $BACO_API_KEY, else no key)",
    )
    net.add_argument(
        "--queue",
        type=int,
        default=ServerSettings.queue,
        metavar="N",
        help="requests that may wait while --parallel others are answered; more get "
        "HTTP 429 (default %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    common.generation_settings_from(args)  # validate before the slow load
    settings = _server_settings(args)
    _require_server_extra()
    if not settings.loopback and settings.api_key is None:
        sys.stderr.write(
            f"warning: listening on {settings.host} without an API key: anyone who can reach "
            "this machine can use the models. Set --api-key (or BACO_API_KEY).\n"
        )
    from ..server.serving import serve

    pair = common.load_pair_from(args)
    try:
        defaults = common.settings_for_pair(args, pair)
        for note in pair.notes:
            sys.stderr.write(f"note: {note}\n")
    except BaseException:
        pair.close()
        raise
    return serve(pair, defaults, settings, verbose=getattr(args, "verbose", False))


def _server_settings(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(host=args.host, port=args.port, api_key=args.api_key, queue=args.queue)


def _require_server_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise BacoError(
            "baco serve needs Starlette and uvicorn, which are not installed.",
            "pip install 'baco-local[server]'",
        ) from None
