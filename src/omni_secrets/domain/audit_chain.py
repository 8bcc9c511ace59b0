"""The audit hash chain: how a row is hashed, sealed and verified (pure, no I/O).

Each stored audit row carries ``prev_hash`` (the previous row's ``row_hash``; 64 zeros,
:data:`GENESIS_HASH`, for row 1), ``key_id`` and ``row_hash``. A keyed row (``key_id`` set, the
normal case since the integrity key exists) is::

    row_hash = hex(HMAC-SHA256(key[key_id], bytes.fromhex(prev_hash) || canonical_bytes(row)))

and an unkeyed row (written before the integrity key existed, ``key_id`` NULL) is::

    row_hash = hex(sha256(bytes.fromhex(prev_hash) || canonical_bytes(row)))

``canonical_bytes`` is the UTF-8 encoding of a JSON object with exactly these keys::

    id, occurred_at, secret_type, action, actor, result, duration_ms, correlation_id, details

rendered with ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
allow_nan=False)`` — keys sorted at every depth, no whitespace, non-ASCII escaped as ``\\uXXXX``.
``occurred_at`` is RFC 3339 in UTC with exactly six fractional digits and a ``Z``
(``2026-11-25T10:00:00.000000Z``); absent values are JSON ``null``. Any tool that reproduces this
rendering can check the chain without our code.

Editing a row breaks its own ``row_hash``; recomputing that too breaks the next row's
``prev_hash``; removing a row leaves a gap in the ids. Without the key, a keyed row's hash cannot
be recomputed at all, and turning keyed rows back into unkeyed ones is refused: unkeyed rows are
accepted only *before* the first keyed row. Limits (no external anchor): removing the *newest*
rows, or replacing the entire history by an unkeyed one, cannot be seen from the chain alone —
``audit verify`` prints how many rows were keyed, and ``--max-unkeyed-id`` pins the last legacy
row; the database refuses UPDATE/DELETE/TRUNCATE to anyone who does not own the table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from omni_secrets.domain.models import NewAccessEvent, OmniSecretAccessEvent

if TYPE_CHECKING:
    from omni_secrets.domain.integrity import IntegrityKeyring

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


def _linked_bytes(prev_hash: str, event: NewAccessEvent, event_id: int) -> bytes:
    prev = bytes.fromhex(prev_hash)
    if len(prev) != 32:
        raise ValueError("prev_hash must be 64 hex digits")
    return prev + canonical_bytes(event, event_id)


def row_hash(prev_hash: str, event: NewAccessEvent, event_id: int) -> str:
    """The unkeyed hash: ``hex(sha256(bytes.fromhex(prev_hash) || canonical_bytes(...)))``.

    Raises:
        ValueError: ``prev_hash`` is not 64 hex digits.
    """
    return hashlib.sha256(_linked_bytes(prev_hash, event, event_id)).hexdigest()


def keyed_row_hash(
    keyring: IntegrityKeyring,
    prev_hash: str,
    event: NewAccessEvent,
    event_id: int,
    key_id: str | None = None,
) -> str | None:
    """``hex(HMAC-SHA256(key, bytes.fromhex(prev_hash) || canonical_bytes(...)))``.

    Args:
        keyring: the configured integrity keys.
        prev_hash: the previous row's ``row_hash``.
        event: the row's content.
        event_id: the row's id.
        key_id: the key to use; the signing key when None.

    Returns:
        The hex digest, or None when ``key_id`` is not configured.

    Raises:
        ValueError: ``prev_hash`` is not 64 hex digits.
    """
    return keyring.chain_digest(_linked_bytes(prev_hash, event, event_id), key_id)


def seal(
    event: NewAccessEvent,
    *,
    event_id: int,
    prev_hash: str,
    keyring: IntegrityKeyring | None = None,
) -> OmniSecretAccessEvent:
    """Number ``event`` and link it after the row whose ``row_hash`` is ``prev_hash``.

    With ``keyring`` the row is keyed with its signing key; without, it is an unkeyed row.
    """
    # The event is already validated; the new fields are computed here, not user input. Only the
    # event's own fields are copied, so re-sealing a stored row replaces its id and hashes.
    fields = {name: getattr(event, name) for name in NewAccessEvent.model_fields}
    if keyring is None:
        key_id, digest = None, row_hash(prev_hash, event, event_id)
    else:
        key_id = keyring.signing_key_id
        digest = keyed_row_hash(keyring, prev_hash, event, event_id) or ""
    return OmniSecretAccessEvent.model_construct(
        **fields,
        id=event_id,
        prev_hash=prev_hash,
        key_id=key_id,
        row_hash=digest,
    )


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The result of checking the chain.

    Attributes:
        ok: True when every row checked links and hashes correctly.
        first_bad_id: the id of the first row that fails, or None when ok.
        checked: how many rows passed before the first failure (all of them when ok).
        reason: why ``first_bad_id`` failed (id gap, broken link, hash mismatch), or None.
        keyed: how many of the ``checked`` rows carry a keyed (HMAC) hash.
        unkeyed: how many of the ``checked`` rows carry a plain SHA-256 (written before the key).
        key_missing: True when the first failure is a keyed row met without any integrity key:
            a setup error (no ``OMNI_INTEGRITY_KEY_FILE``), not evidence of tampering.
    """

    ok: bool
    first_bad_id: int | None
    checked: int
    reason: str | None = None
    keyed: int = 0
    unkeyed: int = 0
    key_missing: bool = False


