"""Error envelope, correlation ids and the body limit (contract section 5) on a minimal app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from omni_secrets.api.errors import install_error_handlers
from omni_secrets.api.middleware import MAX_BODY_BYTES, RequestContextMiddleware
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import RotationInProgress, SecretsUnavailable


class Body(BaseModel):
    name: str


def shell_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("fake-internal-detail-that-must-not-leak")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise SecretsUnavailable(["api_key", "api_secret"])

    @app.get("/conflict")
    async def conflict() -> None:
        raise RotationInProgress("api_credentials", "prev-1", ManualClock().now())

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=shell_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert error["correlationId"] == response.headers["x-request-id"]
    return error


class TestCorrelationId:
    async def test_caller_request_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        """A sane X-Request-ID is kept and becomes the correlation id."""
        response = await client.post("/echo", json={}, headers={"X-Request-ID": "req-123.abc"})
        assert response.headers["x-request-id"] == "req-123.abc"
        assert error_of(response)["correlationId"] == "req-123.abc"

    async def test_insane_request_id_is_replaced(self, client: httpx.AsyncClient) -> None:
        """An unsafe X-Request-ID (spaces, too long) is replaced by a new one."""
        response = await client.post(
            "/echo", json={"name": "x"}, headers={"X-Request-ID": "a b<script>"}
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] != "a b<script>"
        assert len(response.headers["x-request-id"]) >= 16

    async def test_success_responses_carry_an_id(self, client: httpx.AsyncClient) -> None:
        """Every response has an X-Request-ID, errors or not."""
        response = await client.post("/echo", json={"name": "x"})
        assert response.headers["x-request-id"]


class TestEnvelope:
    async def test_malformed_json_is_422(self, client: httpx.AsyncClient) -> None:
        """Malformed JSON → 422 VALIDATION_FAILED."""
        response = await client.post(
            "/echo", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        assert error_of(response)["code"] == "VALIDATION_FAILED"

    async def test_unparseable_body_is_422(self, client: httpx.AsyncClient) -> None:
        """A body FastAPI cannot parse at all (form data for a JSON body) → 422, not 400."""
        response = await client.post(
            "/echo",
            content=b"name=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 422
        assert error_of(response)["code"] == "VALIDATION_FAILED"

    async def test_schema_violation_is_422(self, client: httpx.AsyncClient) -> None:
        """A body that breaks the schema → 422 VALIDATION_FAILED with details."""
        response = await client.post("/echo", json={"name": 5})
        assert response.status_code == 422
        error = error_of(response)
        assert error["code"] == "VALIDATION_FAILED"
        assert "details" in error

    async def test_unknown_route_is_404(self, client: httpx.AsyncClient) -> None:
        """Unknown paths → 404 NOT_FOUND in the envelope."""
        response = await client.get("/nope")
        assert response.status_code == 404
        assert error_of(response)["code"] == "NOT_FOUND"

    async def test_unexpected_error_is_500_without_detail(self, client: httpx.AsyncClient) -> None:
        """An unexpected exception → 500 INTERNAL, its text never sent."""
        response = await client.get("/boom")
        assert response.status_code == 500
        assert error_of(response)["code"] == "INTERNAL"
        assert "fake-internal-detail" not in response.text

    async def test_domain_errors_map_to_status_and_code(self, client: httpx.AsyncClient) -> None:
        """Domain errors carry their code and details; the table gives the status."""
        response = await client.get("/unavailable")
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "OMNI_SECRETS_UNAVAILABLE"
        assert error["details"] == {"missing": ["api_key", "api_secret"]}
        response = await client.get("/conflict")
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "ROTATION_IN_PROGRESS"
        assert error["details"] == {"previewId": "prev-1", "expiresAt": "2026-11-25T10:00:00Z"}


class TestBodyLimit:
    async def test_declared_oversize_body_is_413(self, client: httpx.AsyncClient) -> None:
        """A Content-Length over 64 KiB is refused before reading."""
        response = await client.post(
            "/echo",
            content=b"x" * (MAX_BODY_BYTES + 1),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert error_of(response)["code"] == "PAYLOAD_TOO_LARGE"

    async def test_streamed_oversize_body_is_413(self, client: httpx.AsyncClient) -> None:
        """A chunked body without Content-Length is cut off at 64 KiB."""

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(80):
                yield b"x" * 1024

        response = await client.post(
            "/echo", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert error_of(response)["code"] == "PAYLOAD_TOO_LARGE"

    async def test_body_at_the_limit_is_read(self, client: httpx.AsyncClient) -> None:
        """Exactly 64 KiB is allowed through (and then judged by the schema)."""
        padding = "x" * (MAX_BODY_BYTES - len('{"name": ""}'))
        response = await client.post(
            "/echo",
            content=f'{{"name": "{padding}"}}'.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200
