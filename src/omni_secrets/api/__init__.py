"""HTTP API: the FastAPI app factory, auth, error envelope and routes.

``install(app, settings)`` adds omni-secrets to a host FastAPI app (see ``docs/library.md``);
``create_app(settings)`` builds the service's own app. Both are loaded on first use, so importing
one route module does not import the whole app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni_secrets.api.app import create_app, install

__all__ = ["create_app", "install"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from omni_secrets.api import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
