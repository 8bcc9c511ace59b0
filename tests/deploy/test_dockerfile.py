"""The Dockerfile's shape, checked without building (the build itself is `make image-test`)."""

from __future__ import annotations

import json
import re

from .tools import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines() if line and line[0] != "#"
]


def instructions(keyword: str) -> list[str]:
    return [line[len(keyword) + 1 :] for line in INSTRUCTIONS if line.startswith(f"{keyword} ")]


def test_base_image_argument_defaults_to_slim_python_311() -> None:
    (arg,) = instructions("ARG")
    name, default = arg.split("=", 1)
    assert name == "BASE_IMAGE"
    assert re.fullmatch(r"(docker\.io/library/)?python:3\.11-slim(-\w+)?", default)


def test_two_stages_on_the_base_image_and_only_the_venv_crosses() -> None:
    stages = instructions("FROM")
    assert stages == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    final = DOCKERFILE[DOCKERFILE.rindex("\nFROM ") :]
    assert re.findall(r"^COPY .*$", final, re.MULTILINE) == [
        "COPY --from=build /opt/omni-secrets /opt/omni-secrets"
    ]
    build = DOCKERFILE[: DOCKERFILE.rindex("\nFROM ")]
    assert "pip wheel" in build
    assert "pip uninstall --quiet --yes pip" in build


def test_runtime_is_non_root_with_the_cli_entrypoint_and_serve() -> None:
    (user,) = instructions("USER")
    uid, gid = user.split(":")
    assert int(uid) > 0 and int(gid) > 0
    assert INSTRUCTIONS.index(f"USER {user}") > max(
        i for i, line in enumerate(INSTRUCTIONS) if line.startswith("FROM ")
    )
    (entrypoint,) = instructions("ENTRYPOINT")
    (cmd,) = instructions("CMD")
    assert json.loads(entrypoint) == ["omni-secrets"]
    assert json.loads(cmd)[0] == "serve"


def test_build_context_is_an_allow_list() -> None:
    """Only what the build copies: no .venv, .git, SQLite files or .omni-dev key pairs."""
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "constraints.txt", "README.md", "src"}
    copied = {
        part.rstrip("/")
        for line in instructions("COPY")
        if not line.startswith("--from")
        for part in line.split()[:-1]
    }
    assert copied == allowed
