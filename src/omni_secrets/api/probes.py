"""What ``GET /healthz``, ``/readyz`` and ``/metrics`` answer, for both ways in.

:class:`~omni_secrets.api.fast_path.FastPath` calls these handlers once the app has started; the
FastAPI routes in ``api/health.py`` document the paths in OpenAPI and answer before start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from omni_secrets.api import paths
from omni_secrets.observability.exposition import CONTENT_TYPE, TextExposition

if TYPE_CHECKING:
    from omni_secrets.api.fast_path import Handler
    from omni_secrets.bootstrap import Services
    from omni_secrets.service.views import Readiness

HEALTH_BODY = {"status": "ok"}


def readiness_response(readiness: Readiness) -> JSONResponse:
    """200 with the checks when ready, else 503 with the checks and the reason."""
    body: dict[str, object] = {
        "status": "ready" if readiness.ready else "not_ready",
        "checks": readiness.checks,
    }
    if not readiness.ready:
        body["reason"] = readiness.reason
    return JSONResponse(body, status_code=200 if readiness.ready else 503)


def probe_handlers() -> dict[str, Handler]:
    """Path -> fast-path handler for the three probes (one exposition renderer per app)."""
    exposition = TextExposition()

    # Liveness deliberately depends on nothing (same signature as the other handlers).
    async def healthz(services: Services, request: Request) -> Response:  # noqa: ARG001
        return JSONResponse(HEALTH_BODY)

    async def readyz(services: Services, request: Request) -> Response:  # noqa: ARG001
        return readiness_response(await services.secrets.readiness())

    async def metrics(services: Services, request: Request) -> Response:  # noqa: ARG001
        return Response(exposition.render(services.metrics.registry), media_type=CONTENT_TYPE)

    return {paths.HEALTHZ_PATH: healthz, paths.READYZ_PATH: readyz, paths.METRICS_PATH: metrics}
