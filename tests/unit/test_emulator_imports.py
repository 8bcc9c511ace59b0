"""The emulator's modules import one another in one direction only (design, "Arrows").

The control plane drives the server through a Protocol of its own; the server constructs the
control plane. A cycle (even one hidden behind ``TYPE_CHECKING``) would fail here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import omni_secrets.emulator

PACKAGE = "omni_secrets.emulator"
PACKAGE_DIR = Path(omni_secrets.emulator.__file__).parent


def _imports_within_package() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        if path.stem == "__init__":
            continue
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            imported.update(
                name.removeprefix(PACKAGE + ".").split(".")[0]
                for name in names
                if name.startswith(PACKAGE + ".")
            )
        graph[path.stem] = imported
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done or module not in graph:
            return None
        for target in sorted(graph[module]):
            found = visit(target, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_the_control_plane_does_not_import_the_server() -> None:
    graph = _imports_within_package()
    assert "server" not in graph["control"]
    assert "control" in graph["server"]  # the probe sees imports: the server builds the plane


def test_the_emulator_modules_form_no_import_cycle() -> None:
    assert _cycle(_imports_within_package()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
