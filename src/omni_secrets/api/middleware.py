"""Request context: correlation id, body size limit and the one canonical log line per request.

A pure ASGI middleware (cheaper than ``BaseHTTPMiddleware`` and safe with streaming):

- ``X-Request-ID``: the caller's when it is sane (1-128 chars of ``[A-Za-z0-9._:-]``), else a
  new one; stored in ``scope["state"]["request_id"]``, bound into structlog's contextvars for every
  log line of the request, and echoed on every response.
- Bodies over :data:`MAX_BODY_BYTES` are refused with 413 ``PAYLOAD_TOO_LARGE`` — from the
  ``Content-Length`` header before anything is read, or while streaming when it lies or is absent.
- ``http.request`` log line at the end: method, route template, status, duration, principal.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omni_secrets.api.envelope import error_response

MAX_BODY_BYTES = 64 * 1024
REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

log = structlog.get_logger("omni_secrets.api")


class PayloadTooLarge(HTTPException):
    """The request body exceeds :data:`MAX_BODY_BYTES`.

    An ``HTTPException`` so that FastAPI's body parsing re-raises it untouched (it wraps other
    exceptions into a 400) and the HTTP error handler renders 413 ``PAYLOAD_TOO_LARGE``.
    """

    def __init__(self) -> None:
        super().__init__(413, f"request body exceeds {MAX_BODY_BYTES} bytes")


def request_id_of(scope: Scope) -> str:
    """The correlation id assigned to this request (a new one if the middleware did not run)."""
    state = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if not isinstance(request_id, str):
        request_id = uuid.uuid4().hex
        state["request_id"] = request_id
    return request_id


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if _SANE_REQUEST_ID.match(text) else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status: dict[str, int] = {"code": 500}
        header_value = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", header_value))
                message["headers"] = headers
            await send(message)

        declared = _content_length(scope)
        received = {"bytes": 0}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > MAX_BODY_BYTES:
                    raise PayloadTooLarge()
            return message

        try:
            if declared is not None and declared > MAX_BODY_BYTES:
                too_large = PayloadTooLarge()
                response = error_response(
                    correlation_id=request_id,
                    status=413,
                    code="PAYLOAD_TOO_LARGE",
                    message=str(too_large.detail),
                )
                await response(scope, receive, send_with_id)
                return
            await self.app(scope, limited_receive, send_with_id)
        finally:
            _log_request(scope, status["code"], time.perf_counter() - started)
            structlog.contextvars.clear_contextvars()


def _log_request(scope: Scope, status: int, seconds: float) -> None:
    route = scope.get("route")
    template: Any = getattr(route, "path", None) or "unmatched"
    principal = scope.get("state", {}).get("principal_subject")
    log.info(
        "http.request",
        method=scope.get("method"),
        route=template,
        status=status,
        duration_ms=round(seconds * 1000, 3),
        principal=principal,
    )
