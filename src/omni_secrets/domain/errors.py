"""Domain errors, one hierarchy shared by the HTTP API and the CLI.

Each error carries structured attributes and a message that is safe to show to a user: never a
secret value. How an error maps to an HTTP status lives in ``api/errors.py``; how it maps to a CLI
exit code lives in ``cli``. The tree::

    OmniSecretsError
    ├── NotFound
    │   ├── PreviewNotFound
    │   ├── OverrideNotFound
    │   └── RefreshRequestNotFound
    ├── InvalidInput
    │   ├── UnknownSecretType
    │   ├── TtlTooLong
    │   ├── CiphertextInvalid
    │   ├── PayloadMismatch
    │   ├── PayloadExpired
    │   ├── UnknownKeyId
    │   ├── ValueNotHeaderSafe
    │   └── CandidateVersionInvalid
    ├── Conflict
    │   ├── RotationInProgress
    │   ├── PreviewNotReady
    │   └── ReplayDetected
    ├── Unavailable
    │   ├── SecretsUnavailable          (FR-012: required types not served)
    │   ├── SecretStoreError            (GSM; ``transient`` tells retryable from permanent)
    │   │   └── ChecksumMismatch
    │   ├── AuditUnavailable
    │   ├── DatabaseUnavailable         (the database cannot be reached or fails a transaction)
    │   ├── CatalogNotSeeded            (``omni_secret_metadata`` lacks catalog rows: db seed)
    │   ├── BreakGlassDisabled
    │   ├── ApexUpstreamError
    │   └── AlertDeliveryFailed         (a remote alert sink gave up; never reaches a caller)
    └── ConfigurationRejected           (the environment guard)
        ├── BreakGlassKeyInvalid        (malformed or mismatched break-glass key pair)
        ├── IntegrityKeyInvalid         (OMNI_INTEGRITY_KEY_FILE missing, short or unreadable)
        └── AuthPolicyInvalid           (OMNI_AUTH_POLICY_FILE unreadable or invalid)

Programming errors (a cache used before it started, a bad argument combination) are not part of
this tree: they raise ``RuntimeError``/``ValueError`` and end up as a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from omni_secrets.domain.clock import to_rfc3339


class OmniSecretsError(Exception):
    """Base of every expected failure. ``message`` is safe to show; ``details`` is JSON-able."""

    code: str = "INTERNAL"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --- not found -------------------------------------------------------------------------------


class NotFound(OmniSecretsError):
    """Raised when the thing a caller names (preview, override, refresh request) does not exist."""

    code = "NOT_FOUND"


class PreviewNotFound(NotFound):
    """Raised when a rotation preview is unknown, expired or no longer open."""

    def __init__(self, preview_id: str) -> None:
        super().__init__(f"no open rotation preview {preview_id!r}")
        self.preview_id = preview_id


class OverrideNotFound(NotFound):
    """Raised when a break-glass override is unknown or already ended."""

    def __init__(self, override_id: str) -> None:
        super().__init__(f"no active break-glass override {override_id!r}")
        self.override_id = override_id


class RefreshRequestNotFound(NotFound):
    """Raised when a cache refresh request id is unknown (or forgotten)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"no cache refresh request {request_id!r}")
        self.request_id = request_id


# --- invalid input ---------------------------------------------------------------------------


class InvalidInput(OmniSecretsError):
    """Raised when a caller's input breaks a rule (nothing is changed)."""

    code = "VALIDATION_FAILED"


class UnknownSecretType(InvalidInput):
    """Raised when a secret type outside the catalog is named."""

    def __init__(self, secret_type: str) -> None:
        from omni_secrets.domain.catalog import SecretType  # catalog imports this module

        valid = [member.value for member in SecretType]
        super().__init__(
            f"unknown secret type {secret_type!r}; valid types: {', '.join(valid)}",
            details={"secretType": secret_type, "validTypes": valid},
        )
        self.secret_type = secret_type


class TtlTooLong(InvalidInput):
    """Raised when a break-glass TTL exceeds the 30-minute maximum."""

    code = "TTL_TOO_LONG"

    def __init__(self, ttl_seconds: float, max_seconds: int) -> None:
        super().__init__(
            f"break-glass TTL {ttl_seconds:g}s exceeds the maximum of {max_seconds}s",
            details={"ttlSeconds": ttl_seconds, "maxTtlSeconds": max_seconds},
        )


