"""Domain records: what the database keeps about secrets, audit events, overrides and previews.

Every model is a frozen pydantic v2 model whose timestamps are timezone-aware and normalised to
UTC on construction (a naive datetime is refused: we never guess a zone). None of them has a
field for a secret value: metadata names versions, overrides keep only the sealed ciphertext, and
audit ``details`` must never carry a value (the callers' rule, checked by the canary tests).

- :class:`OmniSecretMetadata` — one row per catalog type: pinned version, rotation dates, the
  group's rotation lock (``preview_id``/``preview_expires_at``) and the break-glass window.
- :class:`NewAccessEvent` / :class:`OmniSecretAccessEvent` — an audit event before and after it
  is chained and stored (contract section 7).
- :class:`BreakGlassOverrideRecord` — an activated override (ciphertext only).
- :class:`RotationPreviewRecord` — an open/committed/cancelled rotation preview.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from omni_secrets.domain.catalog import RotationGroup, SecretType
from omni_secrets.domain.integrity import IntegrityStatus
from omni_secrets.domain.secret_store import VersionState


def _to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC (naive input is a validation error)."""

AuditAction = Literal[
    "hydrate",
    "refresh",
    "status_view",
    "rotation_preview",
    "rotation_commit",
    "rotation_cancel",
    "rotation_rollback",
    "break_glass_activate",
    "break_glass_rejected",
    "break_glass_revoke",
    "break_glass_expire",
    "cache_refresh_requested",
    "self_test",
    "rotation_alert",
    "current_alias_named",
    "rotation_recovered",
    "rotation_adopted",
    "integrity_rekeyed",
]
"""The audit actions of contract section 7."""

AUDIT_ACTIONS: tuple[str, ...] = get_args(AuditAction)

AuditResult = Literal["success", "failure", "denied", "conflict"]

SYSTEM_ACTOR = "system"
"""The audit ``actor`` of the service's own work (hydration, background refreshes, jobs)."""
"""The audit results of contract section 7."""

AUDIT_RESULTS: tuple[str, ...] = get_args(AuditResult)

