"""The audit hash chain: how a row is hashed, sealed and verified (pure, no I/O).

Each stored audit row carries ``prev_hash`` (the previous row's ``row_hash``; 64 zeros,
:data:`GENESIS_HASH`, for row 1) and ``row_hash``::

    row_hash = hex(sha256(bytes.fromhex(prev_hash) || canonical_bytes(row)))

``canonical_bytes`` is the UTF-8 encoding of a JSON object with exactly these keys::

    id, occurred_at, secret_type, action, actor, result, duration_ms, correlation_id, details

rendered with ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
allow_nan=False)`` — keys sorted at every depth, no whitespace, non-ASCII escaped as ``\\uXXXX``.
``occurred_at`` is RFC 3339 in UTC with exactly six fractional digits and a ``Z``
(``2026-11-25T10:00:00.000000Z``); absent values are JSON ``null``. Any tool that reproduces this
rendering can check the chain without our code.

Editing a row breaks its own ``row_hash``; recomputing that too breaks the next row's
``prev_hash``; removing a row leaves a gap in the ids. Removing the *newest* rows cannot be seen
from the chain alone (there is no external anchor); the database refuses DELETE anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from omni_secrets.domain.models import NewAccessEvent, OmniSecretAccessEvent

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first row."""


def canonical_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: ``2026-11-25T10:00:00.000000Z``.

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _document(event: NewAccessEvent) -> dict[str, Any]:
    return {
        "occurred_at": canonical_timestamp(event.occurred_at),
        "secret_type": event.secret_type,
        "action": event.action,
        "actor": event.actor,
        "result": event.result,
        "duration_ms": event.duration_ms,
        "correlation_id": event.correlation_id,
        "details": event.details,
    }


def _json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def canonical_bytes(event: NewAccessEvent, event_id: int) -> bytes:
    """The deterministic byte rendering of a row that the chain hashes (module docstring)."""
    return _json({"id": event_id, **_document(event)}).encode("ascii")


# Sorted top-level keys on either side of "id"; canonical_parts relies on this order.
_KEYS_BEFORE_ID = ("action", "actor", "correlation_id", "details", "duration_ms")
_KEYS_AFTER_ID = ("occurred_at", "result", "secret_type")


def canonical_parts(event: NewAccessEvent) -> tuple[str, str]:
    """The canonical rendering split around the id: ``head + str(id) + tail``.

    For a writer that learns the id only inside the database (PostgreSQL computes the hash in
    the same statement that picks the id). ``(head + str(id) + tail).encode()`` equals
    :func:`canonical_bytes` for every id; the rendering is pure ASCII.
    """
    document = _document(event)
    head = ",".join(f"{_json(key)}:{_json(document[key])}" for key in _KEYS_BEFORE_ID)
    tail = ",".join(f"{_json(key)}:{_json(document[key])}" for key in _KEYS_AFTER_ID)
    return "{" + head + ',"id":', "," + tail + "}"


def row_hash(prev_hash: str, event: NewAccessEvent, event_id: int) -> str:
    """``hex(sha256(bytes.fromhex(prev_hash) || canonical_bytes(event, event_id)))``.

    Raises:
        ValueError: ``prev_hash`` is not 64 hex digits.
    """
    prev = bytes.fromhex(prev_hash)
    if len(prev) != 32:
        raise ValueError("prev_hash must be 64 hex digits")
    return hashlib.sha256(prev + canonical_bytes(event, event_id)).hexdigest()


def seal(event: NewAccessEvent, *, event_id: int, prev_hash: str) -> OmniSecretAccessEvent:
    """Number ``event`` and link it after the row whose ``row_hash`` is ``prev_hash``."""
    # The event is already validated; the new fields are computed here, not user input. Only the
    # event's own fields are copied, so re-sealing a stored row replaces its id and hashes.
    fields = {name: getattr(event, name) for name in NewAccessEvent.model_fields}
    return OmniSecretAccessEvent.model_construct(
        **fields,
        id=event_id,
        prev_hash=prev_hash,
        row_hash=row_hash(prev_hash, event, event_id),
    )


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The result of checking the chain.

    Attributes:
        ok: True when every row checked links and hashes correctly.
        first_bad_id: the id of the first row that fails, or None when ok.
        checked: how many rows passed before the first failure (all of them when ok).
        reason: why ``first_bad_id`` failed (id gap, broken link, hash mismatch), or None.
    """

    ok: bool
    first_bad_id: int | None
    checked: int
    reason: str | None = None


class ChainVerifier:
    """Checks rows one at a time, in id order, so a long table can be verified page by page.

    Rules: ids run 1, 2, 3, … without gaps; each ``prev_hash`` equals the previous row's
    ``row_hash`` (:data:`GENESIS_HASH` for id 1); each ``row_hash`` matches the recomputed hash.
    After the first failure further rows are ignored.
    """

    def __init__(self) -> None:
        self._expected_id = 1
        self._prev_hash = GENESIS_HASH
        self._checked = 0
        self._first_bad_id: int | None = None
        self._reason: str | None = None

    def feed(self, event: OmniSecretAccessEvent) -> bool:
        """Check the next row; False once the chain is broken (at this row or before)."""
        if self._first_bad_id is not None:
            return False
        if event.id != self._expected_id:
            return self._broken(event.id, f"id gap: expected {self._expected_id}, got {event.id}")
        if event.prev_hash != self._prev_hash:
            return self._broken(event.id, "prev_hash does not match the previous row_hash")
        if event.row_hash != row_hash(event.prev_hash, event, event.id):
            return self._broken(event.id, "row_hash does not match the row's content")
        self._expected_id += 1
        self._prev_hash = event.row_hash
        self._checked += 1
        return True

    def _broken(self, event_id: int, reason: str) -> bool:
        self._first_bad_id = event_id
        self._reason = reason
        return False

    @property
    def verdict(self) -> ChainVerdict:
        """The verdict over every row fed so far."""
        return ChainVerdict(
            ok=self._first_bad_id is None,
            first_bad_id=self._first_bad_id,
            checked=self._checked,
            reason=self._reason,
        )


def verify_chain(events: Iterable[OmniSecretAccessEvent]) -> ChainVerdict:
    """Verify a whole chain given in id order, starting at id 1.

    Args:
        events: every stored row, ascending by id.

    Returns:
        The verdict; an empty chain is intact (``checked == 0``).
    """
    verifier = ChainVerifier()
    for event in events:
        if not verifier.feed(event):
            break
    return verifier.verdict
