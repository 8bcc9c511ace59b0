"""What the break-glass service reports once it has decided: one frozen event per thing done.

The service emits these through its :class:`~omni_secrets.service.messagebus.EventBus`, in the
order things happen; what follows each (log line, metric, alert, best-effort audit row, peer
announcement, the log redactor learning or forgetting a value) is in
:mod:`~omni_secrets.service.break_glass.reactions`. The audit rows that must commit with the
override (activate, revoke, expire) are not events: the service writes them in its unit of work.

Some events carry a decrypted :class:`~omni_secrets.domain.values.SecretValue` (it redacts itself
in ``repr``): only those whose reactions must teach the redactor a value, or let it go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.models import BreakGlassOverrideRecord
from omni_secrets.domain.values import SecretValue

# -- activation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivationRejected:
    """An activation was refused (every 4xx after the key-pair check).

    Attributes:
        code: the error's code (``TTL_TOO_LONG``, ``REPLAY_DETECTED``, ...).
        secret_type: the requested type when it is in the catalog, else None (no metric label).
        ttl_seconds: the requested lifetime.
        ticket: the request's ticket when the database can store it, else None.
        actor: the token's subject.
        correlation_id: the request id.
        conflict: a replay (audited as ``conflict``; every other refusal is ``denied``).
        at: when it was refused.
    """

    code: str
    secret_type: SecretType | None
    ttl_seconds: int
    ticket: str | None
    actor: str
    correlation_id: str | None
    conflict: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class DecryptionFailed:
    """A sealed payload of ``secret_type`` was tried and could not be opened (a failed read).

    Not emitted for an unknown key id: nothing is decrypted then.
    """

    secret_type: SecretType


@dataclass(frozen=True, slots=True)
class ActivationNotAudited:
    """The activation's transaction (with its audit row) failed: nothing was stored or served."""

    secret_type: SecretType
    actor: str


@dataclass(frozen=True, slots=True)
class OverrideCommitted:
    """An activation committed here; ``value`` is about to be installed in the cache.

    Emitted before the install so the log redactor knows the value before anything could log
    it, and not before the commit: a refused payload (replay, audit down) must not let its sender
    choose words to mask out of every later log line.
    """

    record: BreakGlassOverrideRecord
    value: SecretValue


@dataclass(frozen=True, slots=True)
class OverrideActivated:
    """A committed activation is served here now (the 201 follows)."""

    record: BreakGlassOverrideRecord


# -- the end of overrides ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverrideRevoked:
    """An operator ended ``record`` early, here, at ``at``."""

    record: BreakGlassOverrideRecord
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RevokeAuditDeferred:
    """A revoke was committed without its audit row (audit writes failing): the row is owed.

    A revoke reduces exposure, so it does not fail closed; its ``break_glass_revoke`` row is
    queued for the background writer instead.
    """

    record: BreakGlassOverrideRecord
    actor: str
    correlation_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OverrideExpired:
    """``record`` is past its expiry and ended in the database (here, or by another replica)."""

    record: BreakGlassOverrideRecord


@dataclass(frozen=True, slots=True)
class ExpiryFailed:
    """Ending an override past its expiry failed (audit or database down); retried next pass."""

    override_id: str
    error_type: str


@dataclass(frozen=True, slots=True)
class OverrideEndedElsewhere:
    """The database says ``record`` ended before its expiry (revoked on another replica)."""

    record: BreakGlassOverrideRecord


@dataclass(frozen=True, slots=True)
class OverridesDropped:
    """This process stopped serving ended overrides.

    Attributes:
        values: the values it no longer serves (the redactor may forget them).
        idle_types: the types touched that have no active override left (their alert ends).
    """

    values: tuple[SecretValue, ...]
    idle_types: tuple[SecretType, ...]


@dataclass(frozen=True, slots=True)
class OverridesChanged:
    """An activation, revoke or expiry was committed here: the other replicas should reconcile."""


# -- reload (startup, reconcile) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverrideUntrusted:
    """A stored override fails its integrity check (``problem``) and is never served."""

    record: BreakGlassOverrideRecord
    problem: str


@dataclass(frozen=True, slots=True)
class OverrideNotServed:
    """A stored active override could not be reopened here and is not served.

    Attributes:
        record: the stored override.
        code: the error code of the failed reopening; None when break-glass is disabled here
            (no key pair configured).
    """

    record: BreakGlassOverrideRecord
    code: str | None


@dataclass(frozen=True, slots=True)
class OverrideReopened:
    """A stored override's ciphertext was decrypted again; ``value`` is about to be served."""

    record: BreakGlassOverrideRecord
    value: SecretValue


@dataclass(frozen=True, slots=True)
class OverrideReloaded:
    """A stored override (after a restart, or activated on another replica) is served here now."""

    record: BreakGlassOverrideRecord


@dataclass(frozen=True, slots=True)
class ReloadFailed:
    """The startup reload could not read the database; the reconcile retries it."""

    error_type: str
