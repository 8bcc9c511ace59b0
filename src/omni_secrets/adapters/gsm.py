"""``GsmSecretManagerClient``: the :class:`~omni_secrets.domain.secret_store.SecretStore` port over
Google Secret Manager's official async client.

What this adapter adds to the library, and why:

- **Its own retries** (:mod:`omni_secrets.adapters.retry`): every call passes ``retry=None`` so the
  library's default (AccessSecretVersion only, 2 s initial backoff, 60 s budget) never runs,
  and ``timeout=`` so each attempt has our deadline. Retried: the transient reasons of
  :data:`~omni_secrets.domain.secret_store.TRANSIENT_REASONS` (UNAVAILABLE, DEADLINE_EXCEEDED,
  RESOURCE_EXHAUSTED, INTERNAL, CHECKSUM_MISMATCH); everything else fails at once.
- **CRC32C verification** of every payload, which the library does not do. The response must
  carry ``data_crc32c`` (presence tested, so a checksum of 0 is still checked) and it must
  match. A response *without* one counts as a checksum failure (``CHECKSUM_MISMATCH``, retried
  like a corrupted one): Secret Manager fills it for every access, so its absence means the
  answer did not come from GSM as documented, and an unverifiable credential is not served.
- **One exception table** (:mod:`omni_secrets.adapters.gsm_errors`) from google.api_core /
  grpc / google.auth errors to :class:`~omni_secrets.domain.errors.SecretStoreError` with the
  gRPC code name as ``reason``, raised ``from`` the vendor error. Vendor errors of failed calls
  carry status text, never a payload; the two failures that do have a payload in hand (checksum
  mismatch, invalid UTF-8) raise our own errors with no cause or context, from frames that no
  longer hold the payload (structlog's tracebacks render frame locals by default).
- **A per-attempt hook** (``on_call``) with the RPC name, the code name, duration and attempt
  number, for ``omni_gsm_request_duration_seconds{method,code}``.
- **Endpoint selection**: ``endpoint=None`` is Google's endpoint with Application Default
  Credentials; ``host:port`` is an insecure channel with no credentials (the emulator). The
  library ignores ``*_EMULATOR_HOST`` and opens TLS for a custom ``api_endpoint``, so the channel
  is built here and handed over inside a transport instance.
- **Payload logging off**: the library's gRPC interceptor logs whole responses (payloads
  included) at DEBUG when its logger is enabled; :func:`_silence_payload_logging` pins those
  loggers above DEBUG.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random as _random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

import google_crc32c
import grpc
import structlog
from google.cloud.secretmanager_v1 import SecretManagerServiceAsyncClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
)
from google.cloud.secretmanager_v1.types import service

from omni_secrets.adapters import gsm_errors, gsm_messages
from omni_secrets.adapters.gsm_messages import version_of
from omni_secrets.adapters.retry import RetryPolicy, retry_async
from omni_secrets.domain.clock import Clock, SystemClock
from omni_secrets.domain.errors import ChecksumMismatch, SecretStoreError
from omni_secrets.domain.secret_store import (
    LATEST,
    AccessedSecret,
    SecretChanged,
    SecretInfo,
    VersionInfo,
    VersionState,
)
from omni_secrets.domain.values import SecretValue

T = TypeVar("T")

# Failures that are ours, not a gRPC status: the stored bytes are not text / the response names
# no version. Permanent: retrying returns the same bytes.
INVALID_PAYLOAD = "INVALID_PAYLOAD"
INVALID_RESPONSE = "INVALID_RESPONSE"

_LIST_PAGE_SIZE = 1000
_SECRET_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
# A number, latest, or a version alias (current, previous, ...).
_VERSION_RE = re.compile(r"latest|[1-9][0-9]{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62}")
_PAYLOAD_LOGGERS = (
    "google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc_asyncio",
    "google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc",
)

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GsmCallRecord:
    """One attempt of one RPC, for metrics.

    Attributes:
        method: the RPC name (``AccessSecretVersion``, ``ListSecretVersions``).
        code: the gRPC status code name, ``OK`` on success, or ``CHECKSUM_MISMATCH`` /
            ``INVALID_PAYLOAD`` when the call succeeded but its payload was refused.
        duration_seconds: wall time of the attempt.
        attempt: 1 for the first attempt, 2 for the first retry, ...
    """

    method: str
    code: str
    duration_seconds: float
    attempt: int


class _PayloadProblem(Enum):
    CHECKSUM = "checksum"
    NOT_UTF8 = "not-utf8"


def _verified_text(payload: Any) -> str | _PayloadProblem:
    # Returns instead of raising so that no exception is ever created in a frame holding the
    # payload, and a UnicodeDecodeError (whose .object is the whole payload) never escapes.
    data = bytes(payload.data)
    if "data_crc32c" not in payload or google_crc32c.value(data) != payload.data_crc32c:
        return _PayloadProblem.CHECKSUM
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _PayloadProblem.NOT_UTF8


def _silence_payload_logging() -> None:
    """Keep the library's request/response DEBUG logging (payloads included) off for good.

    Its interceptor logs whole messages when its module logger is DEBUG-enabled, which a DEBUG
    root logger or ``GOOGLE_SDK_PYTHON_LOGGING_SCOPE`` would switch on. A level set on the module
    loggers themselves wins over any ancestor's.
    """
    for name in _PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


class GsmSecretManagerClient:
    """Reads secrets of one GCP project from Secret Manager (or the emulator).

    The gRPC channel is created lazily, inside the event loop of the first call, and the
    client stays bound to that loop (a grpc.aio channel cannot move between loops).

    Args:
        project_id: the GCP project holding the secrets.
        endpoint: None for Google's endpoint with Application Default Credentials; ``host:port``
            for an insecure channel without credentials (the emulator).
        timeout_seconds: deadline of each attempt.
        retry: attempts, backoff and overall deadline for transient failures.
        on_call: called after every attempt with a :class:`GsmCallRecord`; must be cheap; an
            exception it raises is logged and ignored.
        sleep: awaitable sleep between attempts (``asyncio.sleep`` by default).
        random: uniform [0, 1) source for backoff jitter (``random.random`` by default).
        clock: monotonic time for deadlines and durations (the system clock by default).

    .. warning::
        ``endpoint`` sends secrets in plaintext: only ever point it at a loopback emulator.
        The environment guard refuses it in production.
    """

    def __init__(
        self,
        *,
        project_id: str,
        endpoint: str | None,
        timeout_seconds: float,
        retry: RetryPolicy,
        on_call: Callable[[GsmCallRecord], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        random: Callable[[], float] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._project_id = project_id
        self._endpoint = endpoint
        self._timeout = timeout_seconds
        self._retry = retry
        self._on_call = on_call
        self._sleep = sleep or asyncio.sleep
        self._random = random or _random.random
        self._clock = clock or SystemClock()
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (
            f"GsmSecretManagerClient(project_id={self._project_id!r}, "
            f"endpoint={self._endpoint or 'secretmanager.googleapis.com'!r})"
        )

    async def access(self, secret_id: str, version: str = LATEST) -> AccessedSecret:
        """Read one version's payload, CRC32C-verified, as UTF-8 text.

        Args:
            secret_id: the GSM secret id, e.g. ``apex-omni-api-key``.
            version: a version number as a string, or ``latest``.

        Returns:
            The value with the resolved version number (never ``latest``).

        Raises:
            SecretStoreError: ``reason`` is the gRPC code name (transient ones retried first),
                ``INVALID_ARGUMENT`` for a malformed id or version (no call made),
                ``INVALID_PAYLOAD`` for bytes that are not UTF-8, ``INVALID_RESPONSE`` for a
                response naming no version.
            ChecksumMismatch: every attempt returned a payload whose CRC32C did not match.
        """
        _check_ids(secret_id, version)
        name = f"projects/{self._project_id}/secrets/{secret_id}/versions/{version}"
        attempt = functools.partial(self._access_once, name, secret_id)
        return await self._call("AccessSecretVersion", secret_id, attempt)

    async def list_versions(self, secret_id: str) -> Sequence[VersionInfo]:
        """Every version of a secret with its state and create time, newest first.

        One ListSecretVersions call per page of 1,000 versions, each retried on its own.

        Raises:
            SecretStoreError: as :meth:`access`.
        """
        _check_ids(secret_id, LATEST)
        parent = f"projects/{self._project_id}/secrets/{secret_id}"
        versions: list[VersionInfo] = []
        token = ""
        while True:
            attempt = functools.partial(self._list_page_once, parent, secret_id, token)
            page, token = await self._call("ListSecretVersions", secret_id, attempt)
            versions.extend(page)
            if not token:
                break
        return sorted(versions, key=lambda v: int(v.version), reverse=True)

    async def get_version(self, secret_id: str, version: str) -> VersionInfo:
        """One version's state and create time (``GetSecretVersion``), retried like the others.

        Raises:
            SecretStoreError: as :meth:`access`.
        """
        _check_ids(secret_id, version)
        name = f"projects/{self._project_id}/secrets/{secret_id}/versions/{version}"
        attempt = functools.partial(self._get_version_once, name, secret_id)
        return await self._call("GetSecretVersion", secret_id, attempt)

    async def get_secret(self, secret_id: str) -> SecretInfo:
        """GetSecret: aliases, etag, annotations, rotation schedule; retried like reads.

        Raises:
            SecretStoreError: as :meth:`access`.
        """
        _check_ids(secret_id, LATEST)
        name = f"projects/{self._project_id}/secrets/{secret_id}"
        attempt = functools.partial(self._get_secret_once, name, secret_id)
        return await self._call("GetSecret", secret_id, attempt)

    async def held_permissions(self, secret_id: str, permissions: Sequence[str]) -> tuple[str, ...]:
        """TestIamPermissions on the secret: which of ``permissions`` the caller holds.

        Used by ``omni-secrets doctor`` (not by serving); once, not retried.

        Raises:
            SecretStoreError: as :meth:`access` (``UNIMPLEMENTED`` where the endpoint does not
                answer it).
        """
        _check_ids(secret_id, LATEST)
        name = f"projects/{self._project_id}/secrets/{secret_id}"

        async def attempt(deadline: float) -> tuple[str, ...]:
            with gsm_errors.translated("TestIamPermissions", secret_id):
                client = self._client_for_running_loop()
                answer = await client.test_iam_permissions(
                    request={"resource": name, "permissions": list(permissions)},
                    retry=None,
                    timeout=deadline,
                )
            return tuple(answer.permissions)

        return await self._call_once("TestIamPermissions", attempt)

    async def update_aliases(
        self, secret_id: str, aliases: Mapping[str, str], etag: str
    ) -> SecretInfo:
        """UpdateSecret ``version_aliases`` under ``etag``, once (see the port).

        Raises:
            SecretChanged: FAILED_PRECONDITION (the etag is stale, or a destroyed target).
            SecretStoreError: as :meth:`access`.
        """
        value = gsm_messages.check_aliases(secret_id, aliases)
        return await self._update(secret_id, etag, "version_aliases", value)

    async def update_annotations(
        self, secret_id: str, annotations: Mapping[str, str], etag: str
    ) -> SecretInfo:
        """UpdateSecret ``annotations`` under ``etag``, once. Raises as :meth:`update_aliases`."""
        return await self._update(secret_id, etag, "annotations", dict(annotations))

    async def update_rotation(
        self,
        secret_id: str,
        next_rotation_time: datetime | None,
        rotation_period: timedelta | None,
        etag: str,
    ) -> SecretInfo:
        """UpdateSecret ``rotation`` under ``etag``, once. Raises as :meth:`update_aliases`."""
        value = gsm_messages.rotation_value(next_rotation_time, rotation_period)
        return await self._update(secret_id, etag, "rotation", value)

    async def add_version(self, secret_id: str, value: SecretValue) -> VersionInfo:
        """AddSecretVersion with the value's CRC32C, once (never retried: it is not idempotent).

        Raises:
            SecretStoreError: as :meth:`access`.
        """
        _check_ids(secret_id, LATEST)
        parent = f"projects/{self._project_id}/secrets/{secret_id}"
        data = value.reveal().encode("utf-8")
        request = service.AddSecretVersionRequest(
            parent=parent,
            payload={"data": data, "data_crc32c": google_crc32c.value(data)},
        )
        del data
        attempt = functools.partial(self._write_once, "AddSecretVersion", secret_id, request)
        return await self._call_once("AddSecretVersion", attempt)

    async def set_version_state(
        self, secret_id: str, version: str, state: VersionState
    ) -> VersionInfo:
        """EnableSecretVersion or DisableSecretVersion, once.

        Raises:
            SecretStoreError: as :meth:`access`.
            ValueError: ``state`` is DESTROYED.
        """
        if state is VersionState.DESTROYED:
            raise ValueError("destroying a version is not offered here: it cannot be undone")
        _check_ids(secret_id, version)
        name = f"projects/{self._project_id}/secrets/{secret_id}/versions/{version}"
        if state is VersionState.ENABLED:
            method: str = "EnableSecretVersion"
            request: Any = service.EnableSecretVersionRequest(name=name)
        else:
            method = "DisableSecretVersion"
            request = service.DisableSecretVersionRequest(name=name)
        attempt = functools.partial(self._write_once, method, secret_id, request)
        return await self._call_once(method, attempt)

    async def destroy_version(self, secret_id: str, version: str) -> VersionInfo:
        """DestroySecretVersion, once (irreversible; delayed where the secret has a TTL).

        Raises:
            SecretStoreError: as :meth:`access`.
        """
        _check_ids(secret_id, version)
        name = f"projects/{self._project_id}/secrets/{secret_id}/versions/{version}"
        request = service.DestroySecretVersionRequest(name=name)
        method = "DestroySecretVersion"
        attempt = functools.partial(self._write_once, method, secret_id, request)
        return await self._call_once(method, attempt)

    async def aclose(self) -> None:
        """Close the gRPC channel, if one was opened. Idempotent."""
        client, self._client = self._client, None
        self._loop = None
        if client is not None:
            await client.transport.close()

    async def _update(self, secret_id: str, etag: str, path: str, value: Any) -> SecretInfo:
        _check_ids(secret_id, LATEST)
        name = f"projects/{self._project_id}/secrets/{secret_id}"
        request = gsm_messages.update_request(name, etag, path, value)
        attempt = functools.partial(self._update_secret_once, request, secret_id)
        return await self._call_once("UpdateSecret", attempt)

    # --- one attempt each --------------------------------------------------------------------

    async def _get_secret_once(self, name: str, secret_id: str, deadline: float) -> SecretInfo:
        with gsm_errors.translated("GetSecret", secret_id):
            client = self._client_for_running_loop()
            secret = await client.get_secret(
                request=service.GetSecretRequest(name=name), retry=None, timeout=deadline
            )
        return gsm_messages.secret_info(secret_id, secret)

    async def _update_secret_once(
        self, request: Any, secret_id: str, deadline: float
    ) -> SecretInfo:
        try:
            with gsm_errors.translated("UpdateSecret", secret_id):
                client = self._client_for_running_loop()
                secret = await client.update_secret(request=request, retry=None, timeout=deadline)
        except SecretStoreError as exc:
            if exc.reason != "FAILED_PRECONDITION":
                raise
            raise SecretChanged(secret_id) from exc
        return gsm_messages.secret_info(secret_id, secret)

    async def _access_once(self, name: str, secret_id: str, deadline: float) -> AccessedSecret:
        with gsm_errors.translated("AccessSecretVersion", secret_id, resource=name):
            client = self._client_for_running_loop()
            response = await client.access_secret_version(
                request=service.AccessSecretVersionRequest(name=name), retry=None, timeout=deadline
            )
        version = version_of(response.name)
        text = _verified_text(response.payload)
        del response  # no frame on the way out of an error below may keep the payload
        if version is None:
            raise SecretStoreError(
                f"Secret Manager AccessSecretVersion for {secret_id!r} named no version",
                reason=INVALID_RESPONSE,
                transient=False,
                secret_id=secret_id,
            )
        if text is _PayloadProblem.CHECKSUM:
            raise ChecksumMismatch(secret_id, version)
        if text is _PayloadProblem.NOT_UTF8:
            raise SecretStoreError(
                f"{secret_id!r} version {version} is not UTF-8 text",
                reason=INVALID_PAYLOAD,
                transient=False,
                secret_id=secret_id,
            )
        return AccessedSecret(secret_id=secret_id, version=version, value=SecretValue(text))

    async def _get_version_once(self, name: str, secret_id: str, deadline: float) -> VersionInfo:
        with gsm_errors.translated("GetSecretVersion", secret_id, resource=name):
            client = self._client_for_running_loop()
            item = await client.get_secret_version(
                request=service.GetSecretVersionRequest(name=name), retry=None, timeout=deadline
            )
        info = gsm_messages.version_info(item)
        if info is None:
            raise SecretStoreError(
                f"Secret Manager GetSecretVersion for {secret_id!r} named no version",
                reason=INVALID_RESPONSE,
                transient=False,
                secret_id=secret_id,
            )
        return info

    async def _list_page_once(
        self, parent: str, secret_id: str, token: str, deadline: float
    ) -> tuple[list[VersionInfo], str]:
        request = service.ListSecretVersionsRequest(
            parent=parent, page_size=_LIST_PAGE_SIZE, page_token=token
        )
        with gsm_errors.translated("ListSecretVersions", secret_id):
            client = self._client_for_running_loop()
            # The pager holds the first page; reading its attributes makes no further call.
            pager = await client.list_secret_versions(request=request, retry=None, timeout=deadline)
        page: list[VersionInfo] = []
        for item in pager.versions:
            info = gsm_messages.version_info(item)
            if info is not None:
                page.append(info)
        return page, str(pager.next_page_token)

    async def _write_once(
        self, method: str, secret_id: str, request: Any, deadline: float
    ) -> VersionInfo:
        # The client's method is the RPC name in snake case (AddSecretVersion -> add_...).
        rpc = re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()
        with gsm_errors.translated(method, secret_id, resource=getattr(request, "name", None)):
            client = self._client_for_running_loop()
            answer = await getattr(client, rpc)(request=request, retry=None, timeout=deadline)
        info = gsm_messages.version_info(answer)
        if info is None:
            raise SecretStoreError(
                f"Secret Manager {method} for {secret_id!r} named no version",
                reason=INVALID_RESPONSE,
                transient=False,
                secret_id=secret_id,
            )
        return info

    # --- retries, hooks, channel -------------------------------------------------------------

    async def _call_once(self, method: str, attempt: Callable[[float], Awaitable[T]]) -> T:
        """One attempt with the per-call deadline, reported to ``on_call`` like retried calls."""
        started = self._clock.monotonic()
        code = "UNKNOWN"
        try:
            result = await asyncio.wait_for(attempt(self._timeout), self._timeout + 1.0)
            code = "OK"
            return result
        except SecretStoreError as exc:
            code = exc.reason
            raise
        except TimeoutError:
            code = "DEADLINE_EXCEEDED"
            raise SecretStoreError(
                f"Secret Manager {method} did not answer within {self._timeout:g}s",
                reason="DEADLINE_EXCEEDED",
                transient=True,
            ) from None
        finally:
            self._notify(GsmCallRecord(method, code, self._clock.monotonic() - started, 1))

    async def _call(
        self, method: str, secret_id: str, attempt: Callable[[float], Awaitable[T]]
    ) -> T:
        async def timed(number: int, deadline: float) -> T:
            started = self._clock.monotonic()
            code = "UNKNOWN"
            try:
                result = await attempt(deadline)
                code = "OK"
                return result
            except SecretStoreError as exc:
                code = exc.reason
                raise
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            finally:
                self._notify(GsmCallRecord(method, code, self._clock.monotonic() - started, number))

        def on_retry(number: int, exc: Exception, delay: float) -> None:
            _log.info(
                "gsm.retry_scheduled",
                method=method,
                secret_id=secret_id,
                attempt=number,
                reason=getattr(exc, "reason", type(exc).__name__),
                delay_seconds=round(delay, 3),
            )

        return await retry_async(
            timed,
            policy=self._retry,
            retryable=lambda exc: isinstance(exc, SecretStoreError) and exc.transient,
            attempt_timeout=self._timeout,
            sleep=self._sleep,
            random=self._random,
            monotonic=self._clock.monotonic,
            on_retry=on_retry,
        )

    def _notify(self, record: GsmCallRecord) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(record)
        except Exception:
            # Metrics must never turn a successful read into a failure.
            _log.warning("gsm.on_call_hook_failed", method=record.method, exc_info=True)

    def _client_for_running_loop(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None:
            self._client = self._new_client()
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError(
                "GsmSecretManagerClient is bound to the event loop of its first call; "
                "create one client per event loop"
            )
        return self._client

    def _new_client(self) -> Any:
        if self._endpoint is None:
            client = SecretManagerServiceAsyncClient()
        else:
            channel = grpc.aio.insecure_channel(self._endpoint)
            transport = SecretManagerServiceGrpcAsyncIOTransport(channel=channel)
            client = SecretManagerServiceAsyncClient(transport=transport)
        # After construction: the client's constructor is what applies the logging env variable.
        _silence_payload_logging()
        return client


def _check_ids(secret_id: str, version: str) -> None:
    if not _SECRET_ID_RE.fullmatch(secret_id) or not _VERSION_RE.fullmatch(version):
        raise SecretStoreError(
            f"invalid secret id {secret_id!r} or version {version!r}",
            reason="INVALID_ARGUMENT",
            transient=False,
            secret_id=secret_id,
        )
