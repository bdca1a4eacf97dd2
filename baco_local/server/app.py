"""The routes. Each reads: parse the request, start the answers, send them out."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from . import protocol, responses
from .errors import HANDLERS, ApiError, error_response
from .model import Job, PairHost
from .settings import ServerSettings


def create_app(host: PairHost, settings: ServerSettings) -> Starlette:
    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
    ]
    middleware = [Middleware(BearerAuth, api_key=settings.api_key)] if settings.api_key else []
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=HANDLERS)
    app.state.host = host
    app.state.started = int(time.time())
    return app


async def health(request: Request) -> JSONResponse:
    host: PairHost = request.app.state.host
    status = "stopping" if host.stopping else "ok"
    body = {"status": status, "pair": host.pair.label, **host.load()}
    return JSONResponse(body, status_code=503 if host.stopping else 200)


async def models(request: Request) -> JSONResponse:
    host: PairHost = request.app.state.host
    created = request.app.state.started
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "baco-local"}
        for name in host.model_ids
    ]
    return JSONResponse({"object": "list", "data": data})


async def chat_completions(request: Request):
    host: PairHost = request.app.state.host
    parsed = protocol.parse_chat(await request.body(), host.defaults, host.model_id)
    return await _answer(request, parsed, "chat")


async def completions(request: Request):
    host: PairHost = request.app.state.host
    parsed = protocol.parse_completion(await request.body(), host.defaults, host.model_id)
    return await _answer(request, parsed, "text")


async def _answer(request: Request, parsed: protocol.GenerationRequest, kind: str):
    """Queue the answers; stream them as events, or wait and send them whole."""
    host: PairHost = request.app.state.host
    job = host.submit(parsed)
    reply = responses.Reply.new(kind, f"{host.model_id}:{parsed.settings.router}")
    async with _cancelled_on_disconnect(request, job):
        await job.wait_started()  # a prompt over the context fails here, as a 400
        if not parsed.stream:
            return JSONResponse(responses.completion(reply, await job.finish()))
    stream = responses.chunks(job, reply, parsed.include_usage)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


@contextlib.asynccontextmanager
async def _cancelled_on_disconnect(request: Request, job: Job):
    """Until a response begins, a client that leaves (or a failure) cancels its answers;
    once streaming, Starlette notices the disconnect and responses.chunks cancels them."""

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        job.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    except BaseException:
        job.cancel()
        raise
    finally:
        watcher.cancel()


class BearerAuth:
    """Every route but /health needs `Authorization: Bearer <api_key>` (else 401)."""

    def __init__(self, app, api_key: str):
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/health":
            given = Headers(scope=scope).get("authorization", "").encode()
            if not hmac.compare_digest(given, self.expected):
                error = ApiError(
                    401,
                    "Missing or wrong API key. Send the server's key (--api-key) as "
                    "`Authorization: Bearer KEY` (api_key= in the OpenAI client).",
                    type="authentication_error",
                    code="invalid_api_key",
                )
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
