"""The install is reproducible: every installed package pinned, every pin hashed (issue 15)."""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)==(\S+)")


def pins_of(text: str) -> dict[str, str]:
    return {
        canonicalize_name(match.group(1)): match.group(2).rstrip("\\").strip()
        for line in text.splitlines()
        if (match := PIN.match(line))
    }


def test_constraints_pin_every_installed_package() -> None:
    """The environment the tests run in is exactly constraints.txt (greenlet was missing)."""
    pins = pins_of((ROOT / "constraints.txt").read_text())
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
        if canonicalize_name(dist.metadata["Name"]) not in {"omni-secrets", "pip", "setuptools"}
    }
    unpinned = {name: version for name, version in installed.items() if name not in pins}
    assert unpinned == {}
    wrong = {name: (pins[name], v) for name, v in installed.items() if pins[name] != v}
    assert wrong == {}


def test_lock_hashes_every_pin() -> None:
    constraints = pins_of((ROOT / "constraints.txt").read_text())
    lock_text = (ROOT / "requirements.lock").read_text()
    assert pins_of(lock_text) == constraints
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock_text.split("\n", 3)[-1])
    for entry in entries:
        if not entry.strip() or entry.startswith("#"):
            continue
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry


def test_make_installs_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r $(LOCK)" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
    build_backend = pins_of((ROOT / "requirements.lock").read_text())
    assert {"hatchling", "editables"} <= set(build_backend)


DEV_TOOLS = {"mypy", "ruff", "pytest", "schemathesis", "py-spy", "detect-secrets", "hypothesis"}


def entries_of(text: str) -> dict[str, str]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return {
        canonicalize_name(entry.split("==", 1)[0]): entry.strip()
        for entry in re.split(r"\n(?=[A-Za-z0-9])", body.strip())
        if entry.strip()
    }


def test_the_runtime_lock_is_the_runtime_part_of_the_lock() -> None:
    """Issue 26: `make run` installs the server's closure only, with the lock's own hashes."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import runtime_lock
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    full = entries_of((ROOT / "requirements.lock").read_text())
    runtime = entries_of((ROOT / "requirements-runtime.lock").read_text())
    assert set(runtime) == runtime_lock.closure() - {"omni-secrets"}  # regenerated: the same
    assert all(full[name] == entry for name, entry in runtime.items())  # same pins and hashes
    assert not DEV_TOOLS & set(runtime)
    assert DEV_TOOLS - {"detect-secrets", "hypothesis"} <= set(full)
    assert {"fastapi", "uvicorn", "hatchling", "editables"} <= set(runtime)


def test_make_run_installs_the_runtime_and_takes_a_port() -> None:
    import subprocess

    # Run under `make test` too: a sub-make inherits MAKEFLAGS/MAKELEVEL and would print
    # "Leaving directory" lines, so start a make of its own.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}

    def dry(*args: str) -> str:
        return subprocess.run(
            ["make", "--no-print-directory", "-n", "-B", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout

    run = dry("run", "PORT=8081")
    assert "-r requirements-runtime.lock" in run and "-r requirements.lock" not in run
    assert run.strip().splitlines()[-1].endswith("omni-secrets dev --port 8081")
    assert dry("run").strip().splitlines()[-1].endswith("omni-secrets dev")
    test = dry("test")
    assert "-r requirements.lock" in test  # make test still installs the dev tools
