"""What the GSM event service and the signals report.

Each event is a fact already acted on; ``reactions.py`` says what follows (the alerts, the
``rotation_alert`` audit row, the ``gsm_event.*`` and ``signal.*`` log lines, the
``omni_gsm_events_total`` counter, the candidate gauge, the announcement to the other replicas).

Every message the subscription delivers ends in exactly one of :class:`GsmMessageDismissed`,
:class:`GsmMessageDuplicate`, :class:`GsmMessageFailed` or :class:`GsmMessageHandled`; each
carries the ``event_type`` and ``result`` it is counted under.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from omni_secrets.domain.catalog import SecretType

EventResult = Literal["applied", "ignored", "rejected", "duplicate", "unconfirmed", "failed"]


@dataclass(frozen=True, slots=True)
class GsmMessageDismissed:
    """A message not acted on: malformed (``rejected``), or not ours to act on (``ignored``)."""

    message_id: str
    event_type: str | None
    result: EventResult
    reason: str


@dataclass(frozen=True, slots=True)
class GsmMessageDuplicate:
    """A message id already acted on (Pub/Sub delivers at least once): nothing changes."""

    message_id: str
    event_type: str
    result: ClassVar[EventResult] = "duplicate"


@dataclass(frozen=True, slots=True)
class GsmMessageFailed:
    """Acting on a message failed: it is nacked, so Pub/Sub redelivers it."""

    message_id: str
    event_type: str
    secret_type: SecretType
    error_type: str
    result: ClassVar[EventResult] = "failed"


@dataclass(frozen=True, slots=True)
class GsmMessageHandled:
    """A message acted on, with what came of it (``applied``, ``ignored``, ``unconfirmed``)."""

    message_id: str
    event_type: str
    secret_type: SecretType
    version: str | None
    result: EventResult


@dataclass(frozen=True, slots=True)
class ActiveVersionRevoked:
    """The served version (or the whole secret) was taken out of service on this replica.

    ``confirmed`` False: GSM could not confirm the event, and the type failed closed anyway.
    """

    secret_type: SecretType
    event_type: str
    version: str | None
    message: str
    confirmed: bool


@dataclass(frozen=True, slots=True)
class GsmRotationRequested:
    """GSM's rotation schedule fired for a type (``SECRET_ROTATE``)."""

    secret_type: SecretType
    event_type: str
    message_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ServedVersionRevoked:
    """A revocation signal dropped the entry this replica was serving."""

    secret_type: SecretType
    version: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class RevocationCleared:
    """GSM says the revoked version is served legitimately again (or the secret exists again)."""

    secret_type: SecretType


@dataclass(frozen=True, slots=True)
class RevocationClearNotStored:
    """A cleared revocation could not be stored; the next fetch asks GSM again."""

    error_type: str


@dataclass(frozen=True, slots=True)
class SignalStored:
    """A signal row changed: the other replicas should reload the signals now."""

    secret_type: SecretType


@dataclass(frozen=True, slots=True)
class CandidatesInstalled:
    """Signals were (re)applied: whether each catalog type has a rotation candidate now."""

    available: tuple[tuple[SecretType, bool], ...]
