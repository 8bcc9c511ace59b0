"""Each public class has one name and one home across ``src/omni_secrets``.

Twins such as three ``PreviewCheck`` classes with different fields made every import a guess;
this walks the source with ``ast`` so a new twin fails here instead of in review.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import omni_secrets

PACKAGE_ROOT = Path(omni_secrets.__file__).parent


def _public_classes(root: Path) -> dict[str, list[str]]:
    homes: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                homes[node.name].append(f"{path.relative_to(root)}:{node.lineno}")
    return homes


def test_the_walk_sees_the_package() -> None:
    homes = _public_classes(PACKAGE_ROOT)
    # Guards against a walk that finds nothing and so passes vacuously.
    assert "SecretValue" in homes
    assert len(homes) > 50


def test_every_public_class_name_is_defined_once() -> None:
    twins = {name: where for name, where in _public_classes(PACKAGE_ROOT).items() if len(where) > 1}
    assert twins == {}


def test_the_check_catches_a_twin(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("class Twin:\n    pass\n", encoding="utf-8")
    (tmp_path / "b.py").write_text(
        "class Twin:\n    pass\nclass _Private:\n    pass\n", encoding="utf-8"
    )
    (tmp_path / "c.py").write_text("class _Private:\n    pass\n", encoding="utf-8")
    homes = _public_classes(tmp_path)
    assert homes["Twin"] == ["a.py:1", "b.py:1"]
    assert "_Private" not in homes
