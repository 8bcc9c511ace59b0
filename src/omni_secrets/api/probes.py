"""``GET /healthz``, ``/readyz`` and ``/metrics`` answered before FastAPI's routing.

Probes and scrapes come every few seconds from every kubelet and Prometheus, and under load they
must not queue behind the framework: walking FastAPI's router, dependency solver and response
validation costs more than the probe itself (the profile in ``docs/benchmarks.md``). This pure
ASGI app answers the three unauthenticated GETs itself and hands everything else, other methods
on these paths included, to FastAPI. It sits inside ``RequestContextMiddleware``, so probes keep
their ``X-Request-ID``, body limit and ``http.request`` log line. The FastAPI routes in
``api/health.py`` stay for the OpenAPI document and render the same bodies through the same
functions here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from omni_secrets.observability.exposition import CONTENT_TYPE, TextExposition

if TYPE_CHECKING:
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


PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ProbeFastPath:
    """Answers the probe GETs; everything else goes to ``app``.

    Args:
        app: the rest of the ASGI stack (FastAPI's exception middleware and router).
        state: the FastAPI app's ``state``, where the lifespan puts ``services``.
        routes: the app's routes, so that log lines name the probe's route template as before.
    """

    def __init__(self, app: ASGIApp, *, state: object, routes: list[BaseRoute]) -> None:
        self.app = app
        self._state = state
        self._routes = {
            path: route for route in routes if (path := getattr(route, "path", None)) in PROBE_PATHS
        }
        self._exposition = TextExposition()
        self._handlers: dict[str, Callable[[Services], Awaitable[Response]]] = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._handlers.get(scope["path"]) if scope["type"] == "http" else None
        services: Services | None = getattr(self._state, "services", None)
        # Before the lifespan ran (or after it ended) FastAPI answers, with its error envelope.
        if handler is None or scope["method"] != "GET" or services is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._routes.get(scope["path"])
        response = await handler(services)
        await response(scope, receive, send)

    # Same signature as the other probe handlers; liveness deliberately depends on nothing.
    async def _healthz(self, services: Services) -> Response:  # noqa: ARG002
        return JSONResponse(HEALTH_BODY)

    async def _readyz(self, services: Services) -> Response:
        return readiness_response(await services.secrets.readiness())

    async def _metrics(self, services: Services) -> Response:
        return Response(self._exposition.render(services.metrics.registry), media_type=CONTENT_TYPE)
