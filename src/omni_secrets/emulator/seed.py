"""The emulator's seed format, shared by ``--seed-file`` and the control interface's ``POST /seed``.

::

    {"projectId": "omni-dev",
     "secrets": {"apex-omni-api-key": ["v1-value", "v2-value"], ...},
     "aliases": {"apex-omni-api-key": {"current": 2}}}

Each list holds the payloads of versions 1, 2, ... in order (UTF-8 strings, at most 64 KiB
each). Seeding a secret that already exists adds versions after its existing ones. The optional
``aliases`` set each named secret's version aliases (replacing its earlier ones) once the
versions are added, as ``gcloud secrets update --update-version-aliases`` would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni_secrets.emulator.state import MAX_PAYLOAD_BYTES, SECRET_ID_RE


class SeedError(ValueError):
    """A seed document that does not follow the format; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class Seed:
    """A parsed seed: the project and, per secret id, the version payloads in order."""

    project_id: str
    secrets: dict[str, list[str]]
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def version_count(self) -> int:
        return sum(len(values) for values in self.secrets.values())


def parse_seed(document: Any) -> Seed:
    """Validate a decoded JSON seed document.

    Raises:
        SeedError: naming the first problem (never quoting a value).
    """
    if not isinstance(document, dict):
        raise SeedError("seed must be a JSON object with projectId and secrets")
    project_id = document.get("projectId")
    if not isinstance(project_id, str) or not project_id or "/" in project_id:
        raise SeedError("seed projectId must be a non-empty string without '/'")
    secrets = document.get("secrets")
    if not isinstance(secrets, dict):
        raise SeedError("seed secrets must be an object of secret id -> list of values")
    parsed: dict[str, list[str]] = {}
    for secret_id, values in secrets.items():
        if not SECRET_ID_RE.fullmatch(secret_id):
            raise SeedError(f"seed secret id {secret_id!r} is not a valid Secret Manager id")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SeedError(f"seed secrets[{secret_id!r}] must be a list of strings")
        for index, value in enumerate(values, start=1):
            if len(value.encode()) > MAX_PAYLOAD_BYTES:
                raise SeedError(f"seed secrets[{secret_id!r}] version {index} exceeds 64 KiB")
        parsed[secret_id] = list(values)
    return Seed(project_id=project_id, secrets=parsed, aliases=_parse_aliases(document))


def _parse_aliases(document: dict[str, Any]) -> dict[str, dict[str, int]]:
    aliases = document.get("aliases", {})
    if not isinstance(aliases, dict):
        raise SeedError("seed aliases must be an object of secret id -> {alias: version}")
    parsed: dict[str, dict[str, int]] = {}
    for secret_id, names in aliases.items():
        if not SECRET_ID_RE.fullmatch(secret_id) or not isinstance(names, dict):
            raise SeedError(f"seed aliases[{secret_id!r}] must be an object of alias -> version")
        for alias, version in names.items():
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise SeedError(f"seed aliases[{secret_id!r}][{alias!r}] must be a version >= 1")
        parsed[secret_id] = dict(names)
    return parsed


def load_seed_file(path: Path) -> Seed:
    """Read and validate a seed file.

    Raises:
        SeedError: the file cannot be read, is not JSON, or does not follow the format.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SeedError(f"cannot read seed file {str(path)!r}: {reason}") from None
    except UnicodeDecodeError:
        raise SeedError(f"seed file {str(path)!r} is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position only: the decoder's message may quote a fragment of the file.
        raise SeedError(
            f"seed file {str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    return parse_seed(document)
