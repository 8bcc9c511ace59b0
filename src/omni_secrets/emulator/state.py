"""The emulator's in-memory Secret Manager: secrets, versions and GSM's rules, behind one lock.

This module knows nothing about gRPC transport: it takes and returns the official package's
proto-plus messages and signals refusals with :class:`RpcFault` (a gRPC status code plus a
message), which the server turns into the RPC's status. The rules follow Secret Manager:

- versions are numbered from 1 per secret and never reused;
- ``latest`` is the most recently *created* version whatever its state;
- accessing a version that is not ENABLED is FAILED_PRECONDITION
  ("Secret Version [...] is in DISABLED state.");
- DESTROYED is terminal (enable/disable/destroy refuse it) and clears the payload;
- a payload holds at most 64 KiB; a ``data_crc32c`` sent on add must match the data;
- etags are quoted opaque strings, renewed on every change; a stale etag sent with a state
  change is ABORTED (AIP-154).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import google_crc32c
import grpc
from google.cloud.secretmanager_v1.types import resources, service

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAGE_SIZE = 25_000

_ID = r"[A-Za-z0-9_-]{1,255}"
_PROJECT_RE = re.compile(r"projects/(?P<project>[^/]+)")
_SECRET_RE = re.compile(rf"projects/(?P<project>[^/]+)/secrets/(?P<secret>{_ID})")
_VERSION_RE = re.compile(
    rf"projects/(?P<project>[^/]+)/secrets/(?P<secret>{_ID})/versions/(?P<version>[^/]+)"
)
SECRET_ID_RE = re.compile(_ID)

State = resources.SecretVersion.State


class RpcFault(Exception):
    """A refusal with a gRPC status, raised by the state and turned into the RPC's status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Version:
    number: int
    data: bytes
    crc32c: int
    create_time: datetime
    etag: str
    client_checksum: bool
    state: Any = State.ENABLED
    destroy_time: datetime | None = None


@dataclass
class _Secret:
    message: Any  # resources.Secret as created (name, create_time, etag filled in)
    versions: dict[int, _Version] = field(default_factory=dict)
    last_number: int = 0


def _new_etag() -> str:
    return f'"{uuid.uuid4().hex[:16]}"'


def _match(pattern: re.Pattern[str], name: str, what: str) -> re.Match[str]:
    found = pattern.fullmatch(name)
    if found is None:
        raise RpcFault(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Invalid resource field value in the request: {what} [{name}]",
        )
    return found


