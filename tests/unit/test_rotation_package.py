"""The rotation package's deciding modules reach logs, metrics, alerts and peers only by events."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import omni_secrets.service.rotation as package

PACKAGE = Path(package.__file__).parent
# Everything but reactions.py (what follows the events) and build.py (the wiring).
DECIDING = (
    *("service", "preview", "commit", "failures", "events", "monitor", "report", "views"),
    *("aliases", "rollback", "journal", "recovery", "reminder", "adoption"),
)
# structlog, the metrics and the alert dispatcher (observability/), the notifier (adapters/).
FORBIDDEN = ("structlog", "omni_secrets.observability", "omni_secrets.adapters")


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", DECIDING)
def test_deciding_modules_import_no_instrumentation(module: str) -> None:
    imported = _imports(module)
    assert imported  # the probe read the module
    assert sorted(n for n in imported if n.startswith(FORBIDDEN)) == []


def test_every_module_is_classified() -> None:
    """A new module must say whether it decides or reacts."""
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == {*DECIDING, "reactions", "build"}
