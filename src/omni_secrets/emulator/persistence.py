"""The emulator's state as a JSON document, and a file that keeps it (``omni-secrets dev``).

The document holds every secret (its message serialized by the official package: aliases,
etag, annotations, labels, topics, rotation), every version (number, state, payload, CRC32C,
etag, times) and each secret's last version number, so numbering resumes where it stopped.
Payloads are base64, not encrypted: the emulator is a dev and test tool whose values are fake
(``fake-…``); the file is still written with mode 0600, atomically.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from google.cloud.secretmanager_v1.types import resources

FORMAT = "omni-secrets-gsm-emulator-state"
FORMAT_VERSION = 1
_STATE: Any = resources.SecretVersion.State


def encode(secrets: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """The JSON-ready document for the state's ``secrets`` (keyed by (project, secret id)).

    The state's records are typed ``Any`` here: this module must not import the state module,
    which imports it.
    """
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "secrets": [
            {
                "project": project,
                "secretId": secret_id,
                "secret": _b64(resources.Secret.serialize(secret.message)),
                "lastNumber": secret.last_number,
                "versions": [_encode_version(v) for _, v in sorted(secret.versions.items())],
            }
            for (project, secret_id), secret in sorted(secrets.items())
        ],
    }


def decode(
    document: Any, make_secret: Callable[..., Any], make_version: Callable[..., Any]
) -> dict[tuple[str, str], Any]:
    """The secrets an :func:`encode` document holds.

    Raises:
        ValueError: not such a document (another format or version, a missing or bad field).
    """
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a GSM emulator state document")
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"GSM emulator state version {document.get('version')!r} is not 1")
    try:
        secrets: dict[tuple[str, str], Any] = {}
        for item in document["secrets"]:
            versions = {
                int(v["number"]): make_version(
                    number=int(v["number"]),
                    data=base64.b64decode(v["data"], validate=True),
                    crc32c=int(v["crc32c"]),
                    create_time=datetime.fromisoformat(v["createTime"]),
                    etag=str(v["etag"]),
                    client_checksum=bool(v["clientChecksum"]),
                    state=_STATE[v["state"]],
                    destroy_time=_time(v.get("destroyTime")),
                    scheduled_destroy_time=_time(v.get("scheduledDestroyTime")),
                )
                for v in item["versions"]
            }
            message = resources.Secret.deserialize(base64.b64decode(item["secret"], validate=True))
            secrets[(str(item["project"]), str(item["secretId"]))] = make_secret(
                message=message, versions=versions, last_number=int(item["lastNumber"])
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed GSM emulator state: {type(exc).__name__}: {exc}") from None
    return secrets


class StateFile:
    """A file holding the emulator's state, replaced atomically (mode 0600) at each change.

    Args:
        path: the file (its directory must exist).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any] | None:
        """The stored document, or None when there is no file.

        Raises:
            ValueError: the file is not JSON.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            document: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path} is not JSON: {exc.msg}") from None
        return document

    def write(self, document: dict[str, Any]) -> None:
        """Replace the file with ``document`` (written to a 0600 temp file, then renamed)."""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, self.path)


def _encode_version(version: Any) -> dict[str, Any]:
    return {
        "number": version.number,
        "data": _b64(version.data),
        "crc32c": version.crc32c,
        "createTime": version.create_time.isoformat(),
        "etag": version.etag,
        "clientChecksum": version.client_checksum,
        "state": version.state.name,
        "destroyTime": _iso(version.destroy_time),
        "scheduledDestroyTime": _iso(version.scheduled_destroy_time),
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))
