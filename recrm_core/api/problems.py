"""Errors as ``application/problem+json`` (RFC 9457): a status, a title, a one-line
``detail`` a person can act on and, when one input failed, the ``field``. The SDK's
exceptions map to statuses here and nowhere else; nothing answers with a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    ConfigError,
    Forbidden,
    IdentityConflict,
    InvalidInput,
    NotFound,
    PluginError,
    RecrmError,
    Refused,
    SchemaMismatch,
    database_failure,
    undecodable_text,
)
from ..terminal import printable

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("recrm.api")


class Problem(BaseModel):
    """An error (RFC 9457 problem details)."""

    type: str = Field(default="about:blank", description="always about:blank: see `title`")
    title: str = Field(description="the HTTP status phrase, e.g. Conflict")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong, in one line a person can act on")
    field: str | None = Field(default=None, description="the input that failed, if one did")
    customer_ids: list[int] | None = Field(
        default=None, description="409 identity conflict: the customers whose keys clash")


class ApiProblem(Exception):
    """Raised by the API's own code (authentication, limits, cursors) for a status
    the SDK's exceptions do not cover."""

    def __init__(self, status: int, detail: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers


_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Content",
           429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}

#: the responses every route may give, for the OpenAPI document
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": _TITLES[status],
             "content": {PROBLEM_JSON: {}}}
    for status in (401, 403, 404, 409, 413, 415, 422, 429, 503)
}


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line, control characters escaped, at most ``limit`` characters."""
    flat = printable(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def problem(status: int, detail: str, *, field: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = Problem(title=_TITLES.get(status, "Error"), status=status, detail=one_line(detail),
                   field=field or None, **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status,
                        media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: RecrmError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, IdentityConflict | Refused):
        return 409
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, SchemaMismatch | ConfigError):
        return 503
    return 409


def _validation_field(loc: Sequence[Any]) -> str:
    # ("body", "mobiles", 0) -> "mobiles"; ("query", "limit") -> "limit"; a position
    # before a field names the entry of a batch: ("body", "moves", 2, "stage") ->
    # "moves.2.stage"
    parts = list(loc)
    while parts and isinstance(parts[-1], int):
        parts.pop()
    names = [str(p) for p in parts]
    return ".".join(names[1:] if len(names) > 1 else names)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(RecrmError)
    async def _recrm(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RecrmError)
        if isinstance(exc, PluginError):
            _log.error("%s", exc)
            return problem(500, f"plugin {exc.plugin!r} failed; the change was rolled back")
        field = getattr(exc, "field", None) or None
        extra: dict[str, Any] = {}
        if isinstance(exc, IdentityConflict) and exc.customer_ids:
            extra["customer_ids"] = exc.customer_ids
        return problem(status_of(exc), str(exc), field=field, **extra)

    @app.exception_handler(ApiProblem)
    async def _api(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem(exc.status, exc.detail, field=exc.field, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if tuple(first.get("loc", ())) == ("body",):
            if kind and not kind.endswith("json") and not kind.startswith("multipart/"):
                return problem(415, f"send the body as application/json, not {kind[:60]}",
                               field="body")
            if not kind and first.get("type") != "missing":
                # A body sent without a Content-Type (Python's requests.post(url,
                # data=json.dumps(...)) sends none) is not read as JSON: say what to
                # send, not "Input should be a valid dictionary".
                return problem(415, "send the body as application/json (the request has "
                               "no Content-Type header)", field="body")
        field = _validation_field(first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if first.get("type") == "json_invalid":
            return problem(422, "the body is not valid JSON", field="body")
        return problem(422, f"{field}: {message}" if field else message, field=field or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's "error parsing the body": bytes that are not UTF-8 JSON, or
            # JSON nested deeper than the parser follows.
            return problem(422, "the body could not be read as JSON (UTF-8, not nested "
                           "too deeply)", field="body")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))


class CatchAll:
    """The outermost of the app's own middleware: an exception nothing handled becomes
    a problem document (500; 503 while the database does not answer) on a connection
    that stays usable. Starlette's last-resort handler would answer too, then re-raise
    and make the server drop the connection under the client's next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            # The log has the traceback; the caller a line without SQL or data in it.
            _log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            if isinstance(exc, OperationalError | InterfaceError):
                response = problem(503, "the database does not answer; retry later",
                                   headers={"Retry-After": "5"})
            elif undecodable_text(exc):
                response = problem(422, "a value is not valid text (a lone surrogate such "
                                   "as \\ud800); nothing was changed")
            else:
                what = database_failure(exc) or type(exc).__name__
                response = problem(500, f"internal error ({what}); the change, if any, "
                                   "was rolled back")
            await response(scope, receive, send)


class RejectNul:
    """422 for a NUL character in an API path or query: no text recrm keeps holds one,
    and PostgreSQL refuses it with an error of its own (SQLite would just not match)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The JSON API's paths; a page answers a bad link with its own 404 page.
        if scope["type"] == "http" and scope.get("path", "").startswith("/v1/") and (
                "\0" in scope.get("path", "")
                or b"%00" in scope.get("query_string", b"").lower()
                or b"\0" in scope.get("query_string", b"")):
            await problem(422, "the path or query holds a NUL character (%00)",
                          field="path" if "\0" in scope.get("path", "") else "query"
                          )(scope, receive, send)
            return
        await self.app(scope, receive, send)
