"""Unauthenticated probes: ``/healthz``, ``/readyz`` and ``/metrics``.

Once the app has started, :class:`omni_secrets.api.fast_path.FastPath` answers these GETs
before FastAPI's routing; these routes document them in OpenAPI and answer before start-up.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from omni_secrets.api import paths
from omni_secrets.api.probes import readiness_response
from omni_secrets.api.state import services_of

router = APIRouter(tags=["health"])


@router.get(paths.HEALTHZ_PATH, summary="Liveness: 200 while the process runs")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    paths.READYZ_PATH,
    summary="Readiness: 200 when the database answers and every required secret is served",
    responses={503: {"description": "Not ready; the body says why"}},
)
async def readyz(request: Request) -> JSONResponse:
    return readiness_response(await services_of(request).secrets.readiness())


@router.get(paths.METRICS_PATH, summary="Prometheus text exposition")
async def metrics(request: Request) -> Response:
    registry = services_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
