"""The served OpenAPI document describes auth and errors as the service really does them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.contract.conftest import OmniStack

PROTECTED = ("/ops/", "/internal/", "/apex-omni/")
METHODS = ("get", "post", "put", "patch", "delete")
CONTRACT_OPERATIONS = {
    ("get", "/ops/apex-omni/secrets/status"),
    ("post", "/ops/apex-omni/secrets/rotation-preview"),
    ("post", "/ops/apex-omni/secrets/rotations/{previewId}/commit"),
    ("delete", "/ops/apex-omni/secrets/rotations/{previewId}"),
    ("post", "/internal/apex-omni/secrets/cache/refresh"),
    ("get", "/internal/apex-omni/secrets/cache/refresh/{requestId}"),
    ("get", "/ops/apex-omni/secrets/break-glass/public-key"),
    ("post", "/ops/apex-omni/secrets/break-glass"),
    ("delete", "/ops/apex-omni/secrets/break-glass/{overrideId}"),
    ("post", "/ops/apex-omni/secrets/self-test"),
    ("get", "/apex-omni/account"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


@pytest.fixture
async def document(omni_stack: OmniStack) -> dict[str, Any]:
    response = await omni_stack.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref:
        resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


class TestOpenApiDocument:
    async def test_paths_are_the_contracts(self, document: dict[str, Any]) -> None:
        """Every contract route is documented, with camelCase path parameters."""
        documented = {(m, p) for m, p, _ in operations(document)}
        assert documented >= CONTRACT_OPERATIONS
        for _, path, _ in operations(document):
            for name in re.findall(r"{([^}]+)}", path):
                assert "_" not in name, path

    async def test_bearer_security_scheme(self, document: dict[str, Any]) -> None:
        """A bearer JWT scheme exists and every protected route requires it."""
        schemes = document["components"]["securitySchemes"]
        [(name, scheme)] = schemes.items()
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        for _, path, operation in operations(document):
            if path.startswith(PROTECTED):
                assert operation.get("security") == [{name: []}], path
            else:
                assert "security" not in operation, path

    async def test_401_and_403_on_every_protected_route(self, document: dict[str, Any]) -> None:
        """Each protected operation documents 401 and 403."""
        for method, path, operation in operations(document):
            if path.startswith(PROTECTED):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)

    async def test_every_error_response_is_the_envelope(self, document: dict[str, Any]) -> None:
        """Every 4xx/5xx response's JSON schema is the contract's envelope."""
        seen = 0
        for method, path, operation in operations(document):
            for status, response in operation["responses"].items():
                if status[0] not in "45" or (path, status) == ("/readyz", "503"):
                    continue  # /readyz's 503 is the probe report, documented as such
                schema = resolve(document, response["content"]["application/json"]["schema"])
                error = schema["properties"]["error"]
                assert set(error["required"]) == {"code", "message", "correlationId"}, (
                    method,
                    path,
                    status,
                )
                seen += 1
        assert seen >= 40

    async def test_no_fastapi_detail_body(self, document: dict[str, Any]) -> None:
        """FastAPI's {"detail": …} validation schema is gone."""
        schemas = document["components"]["schemas"]
        assert "HTTPValidationError" not in schemas
        assert "ValidationError" not in schemas
        assert "HTTPValidationError" not in str(document)

    async def test_summaries_are_written_not_generated(self, document: dict[str, Any]) -> None:
        """No summary is FastAPI's title-cased function name (e.g. "Get Status")."""
        for method, path, operation in operations(document):
            summary = operation["summary"]
            operation_id = operation["operationId"]
            suffix = re.sub(r"\W", "_", path) + f"_{method}"
            generated = operation_id.removesuffix(suffix).replace("_", " ").title()
            assert summary != generated, (method, path, summary)
            assert "``" not in summary

    async def test_real_401_and_403_bodies_match_the_documented_envelope(
        self, omni_stack: OmniStack, document: dict[str, Any]
    ) -> None:
        """What the server sends for 401/403 has exactly the documented required keys."""
        unauthenticated = await omni_stack.client.get("/ops/apex-omni/secrets/status")
        forbidden = await omni_stack.request(
            "GET", "/ops/apex-omni/secrets/status", scopes=("apex-omni:read",)
        )
        for response, code in ((unauthenticated, "UNAUTHENTICATED"), (forbidden, "FORBIDDEN")):
            error = response.json()["error"]
            assert error["code"] == code
            assert error["correlationId"] == response.headers["X-Request-ID"]
        assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"

    async def test_renamed_path_parameters_still_route(self, omni_stack: OmniStack) -> None:
        """The camelCase parameters answer at the same URLs (404 envelope for unknown ids)."""
        for method, path in (
            ("POST", "/ops/apex-omni/secrets/rotations/fake-preview/commit"),
            ("DELETE", "/ops/apex-omni/secrets/rotations/fake-preview"),
            ("GET", "/internal/apex-omni/secrets/cache/refresh/fake-request"),
        ):
            response = await omni_stack.request(method, path)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "NOT_FOUND"
