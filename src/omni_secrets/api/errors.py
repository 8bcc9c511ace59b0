"""Error envelope and handlers (contract section 5), and each route's generated ``responses=``.

Every 4xx/5xx body is ``{"error": {"code", "message", "correlationId", "details"?}}`` and every
response carries ``X-Request-ID`` equal to ``correlationId``. Domain errors carry no HTTP status:
``omni_secrets.error_mapping.ERROR_TABLE`` gives each category one (and the CLI its exit code);
the error's own ``code`` is the envelope's. Routes declare what they raise with
:func:`error_responses`, so the OpenAPI document is generated from the same table the handlers
answer with. Anything unexpected is a 500 ``INTERNAL`` with no detail: the exception is logged
server-side with the correlation id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from omni_secrets.api.auth import AuthError, AuthUnavailable, Forbidden
from omni_secrets.api.envelope import error_response
from omni_secrets.api.middleware import request_id_of
from omni_secrets.domain import errors
from omni_secrets.error_mapping import ERROR_TABLE, http_status_for

log = structlog.get_logger("omni_secrets.api")

ExceptionHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]

# Most specific first: the first matching row wins (a view of the shared ERROR_TABLE).
STATUS_BY_ERROR: tuple[tuple[type[errors.OmniSecretsError], int], ...] = tuple(
    (row.category, row.http_status) for row in ERROR_TABLE if row.http_status is not None
)

UNREPRESENTABLE_INPUT_ERRORS: tuple[type[Exception], ...] = (
    pydantic.ValidationError,
    OverflowError,
    UnicodeError,
)
"""Raised by input the edge's bounds let through: 422, never a 500 with a traceback."""

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
}


def status_for(exc: errors.OmniSecretsError) -> int:
    """The HTTP status ``exc`` is answered with."""
    return http_status_for(type(exc))


def error_responses(
    *error_types: type[errors.OmniSecretsError],
) -> dict[int | str, dict[str, Any]]:
    """A route's OpenAPI ``responses=`` for the domain errors it raises, grouped by status.

    Each status's description lists the error codes with the first line of their docstrings,
    e.g. ``409: REPLAY_DETECTED: the payload's nonce was used before``.
    """
    by_status: dict[int, list[str]] = {}
    for error_type in error_types:
        doc = (error_type.__doc__ or "").strip().splitlines()
        line = f"{error_type.code}: {doc[0].rstrip('.')}" if doc else error_type.code
        by_status.setdefault(http_status_for(error_type), []).append(line)
    return {status: {"description": "; ".join(lines)} for status, lines in by_status.items()}


def envelope(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build the contract's error response for ``request``."""
    return error_response(
        correlation_id=request_id_of(request.scope),
        status=status,
        code=code,
        message=message,
        details=details,
        headers=headers,
    )


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.OmniSecretsError)
    status = status_for(exc)
    return envelope(request, status, exc.code, exc.message, exc.details or None)


async def _on_auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    if isinstance(exc, Forbidden):
        return envelope(request, 403, "FORBIDDEN", exc.message)
    if isinstance(exc, AuthUnavailable):
        return envelope(request, 503, exc.code, exc.message, headers={"Retry-After": "5"})
    # The contract pins the challenge to exactly "Bearer" for every 401.
    return envelope(
        request, 401, "UNAUTHENTICATED", exc.message, headers={"WWW-Authenticate": "Bearer"}
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "location": ".".join(str(part) for part in error.get("loc", ())),
            "problem": str(error.get("msg", "invalid")),
        }
        for error in exc.errors()
    ]
    return envelope(
        request, 422, "VALIDATION_FAILED", "request validation failed", {"errors": problems}
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI answers 400 when a body cannot be parsed at all (e.g. not JSON): for our
        # callers that is the same failure as malformed JSON, which the contract makes a 422.
        return envelope(request, 422, "VALIDATION_FAILED", "request body could not be parsed")
    code = _HTTP_CODES.get(exc.status_code, "INTERNAL" if exc.status_code >= 500 else "ERROR")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        message = "not found"
    headers = dict(exc.headers or {})
    return envelope(request, exc.status_code, code, message, headers=headers)


async def _on_unrepresentable_input(request: Request, exc: Exception) -> JSONResponse:
    # One place for the input that got past the edge's bounds: a model's own validation, a date
    # or number outside what the platform represents, text that cannot be encoded. Their text
    # quotes the input (and a pydantic error its value), so only the type is logged.
    log.warning(
        "http.input_not_representable", error_type=type(exc).__name__, route=request.url.path
    )
    return envelope(
        request,
        422,
        "VALIDATION_FAILED",
        "a value in the request is out of range or cannot be represented",
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Log the type only: an exception's text could carry anything; the traceback stays server-side.
    log.error(
        "http.unhandled_error", error_type=type(exc).__name__, route=request.url.path, exc_info=exc
    )
    return envelope(request, 500, "INTERNAL", "internal error")


_HANDLERS: tuple[tuple[type[Exception], ExceptionHandler], ...] = (
    (errors.OmniSecretsError, _on_domain_error),
    (AuthError, _on_auth_error),
    (RequestValidationError, _on_validation_error),
    (StarletteHTTPException, _on_http_error),
    *(
        (unrepresentable, _on_unrepresentable_input)
        for unrepresentable in UNREPRESENTABLE_INPUT_ERRORS
    ),
    (Exception, _on_unexpected),
)
"""Exception type -> handler; the most specific class in an exception's MRO wins."""
_HANDLER_BY_TYPE = dict(_HANDLERS)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the contract's envelope."""
    for exc_type, handler in _HANDLERS:
        app.add_exception_handler(exc_type, handler)


async def error_response_for(request: Request, exc: Exception) -> Response:
    """The response FastAPI's handlers give ``exc``, for code that answers outside its routing
    (``api/fast_path.py``): the same lookup as Starlette's, by the exception's MRO."""
    handler = next(
        (_HANDLER_BY_TYPE[cls] for cls in type(exc).__mro__ if cls in _HANDLER_BY_TYPE),
        _on_unexpected,
    )
    return await handler(request, exc)
