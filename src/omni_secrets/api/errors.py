"""Error envelope and the type → (status, code) table (contract section 5).

Every 4xx/5xx body is ``{"error": {"code", "message", "correlationId", "details"?}}`` and every
response carries ``X-Request-ID`` equal to ``correlationId``. Domain errors carry no HTTP status;
this table gives them one (the CLI maps the same types to exit codes). Anything unexpected is a
500 ``INTERNAL`` with no detail: the exception is logged server-side with the correlation id.
"""

from __future__ import annotations

from typing import Any

import pydantic
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from omni_secrets.api.auth import AuthError, AuthUnavailable, Forbidden
from omni_secrets.api.envelope import error_response
from omni_secrets.api.middleware import request_id_of
from omni_secrets.domain import errors

log = structlog.get_logger("omni_secrets.api")

# Most specific first: the first matching row wins.
STATUS_BY_ERROR: tuple[tuple[type[errors.OmniSecretsError], int], ...] = (
    (errors.ApexUpstreamError, 502),
    (errors.Unavailable, 503),
    (errors.NotFound, 404),
    (errors.InvalidInput, 422),
    (errors.Conflict, 409),
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
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return 500


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


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the contract's envelope."""
    app.add_exception_handler(errors.OmniSecretsError, _on_domain_error)
    app.add_exception_handler(AuthError, _on_auth_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for unrepresentable in UNREPRESENTABLE_INPUT_ERRORS:
        app.add_exception_handler(unrepresentable, _on_unrepresentable_input)
    app.add_exception_handler(Exception, _on_unexpected)