class ChainVerifier:
    """Checks rows one at a time, in id order, so a long table can be verified page by page.

    Rules: ids run 1, 2, 3, … without gaps; each ``prev_hash`` equals the previous row's
    ``row_hash`` (:data:`GENESIS_HASH` for id 1); each ``row_hash`` matches the recomputed hash
    (HMAC under the row's ``key_id``, which must be configured; plain SHA-256 for unkeyed rows);
    no unkeyed row follows a keyed one, nor has an id above ``max_unkeyed_id`` when given.
    After the first failure further rows are ignored.

    Args:
        keyring: the integrity keys; without it any keyed row fails (it cannot be checked).
        max_unkeyed_id: the last id that may be unkeyed (the legacy rows), or None for no limit.
    """

    def __init__(
        self, keyring: IntegrityKeyring | None = None, *, max_unkeyed_id: int | None = None
    ) -> None:
        self._keyring = keyring
        self._max_unkeyed_id = max_unkeyed_id
        self._expected_id = 1
        self._prev_hash = GENESIS_HASH
        self._checked = 0
        self._keyed = 0
        self._first_bad_id: int | None = None
        self._reason: str | None = None
        self._key_missing = False

    def feed(self, event: OmniSecretAccessEvent) -> bool:
        """Check the next row; False once the chain is broken (at this row or before)."""
        if self._first_bad_id is not None:
            return False
        if event.id != self._expected_id:
            return self._broken(event.id, f"id gap: expected {self._expected_id}, got {event.id}")
        if event.prev_hash != self._prev_hash:
            return self._broken(event.id, "prev_hash does not match the previous row_hash")
        key_id = getattr(event, "key_id", None)
        try:
            if key_id is None:
                problem = self._unkeyed_problem(event)
            else:
                problem = self._keyed_problem(event, key_id)
        except ValueError:  # a malformed prev_hash (tampered row)
            problem = "prev_hash is not 64 hex digits"
        if problem is not None:
            return self._broken(event.id, problem)
        self._expected_id += 1
        self._prev_hash = event.row_hash
        self._checked += 1
        self._keyed += key_id is not None
        return True

    def _unkeyed_problem(self, event: OmniSecretAccessEvent) -> str | None:
        if self._keyed:
            return "unkeyed row after keyed rows (a keyed row was rewritten without the key)"
        if self._max_unkeyed_id is not None and event.id > self._max_unkeyed_id:
            return f"unkeyed row above --max-unkeyed-id {self._max_unkeyed_id}"
        if event.row_hash != row_hash(event.prev_hash, event, event.id):
            return "row_hash does not match the row's content"
        return None

    def _keyed_problem(self, event: OmniSecretAccessEvent, key_id: str) -> str | None:
        if self._keyring is None:
            self._key_missing = True
            return f"row is keyed with key {key_id} but no integrity key is configured"
        expected = keyed_row_hash(self._keyring, event.prev_hash, event, event.id, key_id)
        if expected is None:
            return f"row is keyed with key {key_id}, which is not among the configured keys"
        if not hmac.compare_digest(expected, str(event.row_hash)):
            return f"row_hash does not match the row's content under key {key_id}"
        return None

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
            keyed=self._keyed,
            unkeyed=self._checked - self._keyed,
            key_missing=self._key_missing,
        )


def verify_chain(
    events: Iterable[OmniSecretAccessEvent], keyring: IntegrityKeyring | None = None
) -> ChainVerdict:
    """Verify a whole chain given in id order, starting at id 1.

    Args:
        events: every stored row, ascending by id.
        keyring: the integrity keys (keyed rows fail without them).

    Returns:
        The verdict; an empty chain is intact (``checked == 0``).
    """
    verifier = ChainVerifier(keyring)
    for event in events:
        if not verifier.feed(event):
            break
    return verifier.verdict
