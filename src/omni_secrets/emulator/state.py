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
  change or an ``UpdateSecret`` is FAILED_PRECONDITION, as Secret Manager answers;
- version aliases (``version_aliases``) name versions: access and GetSecretVersion take them in
  place of a number; an alias may not name a missing (NOT_FOUND) or DESTROYED
  (FAILED_PRECONDITION) version, nor be ``latest`` or a number (INVALID_ARGUMENT);
- ``rotation`` as GSM bounds it: ``next_rotation_time`` at least 5 minutes ahead,
  ``rotation_period`` at least an hour and only with a time, topics required (INVALID_ARGUMENT);
- a secret with ``version_destroy_ttl`` destroys late: DestroySecretVersion disables the version
  and sets ``scheduled_destroy_time``; :meth:`SecretManagerState.tick` destroys it once that
  time has passed, and announces a passed ``rotation.next_rotation_time`` (moving it on by
  ``rotation_period``, or clearing it).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import google_crc32c
import grpc
from google.cloud.secretmanager_v1.types import resources, service

from omni_secrets.emulator import persistence

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAGE_SIZE = 25_000

_ID = r"[A-Za-z0-9_-]{1,255}"
_ALIAS_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
#: ``UpdateSecret`` mask paths the emulator applies (any other path is INVALID_ARGUMENT).
UPDATABLE_FIELDS = frozenset(
    {"version_aliases", "labels", "annotations", "rotation", "topics", "version_destroy_ttl"}
)
#: Secret Manager's bounds on ``rotation`` (its API reference for ``Rotation``).
_MIN_ROTATION_LEAD = timedelta(seconds=300)
_MIN_ROTATION_PERIOD = timedelta(hours=1)
_ETAG_MISMATCH = "The etag provided in the request does not match the current etag."
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
    scheduled_destroy_time: datetime | None = None


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
        self._on_change: Callable[[dict[str, Any]], None] | None = None

    # --- persistence (``omni-secrets dev`` keeps its state across restarts) ------------------

    def persist_to(self, on_change: Callable[[dict[str, Any]], None] | None) -> None:
        """Call ``on_change`` with :meth:`export`'s document after every change (under the lock,
        so documents arrive in the order of the changes); None stops it."""
        with self._lock:
            self._on_change = on_change

    def export(self) -> dict[str, Any]:
        """Every secret and version as a JSON-ready document (:func:`.persistence.encode`)."""
        with self._lock:
            return persistence.encode(self._secrets)

    def load(self, document: dict[str, Any]) -> None:
        """Replace every secret and version with those of an :meth:`export` document.

        Raises:
            ValueError: the document is not one :meth:`export` wrote.
        """
        secrets = persistence.decode(document, _Secret, _Version)
        with self._lock:
            self._secrets = secrets

    def _changed(self) -> None:
        """After a change (caller holds the lock): hand the new state to the persister."""
        if self._on_change is not None:
            self._on_change(persistence.encode(self._secrets))

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
            self._changed()
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
            self._changed()
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

        Destroying a version of a secret with ``version_destroy_ttl`` disables it and sets its
        ``scheduled_destroy_time`` instead (see :meth:`tick`); enabling it again cancels that.

        Raises:
            RpcFault: NOT_FOUND; FAILED_PRECONDITION for a stale ``etag`` or a version already
                DESTROYED.
        """
        with self._lock:
            secret, version = self._version(name)
            if etag and etag != version.etag:
                raise RpcFault(grpc.StatusCode.FAILED_PRECONDITION, _ETAG_MISMATCH)
            if version.state == State.DESTROYED:
                raise RpcFault(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Secret Version [{secret.message.name}/versions/{version.number}] "
                    "is in DESTROYED state.",
                )
            ttl = _ttl(secret.message)
            if target == State.DESTROYED and ttl is not None:
                version.state = State.DISABLED
                if version.scheduled_destroy_time is None:
                    version.scheduled_destroy_time = self._now() + ttl
            elif target == State.DESTROYED:
                self._destroy(version)
            else:
                version.state = target
                if target == State.ENABLED:
                    version.scheduled_destroy_time = None
            version.etag = _new_etag()
            self._changed()
            return self._version_message(secret, version)

    def update_secret(self, secret: Any, paths: list[str]) -> Any:
        """UpdateSecret: copy the fields the mask names, compare-and-set on ``secret.etag``.

        Raises:
            RpcFault: INVALID_ARGUMENT (no mask, a path not emulated, a malformed alias,
                rotation without topics); NOT_FOUND (no such secret, or an alias naming a
                missing version); FAILED_PRECONDITION (the etag sent is not the current one,
                or an alias names a DESTROYED version).
        """
        if not paths:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, "update_mask is required.")
        unknown = sorted(set(paths) - UPDATABLE_FIELDS)
        if unknown:
            raise RpcFault(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"The emulator cannot update {', '.join(unknown)}.",
            )
        with self._lock:
            stored = self._secret(secret.name)
            if secret.etag and secret.etag != stored.message.etag:
                raise RpcFault(grpc.StatusCode.FAILED_PRECONDITION, _ETAG_MISMATCH)
            if "version_aliases" in paths:
                self._check_aliases(stored, dict(secret.version_aliases))
            updated = resources.Secret(stored.message)
            for path in paths:
                if path in secret:
                    setattr(updated, path, getattr(secret, path))
                else:
                    updated._pb.ClearField(path)
            if "next_rotation_time" in updated.rotation and not updated.topics:
                raise RpcFault(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "A secret with a rotation schedule must have at least one topic.",
                )
            if "rotation" in paths:
                self._check_rotation(updated.rotation)
            updated.etag = _new_etag()
            stored.message = updated
            self._changed()
            return resources.Secret(updated)

    def tick(self) -> list[tuple[str, Any]]:
        """Do what is due: scheduled destructions and passed rotation times.

        Returns:
            The events to publish, in order: ``SECRET_VERSION_DESTROY`` (the version) and
            ``SECRET_ROTATE`` (the secret, whose ``next_rotation_time`` moved on by its
            ``rotation_period``, or was cleared when it has none).
        """
        now = self._now()
        events: list[tuple[str, Any]] = []
        with self._lock:
            for secret in self._secrets.values():
                for version in secret.versions.values():
                    due = version.scheduled_destroy_time
                    if due is not None and due <= now and version.state != State.DESTROYED:
                        self._destroy(version)
                        version.etag = _new_etag()
                        events.append(
                            ("SECRET_VERSION_DESTROY", self._version_message(secret, version))
                        )
                rotated = self._rotate_if_due(secret, now)
                if rotated is not None:
                    events.append(("SECRET_ROTATE", rotated))
            if events:
                self._changed()
        return events

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
        elif _ALIAS_RE.fullmatch(label):
            aliases = secret.message.version_aliases
            if label not in aliases:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
            number = int(aliases[label])
        else:
            raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid version [{label}]")
        version = secret.versions.get(number)
        if version is None:
            raise RpcFault(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        return secret, version

    def _check_aliases(self, secret: _Secret, aliases: dict[str, int]) -> None:
        for alias, number in aliases.items():
            if alias == "latest" or alias.isdigit() or not _ALIAS_RE.fullmatch(alias):
                raise RpcFault(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid alias [{alias}].")
            target = f"{secret.message.name}/versions/{number}"
            version = secret.versions.get(int(number))
            if version is None:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"Secret Version [{target}] not found.")
            if version.state == State.DESTROYED:
                raise RpcFault(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Secret Version [{target}] is in DESTROYED state: it cannot have an alias.",
                )

    def _check_rotation(self, rotation: Any) -> None:
        """GSM's bounds: a time at least 5 minutes ahead, a period of at least an hour, and no
        period without a time (INVALID_ARGUMENT)."""
        has_time = "next_rotation_time" in rotation
        if has_time and _aware(rotation.next_rotation_time) < self._now() + _MIN_ROTATION_LEAD:
            raise RpcFault(
                grpc.StatusCode.INVALID_ARGUMENT,
                "next_rotation_time cannot be set to less than 300s in the future.",
            )
        if "rotation_period" in rotation and rotation.rotation_period:
            if not has_time:
                raise RpcFault(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "next_rotation_time must be set if rotation_period is set.",
                )
            if rotation.rotation_period < _MIN_ROTATION_PERIOD:
                raise RpcFault(
                    grpc.StatusCode.INVALID_ARGUMENT, "rotation_period must be at least 3600s."
                )

    def _destroy(self, version: _Version) -> None:
        version.state = State.DESTROYED
        version.data = b""
        version.crc32c = google_crc32c.value(b"")
        version.destroy_time = self._now()
        version.scheduled_destroy_time = None

    @staticmethod
    def _rotate_if_due(secret: _Secret, now: datetime) -> Any | None:
        rotation = secret.message.rotation
        if "next_rotation_time" not in rotation or _aware(rotation.next_rotation_time) > now:
            return None
        announced = resources.Secret(secret.message)
        updated = resources.Secret(secret.message)
        period = rotation.rotation_period if "rotation_period" in rotation else timedelta(0)
        if period > timedelta(0):
            following = _aware(rotation.next_rotation_time)
            while following <= now:
                following += period
            updated.rotation.next_rotation_time = following
        else:
            updated.rotation = resources.Rotation()
        updated.etag = _new_etag()
        secret.message = updated
        return announced

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
        if version.scheduled_destroy_time is not None:
            message.scheduled_destroy_time = version.scheduled_destroy_time
        return message


def _ttl(secret: Any) -> timedelta | None:
    if "version_destroy_ttl" not in secret:
        return None
    ttl = secret.version_destroy_ttl
    return ttl if ttl > timedelta(0) else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
