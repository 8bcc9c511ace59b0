"""The audit hash chain: canonical rendering, sealing and verification."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from omni_secrets.domain import audit_chain
from omni_secrets.domain.audit_chain import GENESIS_HASH, ChainVerifier, verify_chain
from omni_secrets.domain.models import NewAccessEvent, OmniSecretAccessEvent

GOLDEN_EVENT = NewAccessEvent(
    occurred_at=datetime(2026, 11, 25, 11, 0, 0, 5, tzinfo=timezone(timedelta(hours=1))),
    secret_type="api_secret",
    action="break_glass_activate",
    actor="alice",
    result="success",
    duration_ms=12,
    correlation_id="req-1",
    details={"ttlSeconds": 900, "overrideId": "ovr-1", "note": "café"},
)
GOLDEN_BYTES = (
    b'{"action":"break_glass_activate","actor":"alice","correlation_id":"req-1",'
    b'"details":{"note":"caf\\u00e9","overrideId":"ovr-1","ttlSeconds":900},"duration_ms":12,'
    b'"id":1,"occurred_at":"2026-11-25T10:00:00.000005Z","result":"success",'
    b'"secret_type":"api_secret"}'
)
GOLDEN_HASH = "7dfb1f1a5422438983606ba568e788d15a265c904f34f38c2272f74d79f773a9"


def chain(count: int) -> list[OmniSecretAccessEvent]:
    events: list[OmniSecretAccessEvent] = []
    prev = GENESIS_HASH
    for n in range(count):
        event = NewAccessEvent(
            occurred_at=datetime(2026, 11, 25, tzinfo=UTC) + timedelta(seconds=n),
            action="refresh",
            actor="system",
            result="success",
            details={"n": n},
        )
        events.append(audit_chain.seal(event, event_id=n + 1, prev_hash=prev))
        prev = events[-1].row_hash
    return events


def edited(event: OmniSecretAccessEvent, **changes: Any) -> OmniSecretAccessEvent:
    return event.model_copy(update=changes)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


class TestCanonicalRendering:
    def test_golden_vector(self) -> None:
        """The documented rendering and hash of a fixed event never change."""
        assert audit_chain.canonical_bytes(GOLDEN_EVENT, 1) == GOLDEN_BYTES
        expected = hashlib.sha256(bytes(32) + GOLDEN_BYTES).hexdigest()
        assert audit_chain.row_hash(GENESIS_HASH, GOLDEN_EVENT, 1) == expected == GOLDEN_HASH

    @given(
        details=st.dictionaries(st.text(), json_values, max_size=4),
        actor=st.text(min_size=1, max_size=20),
        secret_type=st.none() | st.text(max_size=10),
        event_id=st.integers(min_value=1, max_value=2**62),
    )
    def test_parts_around_the_id_rebuild_the_rendering(
        self, details: dict[str, Any], actor: str, secret_type: str | None, event_id: int
    ) -> None:
        """head + id + tail equals the canonical bytes for any content (the PostgreSQL path)."""
        event = GOLDEN_EVENT.model_copy(
            update={"details": details, "actor": actor, "secret_type": secret_type}
        )
        head, tail = audit_chain.canonical_parts(event)
        assert (head + str(event_id) + tail).encode("ascii") == audit_chain.canonical_bytes(
            event, event_id
        )

    def test_timestamp_is_utc_with_microseconds(self) -> None:
        """Whole seconds still render six fractional digits and a Z."""
        moment = datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        assert audit_chain.canonical_timestamp(moment) == "2026-11-25T10:00:00.000000Z"


class TestChainVerifier:
    def test_intact_chain(self) -> None:
        """A chain sealed in order verifies, counting every row."""
        verdict = verify_chain(chain(5))
        assert (verdict.ok, verdict.first_bad_id, verdict.checked) == (True, None, 5)

    def test_empty_chain_is_intact(self) -> None:
        """No rows is an intact chain of length zero."""
        assert verify_chain([]) == audit_chain.ChainVerdict(ok=True, first_bad_id=None, checked=0)

    def test_edited_row_is_named(self) -> None:
        """Changing any content field breaks that row's own hash."""
        events = chain(5)
        events[2] = edited(events[2], actor="mallory")
        verdict = verify_chain(events)
        assert (verdict.ok, verdict.first_bad_id, verdict.checked) == (False, 3, 2)
        assert verdict.reason is not None and "row_hash" in verdict.reason

    def test_rehashed_edit_is_caught_at_the_next_row(self) -> None:
        """Recomputing the edited row's hash breaks the next row's link instead."""
        events = chain(5)
        forged = edited(events[2], details={"n": 99})
        events[2] = audit_chain.seal(forged, event_id=3, prev_hash=forged.prev_hash)
        verdict = verify_chain(events)
        assert (verdict.first_bad_id, verdict.checked) == (4, 3)
        assert verdict.reason is not None and "prev_hash" in verdict.reason

    def test_missing_row_is_a_gap(self) -> None:
        """A removed row shows as an id gap at the row after it."""
        events = chain(5)
        del events[1]
        verdict = verify_chain(events)
        assert verdict.first_bad_id == 3
        assert verdict.reason == "id gap: expected 2, got 3"

    def test_chain_must_start_at_genesis(self) -> None:
        """A first row that does not link to 64 zeros is bad."""
        first = chain(1)[0]
        forged = audit_chain.seal(first, event_id=1, prev_hash="f" * 64)
        assert verify_chain([forged]).first_bad_id == 1

    def test_feeding_stops_after_the_first_failure(self) -> None:
        """Rows after a failure are not counted and do not clear it."""
        events = chain(4)
        events[0] = edited(events[0], result="failure")
        verifier = ChainVerifier()
        results = [verifier.feed(e) for e in events]
        assert results == [False, False, False, False]
        assert verifier.verdict.first_bad_id == 1
        assert verifier.verdict.checked == 0
