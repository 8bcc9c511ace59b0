"""The composition root: the one package that builds concrete adapters and wires the features.

``build_services`` only constructs, ``start_services`` starts and stops, ``run_services`` is both;
``open_database`` gives a CLI command the same units of work ``serve`` uses.
"""

from omni_secrets.bootstrap.services import (
    ClusterStore,
    Overrides,
    Services,
    build_gsm_versions,
    build_secret_store,
    build_services,
    load_break_glass_key_pair,
    open_database,
    run_services,
    start_services,
)

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
