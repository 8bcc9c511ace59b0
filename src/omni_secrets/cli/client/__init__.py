"""The CLI's typed client of a running omni-secrets API (the ten API commands go through it).

:class:`ApiClient` has one method per route and returns the parsed answer (``_models``); a call
that gives no usable answer raises an :class:`ApiError` (``_exceptions``), never exits. Light on
import: the errors load with the CLI (``main`` catches them), the client and its models on first
use (``omni-secrets --help`` does not build two dozen dataclasses), httpx when a client is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omni_secrets.cli.client._exceptions import (
    ApiError,
    ApiStatusError,
    ApiUnreachable,
    UnexpectedAnswer,
)

if TYPE_CHECKING:
    from omni_secrets.cli.client._client import ApiClient
    from omni_secrets.cli.client._fields import Instant
    from omni_secrets.cli.client._models import (
        ActiveOverride,
        ActiveOverrides,
        ApexSelfTest,
        BreakGlassActivation,
        BreakGlassPublicKey,
        CancelAnswer,
        CommitAnswer,
        RefreshProgress,
        RefreshRequested,
        ReplicaProgress,
        RevokeAnswer,
        RollbackAnswer,
        RotationPreview,
        RotationState,
        SecretState,
        StatusReport,
    )

__all__ = [
    "ActiveOverride",
    "ActiveOverrides",
    "ApexSelfTest",
    "ApiClient",
    "ApiError",
    "ApiStatusError",
    "ApiUnreachable",
    "BreakGlassActivation",
    "BreakGlassPublicKey",
    "CancelAnswer",
    "CommitAnswer",
    "Instant",
    "RefreshProgress",
    "RefreshRequested",
    "ReplicaProgress",
    "RevokeAnswer",
    "RollbackAnswer",
    "RotationPreview",
    "RotationState",
    "SecretState",
    "StatusReport",
    "UnexpectedAnswer",
]

_MODULE_OF = {"ApiClient": "_client", "Instant": "_fields"} | dict.fromkeys(
    (
        "ActiveOverride",
        "ActiveOverrides",
        "ApexSelfTest",
        "BreakGlassActivation",
        "BreakGlassPublicKey",
        "RevokeAnswer",
        "RefreshProgress",
        "RefreshRequested",
        "ReplicaProgress",
        "CancelAnswer",
        "CommitAnswer",
        "RollbackAnswer",
        "RotationPreview",
        "RotationState",
        "SecretState",
        "StatusReport",
    ),
    "_models",
)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
