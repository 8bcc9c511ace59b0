"""The contract's error body, shared by the error handlers and the request middleware."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


def error_response(
    *,
    correlation_id: str,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """``{"error": {"code", "message", "correlationId", "details"?}}`` with ``X-Request-ID``."""
    body: dict[str, Any] = {"code": code, "message": message, "correlationId": correlation_id}
    if details:
        body["details"] = details
    return JSONResponse(
        {"error": body},
        status_code=status,
        headers={"X-Request-ID": correlation_id, **(headers or {})},
    )
