"""The composition root: the one package that builds concrete adapters and wires the features.

``build_services`` only constructs (``services``, on ``platform``), ``start_services`` starts and
stops, ``run_services`` is both (``start``); ``open_database`` and the rest of ``database`` give
the CLI the same database ``serve`` uses. Names load on first use, so a command that needs only
the database does not import the whole service stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni_secrets.bootstrap.database import open_database
    from omni_secrets.bootstrap.gsm import build_gsm_versions, build_secret_store
    from omni_secrets.bootstrap.keys import load_break_glass_key_pair
    from omni_secrets.bootstrap.overrides import ClusterStore, Overrides
    from omni_secrets.bootstrap.services import Services, build_services
    from omni_secrets.bootstrap.start import run_services, start_services

_MODULE_OF = {
    "ClusterStore": "overrides",
    "Overrides": "overrides",
    "Services": "services",
    "build_gsm_versions": "gsm",
    "build_secret_store": "gsm",
    "build_services": "services",
    "load_break_glass_key_pair": "keys",
    "open_database": "database",
    "run_services": "start",
    "start_services": "start",
}

__all__ = [
    "ClusterStore",
    "Overrides",
    "Services",
    "build_gsm_versions",
    "build_secret_store",
    "build_services",
    "load_break_glass_key_pair",
    "open_database",
    "run_services",
    "start_services",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