OverrideEndReason = Literal["revoked", "expired"]
PreviewStatus = Literal["open", "committed", "cancelled"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OmniSecretMetadata(_Record):
    """What the database knows about one secret type (never its value).

    Attributes:
        secret_type: the catalog type (primary key).
        gsm_secret_id: the GSM secret id, prefix included.
        gsm_project_id: the GCP project holding the secret.
        required: whether Omni consumer calls need the type (FR-012).
        rotation_group: the group rotated together.
        active_version: the pinned GSM version served by the cache; None until the first
            successful fetch (or a rotation commit) pins one.
        last_rotated_at: when the active credentials were issued (GSM create time) or rotated.
        rotation_due_at: ``last_rotated_at`` + the rotation period.
        preview_id: the open preview holding the group's rotation lock, or None.
        preview_expires_at: when that lock lapses (an expired lock may be taken over).
        break_glass_activated_at: start of the active break-glass window, or None.
        break_glass_expires_at: end of the active break-glass window, or None.
        created_at: row creation time.
        updated_at: last change of the row.
        pin_integrity: what the row's pin MAC says (computed on read, never stored): a pin
            that is not ``servable`` makes its type fail closed.
    """

    secret_type: SecretType
    gsm_secret_id: str = Field(min_length=1, max_length=255)
    gsm_project_id: str = Field(min_length=1, max_length=255)
    required: bool
    rotation_group: RotationGroup
    active_version: str | None = Field(default=None, max_length=32)
    last_rotated_at: UtcDatetime
    rotation_due_at: UtcDatetime
    preview_id: str | None = Field(default=None, max_length=64)
    preview_expires_at: UtcDatetime | None = None
    break_glass_activated_at: UtcDatetime | None = None
    break_glass_expires_at: UtcDatetime | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    pin_integrity: IntegrityStatus = IntegrityStatus.UNCHECKED


_JSON_IDENTITY = frozenset({str, int, bool, type(None)})


class NewAccessEvent(_Record):
    """An audit event as the service records it, before it is numbered and chained.

    Attributes:
        occurred_at: when the audited operation happened.
        secret_type: the type concerned, or None for events about no single type.
        action: one of the contract's actions (:data:`AuditAction`).
        actor: the token's ``sub``, or ``system`` for the service's own jobs.
        result: ``success``, ``failure``, ``denied`` or ``conflict``.
        duration_ms: how long the operation took, when measured.
        correlation_id: the request id (``X-Request-ID``) the event belongs to.
        details: JSON-able context (ids, versions, error codes) — never a secret value. Must be
            representable as strict JSON (no NaN/Infinity), because the hash chain covers it.
    """

    occurred_at: UtcDatetime
    secret_type: str | None = Field(default=None, max_length=64)
    action: AuditAction
    actor: str = Field(min_length=1, max_length=255)
    result: AuditResult
    duration_ms: int | None = Field(default=None, ge=0)
    correlation_id: str | None = Field(default=None, max_length=128)
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _strict_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The chain hashes a JSON rendering that must survive a database round trip unchanged:
        # normalise through strict JSON once, so what we hash is exactly what we read back.
        if all(type(k) is str and type(v) in _JSON_IDENTITY for k, v in value.items()):
            return dict(value)  # flat text/integers/booleans/nulls: the round trip is the identity
        try:
            return dict(json.loads(json.dumps(value, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"details must be strict JSON: {exc}") from None


class OmniSecretAccessEvent(NewAccessEvent):
    """A stored audit row: the event plus its gapless id and its place in the SHA-256 chain.

    Attributes:
        id: gapless, increasing from 1.
        prev_hash: the previous row's ``row_hash`` (64 zeros for the first row).
        row_hash: ``HMAC-SHA256(key, prev_hash || canonical bytes)`` as lowercase hex, or
            plain SHA-256 for rows written before the integrity key existed
            (see :mod:`omni_secrets.domain.audit_chain`).
        key_id: the integrity key's id for a keyed row; None for an unkeyed (legacy) row.
    """

    id: int = Field(ge=1)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    row_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    key_id: str | None = Field(default=None, max_length=64)


class BreakGlassOverrideRecord(_Record):
    """An activated break-glass override as stored: the sealed ciphertext, never the value.

    Attributes:
        override_id: the override's id.
        secret_type: the overridden type.
        key_id: the id of the X25519 key the payload was sealed to.
        ciphertext: the sealed box, base64; decrypted in memory only.
        nonce: the payload's single-use nonce (base64), also kept in the used-nonce table.
        actor: who activated it.
        reason: why (non-empty).
        ticket: an incident reference, if given.
        activated_at: start of the window.
        expires_at: end of the window (at most 30 minutes after ``activated_at``).
        ended_at: when it ended early or was marked expired; None while not ended.
        end_reason: ``revoked`` or ``expired`` once ended.
        integrity: what the row's MAC says (computed on read, never stored): an override that
            is not ``servable`` is never served.
    """

    override_id: str = Field(min_length=1, max_length=64)
    secret_type: SecretType
    key_id: str = Field(min_length=1, max_length=64)
    ciphertext: str = Field(min_length=1)
    nonce: str = Field(min_length=1, max_length=128)
    actor: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1)
    ticket: str | None = Field(default=None, max_length=255)
    activated_at: UtcDatetime
    expires_at: UtcDatetime
    ended_at: UtcDatetime | None = None
    end_reason: OverrideEndReason | None = None
    integrity: IntegrityStatus = IntegrityStatus.UNCHECKED

    def is_active(self, now: datetime) -> bool:
        """True while not ended and ``now`` is before ``expires_at``."""
        return self.ended_at is None and now < self.expires_at


class PreviewMemberRecord(_Record):
    """One type of a rotation preview: what is served now and what the commit would pin."""

    secret_type: SecretType
    current_version: str | None
    candidate_version: str
    candidate_state: VersionState
    #: Keyed digest of the candidate payload as previewed (``service/rotation/aliases``; a MAC
    #: ``key_id:hex`` under the integrity key when one is configured): the commit refuses a
    #: payload that differs. Never a value; None in rows stored before it.
    candidate_digest: str | None = Field(default=None, max_length=160)


class PreviewCheckRecord(_Record):
    """One named check of a rotation preview (``candidates_enabled``, ``apex_self_test``, …)."""

    name: str = Field(min_length=1, max_length=64)
    ok: bool
    detail: str


class RotationPreviewRecord(_Record):
    """A rotation preview as stored.

    Attributes:
        preview_id: the preview's id; also the holder id of the group's rotation lock.
        rotation_group: the group it covers.
        actor: who asked for it.
        created_at: when it was made.
        expires_at: when it (and its lock) lapse.
        ready: True only when every check is ok.
        members: one entry per group member.
        checks: the checks that ran, in order.
        status: ``open``, ``committed`` or ``cancelled``.
        integrity: what the row's MAC says (computed on read, never stored): a preview that is
            not ``servable`` is never committed (contract section 17).
    """

    preview_id: str = Field(min_length=1, max_length=64)
    rotation_group: RotationGroup
    actor: str = Field(min_length=1, max_length=255)
    created_at: UtcDatetime
    expires_at: UtcDatetime
    ready: bool
    members: tuple[PreviewMemberRecord, ...]
    checks: tuple[PreviewCheckRecord, ...]
    status: PreviewStatus = "open"
    integrity: IntegrityStatus = IntegrityStatus.UNCHECKED
