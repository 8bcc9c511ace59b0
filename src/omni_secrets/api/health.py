"""Unauthenticated probes: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from omni_secrets.api.middleware import request_id_of
from omni_secrets.api.state import services_of

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: 200 while the process runs")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: 200 when the database answers and every required secret is served",
    responses={
        503: {"description": "NOT_READY: the error envelope plus `status`, `checks` and `reason`"}
    },
)
async def readyz(request: Request) -> JSONResponse:
    readiness = await services_of(request).secrets.readiness()
    body: dict[str, object] = {
        "status": "ready" if readiness.ready else "not_ready",
        "checks": readiness.checks,
    }
    if readiness.ready:
        return JSONResponse(body)
    body["reason"] = readiness.reason
    # Not ready is an error answer: it carries the contract's envelope beside the report.
    correlation_id = request_id_of(request.scope)
    body["error"] = {
        "code": "NOT_READY",
        "message": str(readiness.reason or "not ready"),
        "correlationId": correlation_id,
    }
    return JSONResponse(body, status_code=503)


@router.get("/metrics", summary="Prometheus text exposition")
async def metrics(request: Request) -> Response:
    registry = services_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
