"""The hottest GETs answered before FastAPI's routing: the probes, ``/metrics`` and status.

Probes and scrapes come every few seconds from every kubelet and Prometheus, and dashboards poll
status; under load none of them should queue behind the framework. Walking FastAPI's router,
dependency solver and response machinery cost more than these handlers themselves (the profiles
in ``docs/benchmarks.md``). :class:`FastPath` is a pure ASGI app that maps an exact path to a
handler for ``GET`` only and hands everything else to FastAPI: other methods on these paths, any
other path, and every request before the lifespan has started the services (FastAPI then answers
with its error envelope).

It sits inside ``RequestContextMiddleware``, so these requests keep their ``X-Request-ID``, body
limit and ``http.request`` log line (which names the FastAPI route's template, as before). The
FastAPI routes stay: they document these paths in OpenAPI and share the handlers' rendering. A
handler's exception is answered through the same table as FastAPI's
(:func:`omni_secrets.api.errors.error_response_for`), so a 401 or a 503 looks the same either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from omni_secrets.api.errors import error_response_for

if TYPE_CHECKING:
    from omni_secrets.bootstrap import Services

Handler = Callable[["Services", Request], Awaitable[Response]]
"""Answers one GET from the running services; raises what a FastAPI route would."""


class FastPath:
    """Answers ``GET`` on the paths of ``handlers``; everything else goes to ``app``.

    Args:
        app: the rest of the ASGI stack (FastAPI's exception middleware and router).
        state: the FastAPI app's ``state``, where the lifespan puts ``services``.
        handlers: exact path -> handler.
        routes: the app's routes, so log lines name each path's route template as before.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: object,
        handlers: Mapping[str, Handler],
        routes: list[BaseRoute],
    ) -> None:
        self.app = app
        self._state = state
        self._handlers = dict(handlers)
        self._routes = {
            path: route for route in routes if (path := getattr(route, "path", None)) in handlers
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._handlers.get(scope["path"]) if scope["type"] == "http" else None
        services: Services | None = getattr(self._state, "services", None)
        if handler is None or scope["method"] != "GET" or services is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self._routes.get(scope["path"])
        request = Request(scope, receive)
        try:
            response = await handler(services, request)
        except Exception as exc:
            response = await error_response_for(request, exc)
        await response(scope, receive, send)
