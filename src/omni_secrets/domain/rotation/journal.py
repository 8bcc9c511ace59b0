"""The commit journal: a group's alias moves, written down before the first one (contract 15).

A commit (or a rollback) moves each member's GSM aliases one ``UpdateSecret`` at a time. A
replica killed between two moves leaves the group mixed in GSM. So the intent is journaled in
the database first — the group, each member's old and new version, who and when — and closed
in the same transaction that pins the new versions. An entry still open after its owner died
is *recovered*: every member is re-read and the group is resolved to one whole generation by
:func:`decide`:

- **forward** when every member's ``current`` already names its new version (every move
  landed; only the database record was missing): the commit is finished;
- **back** otherwise (no move, or some moves): every member returns to its old version, as a
  commit refused half-way would have left it;
- **stale** when the entry no longer describes the group (:func:`describes`: a member names a
  third version, or the group's rotation lock is no longer the entry's): nothing is moved and
  the entry is closed, so an outdated or replayed row can never move a group.

Forward only when GSM already says so everywhere is the rule that never invents a state: it
finishes what was visibly done and undoes everything else. Either way every member is
re-written (a new etag), so a move still in flight from the dead replica fails its
compare-and-set instead of landing later.

An entry is MAC'd like every other state row (:data:`JOURNAL_FIELDS`): a database writer
cannot forge one to make recovery move a group, nor reopen a closed one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from omni_secrets.domain.integrity import IntegrityStatus

JournalKind = Literal["commit", "rollback"]
JournalStatus = Literal["open", "closed", "aborted", "recovered"]

JOURNAL_PURPOSE = "omni-secrets/commit-journal/v1"
JOURNAL_FIELDS = (
    "journal_id",
    "kind",
    "rotation_group",
    "lock_id",
    "actor",
    "owner_replica_id",
    "started_at",
    "members",
    "dates",
    "status",
    "closed_at",
)
"""The fields of an ``omni_commit_journal`` row that its ``mac`` covers (members and dates as
canonical JSON). The claim columns are not covered: a claim moves nothing by itself."""

OWNER_SILENT_SECONDS = 12.0
"""A journal owner whose registry row was not renewed for this long counts as dead for recovery
(two missed 5 s heartbeats and some slack; shorter than the registry's 30 s so that a live peer
recovers within 30 s of the death)."""

MIN_AGE_SECONDS = 3.0
"""An entry younger than this is never recovered by a peer: its commit may just be running."""

CLAIM_SECONDS = 60.0
"""How long a recovering replica's claim on an entry keeps other replicas away."""


class Resolution(StrEnum):
    """Where recovery takes a group."""

    FORWARD = "forward"
    BACK = "back"
    STALE = "stale"
    """Nothing moved: the entry no longer describes the group (a member's ``current`` is
    neither its old nor its new version, or the group's lock is no longer the entry's) — an
    outdated or replayed entry. It is closed; any mix left shows as drift."""


