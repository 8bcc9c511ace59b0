"""The audit rows break-glass writes, built in one place for both ways they are written.

``break_glass_activate``, ``break_glass_expire`` and ``break_glass_revoke`` commit with the
override in the service's unit of work (fail closed, except a revoke's when the audit is down:
then it is queued, see ``RevokeAuditDeferred``); ``break_glass_rejected`` is written by a
reaction, best effort. Rows carry ids, codes and times only, never a value.
"""

from __future__ import annotations

from datetime import datetime

from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.models import BreakGlassOverrideRecord, NewAccessEvent, OverrideEndReason
from omni_secrets.service.auditor import access_event
from omni_secrets.service.break_glass.events import ActivationRejected


def activation_row(
    record: BreakGlassOverrideRecord,
    *,
    ttl_seconds: int,
    issued_at: datetime,
    correlation_id: str | None,
    started: float,
) -> NewAccessEvent:
    """``break_glass_activate``, timed from ``started`` (a ``time.perf_counter()`` reading)."""
    return access_event(
        action="break_glass_activate",
        at=record.activated_at,
        actor=record.actor,
        secret_type=record.secret_type.value,
        correlation_id=correlation_id,
        started=started,
        details={
            "overrideId": record.override_id,
            "keyId": record.key_id,
            "ttlSeconds": ttl_seconds,
            "activatedAt": to_rfc3339(record.activated_at),
            "expiresAt": to_rfc3339(record.expires_at),
            "issuedAt": to_rfc3339(issued_at),
            "reason": record.reason,
            "ticket": record.ticket,
        },
    )


def rejection_row(event: ActivationRejected) -> NewAccessEvent:
    """``break_glass_rejected``: ``conflict`` for a replay, ``denied`` for every other refusal."""
    return access_event(
        action="break_glass_rejected",
        at=event.at,
        actor=event.actor,
        result="conflict" if event.conflict else "denied",
        secret_type=event.secret_type.value if event.secret_type else None,
        correlation_id=event.correlation_id,
        details={
            "code": event.code,
            "ttlSeconds": event.ttl_seconds,
            "ticket": event.ticket,
        },
    )


def end_row(
    record: BreakGlassOverrideRecord,
    end_reason: OverrideEndReason,
    actor: str,
    correlation_id: str | None,
    now: datetime,
) -> NewAccessEvent:
    """``break_glass_revoke`` (with the seconds it had left) or ``break_glass_expire``."""
    details: dict[str, object] = {
        "overrideId": record.override_id,
        "activatedAt": to_rfc3339(record.activated_at),
        "expiresAt": to_rfc3339(record.expires_at),
        "activatedBy": record.actor,
        "ticket": record.ticket,
    }
    if end_reason == "revoked":
        details["remainingSeconds"] = max(0, int((record.expires_at - now).total_seconds()))
    return access_event(
        action="break_glass_revoke" if end_reason == "revoked" else "break_glass_expire",
        at=now,
        actor=actor,
        secret_type=record.secret_type.value,
        correlation_id=correlation_id,
        details=details,
    )