class CiphertextInvalid(InvalidInput):
    """Raised when a break-glass ciphertext cannot be opened or is not a valid payload."""

    code = "CIPHERTEXT_INVALID"


class ValueNotHeaderSafe(InvalidInput):
    """A credential that travels in an HTTP header holds a character no header can carry.

    The message names the type only: never a character of the value or its position.
    """

    code = "VALUE_NOT_HEADER_SAFE"

    def __init__(self, secret_type: str) -> None:
        super().__init__(
            f"the {secret_type} value contains characters an HTTP header cannot carry "
            "(only printable ASCII without leading or trailing spaces is accepted)",
            details={"secretType": secret_type},
        )
        self.secret_type = secret_type


class PayloadMismatch(InvalidInput):
    """Raised when a sealed payload names another secret type than the request."""

    code = "PAYLOAD_MISMATCH"


class PayloadExpired(InvalidInput):
    """Raised when a sealed payload's issuedAt is too old or in the future."""

    code = "PAYLOAD_EXPIRED"


class UnknownKeyId(InvalidInput):
    """Raised when a break-glass payload is sealed to a key this service does not hold."""

    code = "UNKNOWN_KEY_ID"


class CandidateVersionInvalid(InvalidInput):
    """Raised when a rotation candidate version is not a number, not found or not enabled."""


# --- conflicts -------------------------------------------------------------------------------


class Conflict(OmniSecretsError):
    """Raised when the current state forbids the operation now (retrying later may succeed)."""

    code = "CONFLICT"


class RotationInProgress(Conflict):
    """Raised when another open preview holds the rotation group's lock."""

    code = "ROTATION_IN_PROGRESS"

    def __init__(self, group: str, preview_id: str, expires_at: datetime) -> None:
        super().__init__(
            f"rotation group {group!r} is locked by an open preview",
            details={"previewId": preview_id, "expiresAt": to_rfc3339(expires_at)},
        )
        self.group = group
        self.preview_id = preview_id
        self.expires_at = expires_at


class PreviewNotReady(Conflict):
    """Raised when committing a preview one of whose checks failed."""

    code = "PREVIEW_NOT_READY"


class CandidateChanged(Conflict):
    """Raised when a commit finds a candidate no longer ENABLED, or its payload not the one
    previewed (contract section 15): nothing was moved."""

    code = "CANDIDATE_CHANGED"


class GsmChanged(Conflict):
    """Raised when a member's aliases changed in GSM since the preview (or during the commit):
    nothing is left moved (contract section 15)."""

    code = "GSM_CHANGED"


class RollbackNotPossible(Conflict):
    """Raised when a rollback finds no ``previous`` version, one not ENABLED, or a failed check:
    nothing was changed (contract section 15)."""

    code = "ROLLBACK_NOT_POSSIBLE"


class ReplayDetected(Conflict):
    """Raised when a break-glass payload's nonce was used before."""

    code = "REPLAY_DETECTED"


# --- unavailable -----------------------------------------------------------------------------


class Unavailable(OmniSecretsError):
    """Raised when a dependency (GSM, the database, ApeX, audit) cannot do its part now."""

    code = "UNAVAILABLE"


class SecretsUnavailable(Unavailable):
    """Raised when required credentials are not served (FR-012); GSM is not called."""

    code = "OMNI_SECRETS_UNAVAILABLE"

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            "required ApeX Omni credentials are not available: " + ", ".join(missing),
            details={"missing": list(missing)},
        )
        self.missing = tuple(missing)


class SecretStoreError(Unavailable):
    """Raised when a Secret Manager call fails.

    Attributes:
        reason: the gRPC status code name (``UNAVAILABLE``, ``NOT_FOUND``, …) or
            ``CHECKSUM_MISMATCH``; bounded, usable as a metric label.
        transient: True when retrying may help (the cache keeps serving the old value within
            its stale bound); False for permanent failures (the cache drops the entry).
    """

    code = "UNAVAILABLE"

    def __init__(
        self, message: str, *, reason: str, transient: bool, secret_id: str | None = None
    ) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason
        self.transient = transient
        self.secret_id = secret_id


