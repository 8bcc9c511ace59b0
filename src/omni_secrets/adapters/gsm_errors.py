"""Translation of Secret Manager client errors into :class:`SecretStoreError`: one table.

The official client raises google.api_core exceptions (api_core wraps gRPC errors), raw gRPC
errors when something bypasses that wrapping, and google.auth exceptions while obtaining
credentials. :data:`EXCEPTION_REASONS` maps each family to a gRPC status code name; the most
specific class in an exception's MRO wins (as httpx's ``map_httpcore_exceptions`` does), and
:func:`translated` raises the domain error ``from`` the vendor one. Transience comes from
:data:`~omni_secrets.domain.secret_store.TRANSIENT_REASONS`, never from this table, so retries,
the cache and the fakes agree. A guard test checks that every api_core class is covered.

Vendor errors of failed calls carry the server's status text, never a payload, so chaining them
is safe; the domain error's own message names only the secret id, the version, the reason and
the RPC.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import google.auth.exceptions as auth_exceptions
import grpc
from google.api_core import exceptions as core_exceptions

from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import TRANSIENT_REASONS

# Vendor exception class -> reason (a gRPC status code name), or None to read the code from the
# exception itself. The most specific class in the exception's MRO wins. Every api_core class
# that carries a gRPC status is listed by name, so a guard test can check nothing is missing.
EXCEPTION_REASONS: dict[type[BaseException], str | None] = {
    core_exceptions.ServiceUnavailable: "UNAVAILABLE",
    core_exceptions.DeadlineExceeded: "DEADLINE_EXCEEDED",
    core_exceptions.ResourceExhausted: "RESOURCE_EXHAUSTED",
    core_exceptions.InternalServerError: "INTERNAL",
    core_exceptions.NotFound: "NOT_FOUND",
    core_exceptions.PermissionDenied: "PERMISSION_DENIED",
    core_exceptions.Unauthenticated: "UNAUTHENTICATED",
    core_exceptions.FailedPrecondition: "FAILED_PRECONDITION",
    core_exceptions.InvalidArgument: "INVALID_ARGUMENT",
    core_exceptions.OutOfRange: "OUT_OF_RANGE",
    core_exceptions.AlreadyExists: "ALREADY_EXISTS",
    core_exceptions.Aborted: "ABORTED",
    core_exceptions.Cancelled: "CANCELLED",
    core_exceptions.DataLoss: "DATA_LOSS",
    core_exceptions.MethodNotImplemented: "UNIMPLEMENTED",
    core_exceptions.Unknown: "UNKNOWN",
    # The library's own retry gave up (unreachable with retry=None, kept for safety).
    core_exceptions.RetryError: "DEADLINE_EXCEEDED",
    # Any other call error (HTTP-only classes never raised over gRPC): its status, or UNKNOWN.
    core_exceptions.GoogleAPICallError: None,
    # Client-side setup problems (duplicate credential arguments, ...).
    core_exceptions.GoogleAPIError: "UNKNOWN",
    # A raw gRPC error that api_core did not wrap: its status code.
    grpc.RpcError: None,
    # Credentials: ADC missing or refused is permanent; failing to reach the token server is not.
    auth_exceptions.GoogleAuthError: "UNAUTHENTICATED",
    auth_exceptions.TransportError: "UNAVAILABLE",
    auth_exceptions.TimeoutError: "DEADLINE_EXCEEDED",
}


def reason_for(exc: BaseException) -> str | None:
    """The gRPC code name a vendor exception stands for, or None when it is not a vendor error."""
    for cls in type(exc).__mro__:
        if cls in EXCEPTION_REASONS:
            reason = EXCEPTION_REASONS[cls]
            return reason if reason is not None else _status_name(exc)
    return None


def _status_name(exc: BaseException) -> str:
    status = getattr(exc, "grpc_status_code", None)
    if status is None:
        code = getattr(exc, "code", None)
        status = code() if callable(code) else None
    name = getattr(status, "name", None)
    return name if isinstance(name, str) and name != "OK" else "UNKNOWN"


@contextmanager
def translated(method: str, secret_id: str, *, resource: str | None = None) -> Iterator[None]:
    """Translate vendor exceptions raised inside the block.

    The message names the secret and, when the call was about one, the version first, as an
    operator reads it: ``apex-omni-api-key version 2: NOT_FOUND (Secret Manager
    AccessSecretVersion)``.

    Args:
        method: the RPC name, for the message.
        secret_id: the secret the call was about, for the message and the error.
        resource: the version's resource name (``…/versions/2``, ``…/versions/latest``), when
            the call named one.

    Raises:
        SecretStoreError: for any exception :func:`reason_for` recognises, chained to it.
            Anything else (a bug, cancellation) passes through unchanged.
    """
    try:
        yield
    except Exception as exc:
        reason = reason_for(exc)
        if reason is None:
            raise
        raise SecretStoreError(
            f"{subject(secret_id, resource)}: {reason} (Secret Manager {method})",
            reason=reason,
            transient=reason in TRANSIENT_REASONS,
            secret_id=secret_id,
        ) from exc


def subject(secret_id: str, resource: str | None = None) -> str:
    """``apex-omni-api-key version 2``: what a message is about (the secret alone without a
    version resource)."""
    if resource is None or "/versions/" not in resource:
        return secret_id
    return f"{secret_id} version {resource.rsplit('/versions/', 1)[1]}"
