"""External tools the deployment checks run, the rendered Kustomize overlays, and the commands
``deploy/gcp/setup.sh --dry-run`` prints.

A missing tool skips the tests that need it on a workstation (the reason shows in pytest's
summary) and fails them under ``CI=true``: ``.ci/run`` installs every one of them.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("staging", "production")
SETUP_SCRIPT = ROOT / "deploy" / "gcp" / "setup.sh"


def require_tool(name: str, how: str) -> str:
    """The executable ``name`` on PATH; skip without it, or fail under ``CI=true``."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"{name} is required under CI=true but is not on PATH ({how})", pytrace=False
            )
        pytest.skip(f"{name} is not on PATH: NOT checked ({how})")
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=120, check=False, env=env
    )


#: What an operator writes into each overlay's values.yaml before the first render (the shipped
#: files leave them out on purpose: the render fails without them).
OPERATOR_VALUES = {
    "projectNumber": "123456789012",
    "breakGlassPublicKey": "fake-breakglass-public-key",
}


def operator_copy(dest: Path, **values: str) -> Path:
    """A copy of deploy/k8s under ``dest`` with each overlay's values.yaml filled as an operator
    would (:data:`OPERATOR_VALUES`, then ``values``: e.g. ``projectId``); returns its root."""
    root = dest / "k8s"
    shutil.copytree(K8S, root)
    wanted = {**OPERATOR_VALUES, **values}
    for path in root.glob("overlays/*/values.yaml"):
        text = path.read_text()
        for key, value in wanted.items():
            text, count = re.subn(
                rf"^  (?:# )?{key}: .*$", f'  {key}: "{value}"', text, flags=re.MULTILINE
            )
            assert count == 1, f"{path}: no {key} line"
        path.write_text(text)
    return root


def render_dir(path: Path) -> subprocess.CompletedProcess[str]:
    """``kubectl kustomize path`` (the result, whatever it is)."""
    kubectl = require_tool("kubectl", "kubectl with Kustomize, e.g. Debian's kubernetes-client")
    return run(kubectl, "kustomize", str(path))


@functools.cache
def _render(kubectl: str, overlay: str) -> str:
    root = operator_copy(Path(tempfile.mkdtemp(prefix="omni-k8s-")))
    result = run(kubectl, "kustomize", str(root / "overlays" / overlay))
    shutil.rmtree(root.parent, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    """Every object of ``kubectl kustomize deploy/k8s/overlays/<overlay>``, rendered from a copy
    whose values.yaml holds :data:`OPERATOR_VALUES` (a fresh copy of the objects)."""
    kubectl = require_tool("kubectl", "kubectl with Kustomize, e.g. Debian's kubernetes-client")
    return [doc for doc in yaml.safe_load_all(_render(kubectl, overlay)) if doc]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of ``kind`` (and ``name``, when given)."""
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def dry_run(tmp_path: Path, **settings: str) -> tuple[list[list[str]], Path]:
    """The commands --dry-run prints (as argv lists), with a gcloud on PATH that records any
    call it gets (there must be none)."""
    calls = tmp_path / "gcloud-calls"
    fake = tmp_path / "bin" / "gcloud"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}", "HOME": str(tmp_path), **settings}
    result = run("bash", str(SETUP_SCRIPT), "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    commands = [
        shlex.split(line) for line in result.stdout.splitlines() if line.startswith("gcloud ")
    ]
    return commands, calls


def flag(command: list[str], name: str) -> str | None:
    for arg in command:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None
