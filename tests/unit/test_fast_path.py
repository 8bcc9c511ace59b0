"""`api/fast_path.FastPath`: what it answers, and that its errors look like FastAPI's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from omni_secrets.api import secrets
from omni_secrets.api.auth import Unauthenticated
from omni_secrets.api.fast_path import FastPath
from omni_secrets.api.paths import STATUS_PATH


async def behind(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands for FastAPI: says it was asked."""
    await JSONResponse({"answered_by": "fastapi"})(scope, receive, send)


async def ok(services: Any, request: Request) -> Response:
    return JSONResponse({"answered_by": "fast path"})


async def refuses(services: Any, request: Request) -> Response:
    raise Unauthenticated("missing bearer token")


async def breaks(services: Any, request: Request) -> Response:
    raise RuntimeError("a bug with fake-internal-detail")


def client(services: object | None) -> httpx.AsyncClient:
    app = FastPath(
        behind,
        state=SimpleNamespace(services=services),
        handlers={"/ok": ok, "/refuses": refuses, "/breaks": breaks},
        routes=[],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize(
    ("method", "path", "services", "expected"),
    [
        ("GET", "/ok", object(), "fast path"),
        ("POST", "/ok", object(), "fastapi"),  # other methods: FastAPI's 405 and envelope
        ("GET", "/ok", None, "fastapi"),  # before the lifespan started the services
        ("GET", "/elsewhere", object(), "fastapi"),
        ("GET", "/ok/", object(), "fastapi"),  # exact paths only
    ],
)
async def test_it_answers_only_get_on_its_paths_once_started(
    method: str, path: str, services: object | None, expected: str
) -> None:
    async with client(services) as http:
        response = await http.request(method, path)
    assert response.json() == {"answered_by": expected}


async def test_a_refused_token_is_answered_as_fastapi_would() -> None:
    async with client(object()) as http:
        response = await http.get("/refuses")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_an_unexpected_error_is_a_500_envelope_without_its_text() -> None:
    async with client(object()) as http:
        response = await http.get("/breaks")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL"
    assert "fake-internal-detail" not in response.text


def test_the_status_path_is_the_routes_path() -> None:
    # The fast path and the log line find the route by this exact path.
    assert STATUS_PATH in {getattr(route, "path", None) for route in secrets.router.routes}
