"""Typed access to what the lifespan put on the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from omni_secrets.bootstrap import Services


def services_of(request: Request) -> Services:
    """The :class:`~omni_secrets.bootstrap.Services` built by the lifespan.

    Raises:
        RuntimeError: the app's lifespan has not run (a programming error).
    """
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise RuntimeError("the app's lifespan has not started")
    return services