@dataclass(frozen=True, slots=True)
class JournalMember:
    """One member's planned move.

    Attributes:
        secret_type: the catalog type.
        secret_id: its GSM secret id.
        old_version: what ``current`` named before (None: the member had no ``current``).
        old_previous: what ``previous`` named before (None: absent).
        new_version: what ``current`` names once the move landed.
        new_previous: what ``previous`` names once the move landed (None: absent).
    """

    secret_type: str
    secret_id: str
    old_version: str | None
    old_previous: str | None
    new_version: str
    new_previous: str | None

    def as_json(self) -> dict[str, str | None]:
        """The stored (and MAC'd) form."""
        return {
            "secretType": self.secret_type,
            "secretId": self.secret_id,
            "oldVersion": self.old_version,
            "oldPrevious": self.old_previous,
            "newVersion": self.new_version,
            "newPrevious": self.new_previous,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> JournalMember:
        """Parse :meth:`as_json`'s form.

        Raises:
            ValueError: a field is missing or has the wrong type.
        """

        def text(key: str, *, optional: bool = False) -> str | None:
            value = data.get(key)
            if value is None and optional:
                return None
            if not isinstance(value, str):
                raise ValueError(f"journal member field {key!r} must be a string")
            return value

        return cls(
            secret_type=text("secretType") or "",
            secret_id=text("secretId") or "",
            old_version=text("oldVersion", optional=True),
            old_previous=text("oldPrevious", optional=True),
            new_version=text("newVersion") or "",
            new_previous=text("newPrevious", optional=True),
        )


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journaled commit or rollback.

    Attributes:
        journal_id: random id.
        kind: ``commit`` or ``rollback``.
        rotation_group: the group moved.
        lock_id: the id holding the group's rotation lock (the preview id of a commit).
        actor: who asked (the audit actor).
        owner_replica_id: the replica doing the moves (``omni_replicas.id``).
        owner_host: its host name; with ``owner_pid``, how a restarted process knows its own
            entries (replica ids are new per process).
        owner_pid: its process id.
        started_at: when the entry was written (before the first move).
        members: the planned moves, in the order they are made.
        dates: per type ``(last_rotated_at, rotation_due_at)`` the record sets going forward.
        status: ``open`` until closed (``closed``: the record committed; ``aborted``: moved
            back by its owner; ``recovered``: resolved by recovery).
        closed_at: when it stopped being open.
        outcome: how recovery resolved it (``forward``/``back``), else None.
        claimed_by, claimed_at: the replica recovering it, and since when.
        integrity: what the row's MAC says.
    """

    journal_id: str
    kind: JournalKind
    rotation_group: str
    lock_id: str
    actor: str
    owner_replica_id: str
    owner_host: str
    owner_pid: int
    started_at: datetime
    members: tuple[JournalMember, ...]
    dates: Mapping[str, tuple[datetime, datetime]]
    status: JournalStatus = "open"
    closed_at: datetime | None = None
    outcome: str | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    integrity: IntegrityStatus = field(default=IntegrityStatus.UNCHECKED)

    def mac_fields(self) -> dict[str, object]:
        """The values :data:`JOURNAL_FIELDS` names, members and dates as canonical JSON."""
        return {
            "journal_id": self.journal_id,
            "kind": self.kind,
            "rotation_group": self.rotation_group,
            "lock_id": self.lock_id,
            "actor": self.actor,
            "owner_replica_id": self.owner_replica_id,
            "started_at": self.started_at,
            "members": members_json(self.members),
            "dates": dates_json(self.dates),
            "status": self.status,
            "closed_at": self.closed_at,
        }


def members_json(members: tuple[JournalMember, ...]) -> str:
    """Members as canonical JSON text (the column value and the MAC input)."""
    return json.dumps([m.as_json() for m in members], sort_keys=True, separators=(",", ":"))


def dates_json(dates: Mapping[str, tuple[datetime, datetime]]) -> str:
    """Dates as canonical JSON text: ``{type: [lastRotatedAt, dueAt]}`` in RFC 3339."""
    return json.dumps(
        {t: [d[0].isoformat(), d[1].isoformat()] for t, d in sorted(dates.items())},
        sort_keys=True,
        separators=(",", ":"),
    )


def parse_members(text: str) -> tuple[JournalMember, ...]:
    """:func:`members_json`'s inverse.

    Raises:
        ValueError: not the stored shape.
    """
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("journal members must be a JSON list")
    return tuple(JournalMember.from_json(item) for item in data)


def parse_dates(text: str) -> dict[str, tuple[datetime, datetime]]:
    """:func:`dates_json`'s inverse.

    Raises:
        ValueError: not the stored shape.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("journal dates must be a JSON object")
    return {
        str(t): (datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1]))
        for t, pair in data.items()
    }


def describes(entry: JournalEntry, currents: Mapping[str, str | None]) -> bool:
    """Whether every member's ``current`` is still the entry's old or new version.

    A commit in flight can only leave each member on one of the two; anything else means the
    group moved on since (or the entry is a replayed old row): acting on it would move the group
    to versions nobody asked for now.
    """
    return all(currents.get(m.secret_type) in (m.old_version, m.new_version) for m in entry.members)


def decide(entry: JournalEntry, currents: Mapping[str, str | None]) -> Resolution:
    """Where an open entry's group goes, from each member's ``current`` as GSM names it now.

    Args:
        entry: the open entry.
        currents: secret type -> the version its ``current`` alias names now (None: absent).

    Returns:
        :attr:`Resolution.FORWARD` when every member already names its new version, else
        :attr:`Resolution.BACK`.
    """
    if all(currents.get(m.secret_type) == m.new_version for m in entry.members):
        return Resolution.FORWARD
    return Resolution.BACK


def owner_is_dead(
    entry: JournalEntry,
    *,
    live_replica_ids: frozenset[str],
    now: datetime,
) -> bool:
    """Whether a peer may recover ``entry``: old enough and its owner not heard from lately.

    Args:
        entry: an open entry.
        live_replica_ids: the replicas whose registry row was renewed within
            :data:`OWNER_SILENT_SECONDS`.
        now: the current time.
    """
    if (now - entry.started_at).total_seconds() < MIN_AGE_SECONDS:
        return False
    return entry.owner_replica_id not in live_replica_ids


def claimable(entry: JournalEntry, *, replica_id: str, now: datetime) -> bool:
    """Whether ``replica_id`` may claim ``entry`` (unclaimed, its own, or the claim lapsed)."""
    if entry.claimed_by is None or entry.claimed_by == replica_id or entry.claimed_at is None:
        return True
    return (now - entry.claimed_at).total_seconds() >= CLAIM_SECONDS
