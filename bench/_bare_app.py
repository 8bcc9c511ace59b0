"""The floors of the edge benchmark: bare FastAPI with nothing of omni-secrets.

- ``GET /json``: one JSON route (the floor of ``/healthz``, ``/readyz`` and status).
- ``GET /proxy``: the fake ApeX's ``/api/v3/account`` through one shared ``httpx.AsyncClient``,
  with headers signed once at start-up: the least a service in front of ApeX must do (a second
  hop), so ``/apex-omni/account`` is measured against it. Needs ``BENCH_FAKE_APEX_URL``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI, Response

from bench._fake_apex import FAKE_CREDENTIALS
from omni_secrets.adapters.apex import ACCOUNT_PATH, epoch_ms, signed_headers


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    base_url = os.environ.get("BENCH_FAKE_APEX_URL")
    if base_url is None:
        yield
        return
    async with httpx.AsyncClient(base_url=base_url) as client:
        app.state.client = client
        app.state.headers = signed_headers(
            FAKE_CREDENTIALS, "GET", ACCOUNT_PATH, None, epoch_ms(datetime.now(UTC))
        )
        yield


app = FastAPI(lifespan=_lifespan)


@app.get("/json")
async def json_endpoint() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/proxy")
async def proxy() -> Response:
    reply = await app.state.client.get(ACCOUNT_PATH, headers=app.state.headers)
    return Response(reply.content, status_code=reply.status_code, media_type="application/json")
