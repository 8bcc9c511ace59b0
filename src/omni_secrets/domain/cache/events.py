"""What :class:`~omni_secrets.domain.cache.OmniSecretCache` reports while it works.

The cache tells one :class:`CacheListener` about every change it makes, with frozen value objects
that never hold a secret value (only types, versions, override ids, codes and durations; a fault
event also carries the exception the cache's own code or listener raised, never ``fetch``'s). The
service turns them into metrics, log lines, audit rows and alerts; the cache itself knows none of
those. Events and what they feed (contract section 6):

- :class:`Refreshed` — a GSM fetch succeeded
  (``omni_secret_reads_total{source="gsm",result="success"}``, ``omni_secret_cache_age_seconds``,
  resolving the consecutive-failure alert).
- :class:`RefreshFailed` — a GSM fetch failed (``omni_secret_reads_total{result="failure"}``,
  ``omni_secret_failures_total{operation,reason}``, the consecutive-failure alert).
- :class:`Hydrated` — the startup hydration of the whole catalog finished
  (``omni_secret_cache_hydration_duration_seconds``, the ``hydrate`` audit event).
- :class:`Expired` — an entry outlived its serve window (TTL plus the stale bound) and was dropped.
- :class:`Evicted` — an entry was dropped at once on a permanent GSM error (fail closed).
- :class:`OverrideInstalled` / :class:`OverrideEnded` — a break-glass override started or stopped
  being served (``omni_secret_break_glass_active``).

Three more report a bug somewhere rather than a change; the cache keeps serving and refreshing
through each, and the listener's log line is all that shows it (the domain does not log):

- :class:`FetchRaisedUnexpectedly` — ``fetch`` raised something other than ``SecretStoreError``
  (followed by the type's ``RefreshFailed`` with reason ``UNKNOWN``).
- :class:`RefresherStepFailed` — the background refresher's own bookkeeping raised.
- :class:`ListenerFailed` — the listener raised while handling an event.

Events are delivered synchronously on the event loop at the moment of the change, after the
cache's state already reflects it, so a listener may call back into the cache's read methods. A
listener must be quick (schedule slow work such as a database write as a task); an exception it
raises is swallowed and reported to it once, as :class:`ListenerFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from omni_secrets.domain.cache.models import CacheSource, CacheState, Operation
from omni_secrets.domain.catalog import SecretType


class OverrideStopReason(StrEnum):
    """Why a break-glass override stopped being served."""

    EXPIRED = "expired"
    REMOVED = "removed"
    REPLACED = "replaced"


@dataclass(frozen=True, slots=True)
class Refreshed:
    """A fetch succeeded and its snapshot is now the type's GSM entry.

    Attributes:
        failures_before: consecutive failures that preceded this success (0 when none), so a
            listener can resolve an alert it raised.
    """

    secret_type: SecretType
    operation: Operation
    version: str
    previous_version: str | None
    duration_seconds: float
    failures_before: int


@dataclass(frozen=True, slots=True)
class RefreshFailed:
    """A fetch failed.

    Attributes:
        reason: the failure code (as ``FetchFailure.code`` in ``models.py``); bounded, a
            usable metric label.
        transient: False when the failure dropped the entry at once (fail closed).
        consecutive_failures: failures in a row for this type, this one included.
        serving: whether the type still has a GSM value to serve (a transient failure within
            the stale bound).
    """

    secret_type: SecretType
    operation: Operation
    reason: str
    message: str
    transient: bool
    duration_seconds: float
    consecutive_failures: int
    serving: bool


@dataclass(frozen=True, slots=True)
class Hydrated:
    """The startup hydration of the whole catalog finished (whatever its outcome)."""

    duration_seconds: float
    state: CacheState
    loaded: tuple[SecretType, ...]
    failed: tuple[SecretType, ...]


@dataclass(frozen=True, slots=True)
class Expired:
    """A GSM entry reached the end of its serve window and is no longer served.

    Attributes:
        stale_seconds: how long past ``expires_at`` it was allowed to be served (the stale bound).
    """

    secret_type: SecretType
    version: str | None
    expires_at: datetime
    stale_seconds: float


@dataclass(frozen=True, slots=True)
class Evicted:
    """A GSM entry was dropped at once because GSM refused it permanently (fail closed)."""

    secret_type: SecretType
    version: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class OverrideInstalled:
    """A break-glass override is now served for ``secret_type``."""

    secret_type: SecretType
    override_id: str
    activated_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OverrideEnded:
    """A break-glass override stopped being served.

    Attributes:
        reverted_to: what is served instead: ``gsm``, ``break_glass`` (a newer override
            replaced it) or None (nothing: a refresh has been requested).
    """

    secret_type: SecretType
    override_id: str
    reason: OverrideStopReason
    reverted_to: CacheSource | None


@dataclass(frozen=True, slots=True)
class FetchRaisedUnexpectedly:
    """``fetch`` raised an exception that is not a ``SecretStoreError`` (a bug in the service).

    Only the exception's type and where it was raised are kept: its text could hold anything.

    Attributes:
        error_type: the exception's class name.
        at: ``file:line`` of the innermost frame, or ``?``.
    """

    secret_type: SecretType
    error_type: str
    at: str


@dataclass(frozen=True, slots=True)
class RefresherStepFailed:
    """A step of the background refresher raised (a bug in the cache); it retries shortly."""

    error: Exception


@dataclass(frozen=True, slots=True)
class ListenerFailed:
    """The listener raised while handling an event of type ``event_type`` (swallowed)."""

    event_type: str
    error: Exception


CacheEvent = (
    Refreshed
    | RefreshFailed
    | Hydrated
    | Expired
    | Evicted
    | OverrideInstalled
    | OverrideEnded
    | FetchRaisedUnexpectedly
    | RefresherStepFailed
    | ListenerFailed
)


class CacheListener(Protocol):
    """Receives the cache's events (metrics, logs, audit, alerts)."""

    def on_event(self, event: CacheEvent) -> None:
        """Handle one event; called on the event loop, must not block.

        An exception is swallowed and reported back once as :class:`ListenerFailed`.
        """
        ...