class SecretManagerState:
    """Thread-safe Secret Manager data for any number of projects.

    Args:
        now: returns the current UTC time (timezone-aware); injectable for tests.
    """

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, str], _Secret] = {}

    # --- secrets -----------------------------------------------------------------------------

    def create_secret(self, parent: str, secret_id: str, secret: Any) -> Any:
        """CreateSecret: a new secret with no versions.

        Raises:
            RpcFault: INVALID_ARGUMENT for a bad parent, id or missing replication;
                ALREADY_EXISTS when the secret exists.
        """
        project = _match(_PROJECT_RE, parent, "parent").group("project")
        if not SECRET_ID_RE.fullmatch(secret_id):
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid secret_id [{secret_id}]")
        if "replication" not in secret:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "Secret.replication is required.")
        name = f"projects/{project}/secrets/{secret_id}"
        with self._lock:
            if (project, secret_id) in self._secrets:
                raise RpcFault(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            stored = resources.Secret(secret)
            stored.name = name
            stored.create_time = self._now()
            stored.etag = _new_etag()
            self._secrets[(project, secret_id)] = _Secret(message=stored)
            return resources.Secret(stored)

    def get_secret(self, name: str) -> Any:
        """GetSecret. Raises RpcFault NOT_FOUND / INVALID_ARGUMENT."""
        with self._lock:
            return resources.Secret(self._secret(name).message)

    # --- versions ----------------------------------------------------------------------------

    def add_version(self, parent: str, payload: Any) -> Any:
        """AddSecretVersion: store a new ENABLED version numbered after every earlier one.

        Raises:
            RpcFault: NOT_FOUND (no such secret); INVALID_ARGUMENT (payload over 64 KiB, or a
                ``data_crc32c`` that does not match the data).
        """
        data = bytes(payload.data)
        if len(data) > MAX_PAYLOAD_BYTES:
            raise RpcFault(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Secret payload size {len(data)} exceeds the limit of {MAX_PAYLOAD_BYTES} bytes.",
            )
        crc = google_crc32c.value(data)
        sent_checksum = "data_crc32c" in payload
        if sent_checksum and payload.data_crc32c != crc:
            raise RpcFault(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Checksum mismatch: payload.data_crc32c does not match the payload data.",
            )
        with self._lock:
            secret = self._secret(parent)
            secret.last_number += 1
            version = _Version(
                number=secret.last_number,
                data=data,
                crc32c=crc,
                create_time=self._now(),
                etag=_new_etag(),
                client_checksum=sent_checksum,
            )
            secret.versions[version.number] = version
            return self._version_message(secret, version)

    def get_version(self, name: str) -> Any:
        """GetSecretVersion (``latest`` allowed). Raises RpcFault NOT_FOUND / INVALID_ARGUMENT."""
        with self._lock:
            secret, version = self._version(name)
            return self._version_message(secret, version)

    def access(self, name: str) -> Any:
        """AccessSecretVersion: the payload with its CRC32C and the resolved version name.

        Raises:
            RpcFault: NOT_FOUND; FAILED_PRECONDITION when the version is not ENABLED.
        """
        with self._lock:
            secret, version = self._version(name)
            resolved = f"{secret.message.name}/versions/{version.number}"
            if version.state != State.ENABLED:
                raise RpcFault(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Secret Version [{resolved}] is in {version.state.name} state.",
                )
            return service.AccessSecretVersionResponse(
                name=resolved,
                payload=resources.SecretPayload(data=version.data, data_crc32c=version.crc32c),
            )

    def enabled_payloads(self, project: str, secret_id: str) -> list[bytes]:
        """The payloads of every ENABLED version of a secret, newest first ([] when unknown).

        Not an RPC: the dev fake ApeX reads it to accept any credential set enabled here.
        """
        with self._lock:
            secret = self._secrets.get((project, secret_id))
            if secret is None:
                return []
            return [
                v.data
                for _, v in sorted(secret.versions.items(), reverse=True)
                if v.state == State.ENABLED
            ]

    def list_versions(self, parent: str, page_size: int, page_token: str, filter_: str) -> Any:
        """ListSecretVersions, newest first, paged with an opaque token.

        Raises:
            RpcFault: NOT_FOUND; INVALID_ARGUMENT for a bad token, negative size or any filter
                (filters are not emulated).
        """
        if filter_:
            raise RpcFault(
                grpc.StatusCode.INVALID_ARGUMENT, "The emulator does not support filter."
            )
        if page_size < 0:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative.")
        size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        try:
            start = int(page_token) if page_token else 0
        except ValueError:
            start = -1
        if start < 0:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "Invalid page_token.")
        with self._lock:
            secret = self._secret(parent)
            ordered = sorted(secret.versions.values(), key=lambda v: v.number, reverse=True)
            page = ordered[start : start + size]
            following = start + size
            return service.ListSecretVersionsResponse(
                versions=[self._version_message(secret, v) for v in page],
                next_page_token=str(following) if following < len(ordered) else "",
                total_size=len(ordered),
            )

    def set_state(self, name: str, target: Any, etag: str) -> Any:
        """Enable/Disable/DestroySecretVersion.

        Raises:
            RpcFault: NOT_FOUND; ABORTED for a stale ``etag``; FAILED_PRECONDITION when the
                version is already DESTROYED.
        """
        with self._lock:
            secret, version = self._version(name)
            if etag and etag != version.etag:
                raise RpcFault(
                    grpc.StatusCode.ABORTED,
                    "The etag provided in the request does not match the current etag.",
                )
            if version.state == State.DESTROYED:
                raise RpcFault(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Secret Version [{secret.message.name}/versions/{version.number}] "
                    "is in DESTROYED state.",
                )
            version.state = target
            if target == State.DESTROYED:
                version.data = b""
                version.crc32c = google_crc32c.value(b"")
                version.destroy_time = self._now()
            version.etag = _new_etag()
            return self._version_message(secret, version)

    # --- helpers (caller holds the lock) -----------------------------------------------------

    def _secret(self, name: str) -> _Secret:
        found = _match(_SECRET_RE, name, "name")
        secret = self._secrets.get((found.group("project"), found.group("secret")))
        if secret is None:
            raise RpcFault(
                grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found or has no versions."
            )
        return secret

    def _version(self, name: str) -> tuple[_Secret, _Version]:
        found = _match(_VERSION_RE, name, "name")
        secret = self._secret(f"projects/{found.group('project')}/secrets/{found.group('secret')}")
        label = found.group("version")
        if label == "latest":
            number = secret.last_number
        elif label.isdigit():
            number = int(label)
        else:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid version [{label}]")
        version = secret.versions.get(number)
        if version is None:
            raise RpcFault(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        return secret, version

    @staticmethod
    def _version_message(secret: _Secret, version: _Version) -> Any:
        message = resources.SecretVersion(
            name=f"{secret.message.name}/versions/{version.number}",
            create_time=version.create_time,
            state=version.state,
            etag=version.etag,
            client_specified_payload_checksum=version.client_checksum,
        )
        if version.destroy_time is not None:
            message.destroy_time = version.destroy_time
        return message
