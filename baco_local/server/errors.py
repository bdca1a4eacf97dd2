"""One place that turns failures into OpenAI-style error bodies:
{"error": {"message", "type", "param", "code"}}, never a traceback."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import BacoError, PromptError, SettingsError


class ApiError(Exception):
    """An error with its HTTP status and the fields of OpenAI's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        type: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.type = type
        self.code = code
        self.headers = headers

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid(message: str, param: str | None = None) -> ApiError:
    """A 400: the request is wrong; param names the field."""
    return ApiError(400, message, param=param)


def from_baco_error(error: BacoError, param: str | None = None) -> ApiError:
    """A BacoError as an ApiError: settings and prompts are the client's (400), the rest ours."""
    message = error.message if not error.hint else f"{error.message} Hint: {error.hint}."
    if isinstance(error, (SettingsError, PromptError)):
        return invalid(message, param)
    return ApiError(500, message, type="server_error")


def queue_full(parallel: int, queue: int) -> ApiError:
    running = "one request is" if parallel == 1 else f"{parallel} requests are"
    return ApiError(
        429,
        f"The server is busy: {running} being answered and {queue} more are waiting.",
        type="rate_limit_error",
        code="queue_full",
        headers={"Retry-After": "1"},
    )


def shutting_down() -> ApiError:
    return ApiError(503, "The server is shutting down.", type="server_error", code="shutting_down")


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return error_response(error)


async def _baco_error(request: Request, error: BacoError) -> JSONResponse:
    return error_response(from_baco_error(error))


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    kind = {401: "authentication_error", 404: "not_found_error"}.get(error.status_code)
    return error_response(
        ApiError(
            error.status_code,
            f"{error.detail}: {request.method} {request.url.path}",
            type=kind or "invalid_request_error",
        )
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    # A bug: the client gets one line; Starlette re-raises it so the server log gets the
    # traceback.
    return error_response(
        ApiError(
            500,
            f"Internal error ({type(error).__name__}); the server log has the details.",
            type="server_error",
        )
    )


HANDLERS = {
    ApiError: _api_error,
    BacoError: _baco_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
