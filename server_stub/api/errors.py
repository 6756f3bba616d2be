"""The error envelope (docs/protocol.md, "Errors") for every refusal the server makes.

Routes raise ``ApiError(status, code, message)``; the handlers installed by
``install_error_handlers`` turn it -- and FastAPI's own validation errors, unknown paths,
wrong methods and unexpected exceptions -- into ``{"error": {"code", "message"}}``.
Messages never echo request content (it may be PHI or a secret): validation errors name the
offending field's location only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("server_stub.errors")


class ApiError(Exception):
    """A refusal with a protocol error code. ``headers`` e.g. ``{"Retry-After": "30"}``."""

    def __init__(
        self, status: int, code: str, message: str, *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


_HTTP_CODES = {
    400: "malformed", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
    415: "unsupported_media_type", 429: "rate_limited",
}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed", "body is not valid JSON")
    where = sorted({".".join(str(p) for p in e.get("loc", ())) for e in errors})[:5]
    return error_response(422, "malformed", "invalid or missing fields: " + ", ".join(where))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = {404: "no such resource", 405: "method not allowed"}.get(
        exc.status_code, "request refused")
    return error_response(exc.status_code, code, message, exc.headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Type only: exception text may carry request data.
    log.error("unhandled %s", exc.__class__.__name__)
    return error_response(500, "internal", "internal server error")


class ContainExceptionsMiddleware:
    """Answers an unhandled exception with the 500 envelope and logs its type only.

    Starlette's outermost error middleware would re-raise it to the ASGI server, which logs
    the full traceback -- whose text may hold request data (PHI). Installed inside it, this
    keeps the exception from getting that far.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled %s on %s %s", exc.__class__.__name__, scope.get("method"),
                      scope.get("route").path if scope.get("route") else "(no route)")
            if not started:
                await error_response(500, "internal", "internal server error")(
                    scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(ContainExceptionsMiddleware)
