"""The OpenAPI document, made to say what the service actually does (contract sections 4 and 5).

FastAPI's generated document misses or misstates several things; :func:`install_openapi` builds
it once, on first request, and then:

- declares the bearer JWT security scheme (``bearerAuth``) and requires it on every route
  under ``/ops``, ``/internal`` and ``/apex-omni`` (so Swagger UI has an Authorize button);
- documents 401 ``UNAUTHENTICATED`` and 403 ``FORBIDDEN`` on each of those routes, 413
  ``PAYLOAD_TOO_LARGE`` on every route with a body and 500 ``INTERNAL`` everywhere;
- gives every 4xx/5xx response the contract's error envelope as its schema
  (``ErrorEnvelope``), replacing FastAPI's ``{"detail": [...]}`` 422 body, which this service
  never sends (``HTTPValidationError`` and ``ValidationError`` are removed);
- gives every operation an explicit summary: the route's own ``summary=`` or, failing that, the
  first line of its docstring, never the generated "Get Status".

Paths, parameters and success bodies are left exactly as the routes declare them.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROTECTED_PREFIXES = ("/ops/", "/internal/", "/apex-omni/")
SECURITY_SCHEME = "bearerAuth"
ENVELOPE = "ErrorEnvelope"
_ENVELOPE_REF = {"$ref": f"#/components/schemas/{ENVELOPE}"}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

_ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": ENVELOPE,
    "description": "The body of every 4xx/5xx answer. `correlationId` equals the response's "
    "X-Request-ID header.",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "correlationId"],
            "properties": {
                "code": {
                    "type": "string",
                    "pattern": "^[A-Z][A-Z0-9_]*$",
                    "examples": ["VALIDATION_FAILED"],
                },
                "message": {"type": "string", "description": "A human sentence."},
                "correlationId": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
    "example": {
        "error": {
            "code": "ROTATION_IN_PROGRESS",
            "message": "rotation group 'api_credentials' is locked by an open preview",
            "correlationId": "req-example-42",
            "details": {"previewId": "5c0f9e…", "expiresAt": "2026-11-25T10:15:00Z"},
        }
    },
}

_STANDARD_ERRORS: dict[str, str] = {
    "401": "UNAUTHENTICATED: the bearer token is missing, invalid or expired "
    "(the answer carries `WWW-Authenticate: Bearer`)",
    "403": "FORBIDDEN: the token is valid but lacks this route's scope",
    "413": "PAYLOAD_TOO_LARGE: the body is over 64 KiB",
    "422": "VALIDATION_FAILED: malformed JSON or a schema violation (`details.errors` lists them)",
    "500": "INTERNAL: an unexpected error; no detail is leaked (quote the correlationId)",
}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the refined document (built once, then cached)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            refine(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def refine(document: dict[str, Any]) -> None:
    """Apply the module docstring's rules to FastAPI's generated document, in place."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    schemas[ENVELOPE] = _ENVELOPE_SCHEMA
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT with `sub`, `exp`, `aud` and the route's scope in `scope`.",
    }
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            summary = _explicit_summary(path, method, operation)
            if summary:
                operation["summary"] = summary
            _refine_responses(path, operation)


def _refine_responses(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    wanted = ["500"]
    if path.startswith(PROTECTED_PREFIXES):
        operation["security"] = [{SECURITY_SCHEME: []}]
        wanted += ["401", "403"]
    if "requestBody" in operation:
        wanted += ["413", "422"]
    for status in wanted:
        responses.setdefault(status, {"description": _STANDARD_ERRORS[status]})
    if "422" in responses and "Validation Error" in responses["422"].get("description", ""):
        responses["422"]["description"] = _STANDARD_ERRORS["422"]
    for status, response in responses.items():
        # /readyz's 503 is the probe's own report (status, checks, reason), not the envelope.
        if status[:1] in ("4", "5") and not (path == "/readyz" and status == "503"):
            response["content"] = {"application/json": {"schema": _ENVELOPE_REF}}


def _explicit_summary(path: str, method: str, operation: dict[str, Any]) -> str | None:
    """The first docstring line, when ``summary`` is FastAPI's generated one; else None.

    FastAPI makes the operation id ``<function name><path>_<method>`` (non-word characters as
    ``_``) and the summary the function name title-cased: that is how a generated summary is
    told from one a route set explicitly.
    """
    suffix = re.sub(r"\W", "_", path) + f"_{method}"
    operation_id = str(operation.get("operationId", ""))
    description = str(operation.get("description") or "").strip()
    if not operation_id.endswith(suffix) or not description:
        return None
    generated = operation_id[: -len(suffix)].replace("_", " ").title()
    if operation.get("summary") != generated:
        return None
    # Docstrings quote code RST-style; OpenAPI renders Markdown.
    return description.splitlines()[0].strip().rstrip(".").replace("``", "`")