class ChecksumMismatch(SecretStoreError):
    """Raised when a GSM payload does not match its CRC32C checksum (transient)."""

    def __init__(self, secret_id: str | None = None, version: str | None = None) -> None:
        where = f" for {secret_id} version {version}" if secret_id else ""
        super().__init__(
            f"payload CRC32C mismatch{where}",
            reason="CHECKSUM_MISMATCH",
            transient=True,
            secret_id=secret_id,
        )


class AuditUnavailable(Unavailable):
    """Raised when an audit event that must be written first cannot be (nothing changes)."""

    code = "AUDIT_UNAVAILABLE"


class DatabaseUnavailable(Unavailable):
    """Raised when the database cannot be reached or a transaction fails operationally."""


class CatalogNotSeeded(Unavailable):
    """Raised when catalog types lack a metadata row (``omni-secrets db seed`` never ran).

    Attributes:
        missing: the secret types without a row.
    """

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            "secret metadata is not seeded for: "
            + ", ".join(missing)
            + " (run 'omni-secrets db seed')",
            details={"missing": list(missing)},
        )
        self.missing = tuple(missing)


class BreakGlassDisabled(Unavailable):
    """Raised when break-glass is used but no key pair is configured."""

    code = "BREAK_GLASS_DISABLED"

    def __init__(self) -> None:
        super().__init__("break-glass is disabled: no key pair is configured")


class ApexUpstreamError(Unavailable):
    """Raised when ApeX Omni fails, refuses or cannot be reached."""

    code = "APEX_UPSTREAM_ERROR"


class AlertDeliveryFailed(Unavailable):
    """Raised when a remote alert sink (PagerDuty) did not accept an event.

    Raised by sinks (after their retries, if any) to the alert dispatcher, which logs and counts
    it; it never reaches an HTTP or CLI caller because alerts are delivered in the background.
    """

    code = "ALERT_DELIVERY_FAILED"


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigViolation:
    """One broken startup rule: which variables, the rule, and a sentence naming the values."""

    variables: tuple[str, ...]
    rule: str
    message: str


class ConfigurationRejected(OmniSecretsError):
    """Raised when the environment guard refuses the configuration; nothing may be served."""

    code = "CONFIGURATION_REJECTED"

    def __init__(self, violations: Sequence[ConfigViolation]) -> None:
        self.violations = tuple(violations)
        text = "; ".join(f"{v.message} [{v.rule}]" for v in self.violations)
        super().__init__(f"configuration rejected: {text}")


class BreakGlassKeyInvalid(ConfigurationRejected):
    """Raised when the break-glass key pair is malformed or its halves do not belong together.

    Args:
        reason: what is wrong, in words that never quote the private key.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            [
                ConfigViolation(
                    variables=("OMNI_BREAKGLASS_PUBLIC_KEY", "OMNI_BREAKGLASS_PRIVATE_KEY_FILE"),
                    rule="break-glass key pair",
                    message=reason,
                )
            ]
        )
        self.reason = reason


class IntegrityKeyInvalid(ConfigurationRejected):
    """An ``OMNI_INTEGRITY_KEY_FILE`` file is missing, unreadable, not base64 or too short.

    Args:
        reason: what is wrong, naming the file but never quoting its contents.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            [
                ConfigViolation(
                    variables=("OMNI_INTEGRITY_KEY_FILE",),
                    rule="integrity key",
                    message=reason,
                )
            ]
        )
        self.reason = reason


class AuthPolicyInvalid(ConfigurationRejected):
    """The auth policy file cannot be read, decoded or validated.

    Args:
        path: the file (``OMNI_AUTH_POLICY_FILE``).
        problem: what is wrong, naming the entry (``grants[2] ('email:…')``) when there is one.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            [
                ConfigViolation(
                    variables=("OMNI_AUTH_POLICY_FILE",),
                    rule="auth policy",
                    message=f"OMNI_AUTH_POLICY_FILE={path!r}: {problem}",
                )
            ]
        )
        self.path = path
        self.problem = problem
