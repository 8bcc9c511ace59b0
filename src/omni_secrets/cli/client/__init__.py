"""The CLI's typed client of a running omni-secrets API (the ten API commands go through it).

:class:`ApiClient` has one method per route and returns the parsed answer (``_models``); a call
that gives no usable answer raises an :class:`ApiError` (``_exceptions``), never exits. Light on
import: httpx loads when a client is made.
"""

from omni_secrets.cli.client._client import ApiClient
from omni_secrets.cli.client._exceptions import (
    ApiError,
    ApiStatusError,
    ApiUnreachable,
    UnexpectedAnswer,
)
from omni_secrets.cli.client._fields import Instant
from omni_secrets.cli.client._models import (
    ActiveOverride,
    ActiveOverrides,
    ApexSelfTest,
    BreakGlassActivation,
    BreakGlassPublicKey,
    OverrideRevoked,
    RefreshProgress,
    RefreshRequested,
    ReplicaProgress,
    RotationCancelled,
    RotationCommitted,
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
    "Instant",
    "OverrideRevoked",
    "RefreshProgress",
    "RefreshRequested",
    "ReplicaProgress",
    "RotationCancelled",
    "RotationCommitted",
    "RotationPreview",
    "RotationState",
    "SecretState",
    "StatusReport",
    "UnexpectedAnswer",
]
