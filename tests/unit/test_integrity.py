"""The integrity keyring and the keyed audit chain (domain, no I/O)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omni_secrets.domain import audit_chain
from omni_secrets.domain.integrity import (
    PIN_FIELDS,
    PIN_PURPOSE,
    IntegrityKeyring,
    IntegrityStatus,
    key_id_of,
    verify_or_unchecked,
)
from omni_secrets.domain.models import NewAccessEvent

KEY = b"fake-integrity-key-for-unit-tests-1"
OLD = b"fake-integrity-key-for-unit-tests-0"
T0 = datetime(2026, 11, 27, tzinfo=UTC)
PIN = {
    "secret_type": "api_key",
    "active_version": "3",
    "last_rotated_at": T0,
    "rotation_due_at": T0 + timedelta(days=365),
}


def event(n: int) -> NewAccessEvent:
    return NewAccessEvent(
        occurred_at=T0, action="status_view", actor="alice", result="success", details={"n": n}
    )


class TestIntegrityKeyring:
    def test_key_id_is_sha256_prefix(self) -> None:
        """keyId = first 16 hex chars of SHA-256 over the raw key."""
        assert key_id_of(KEY) == hashlib.sha256(KEY).hexdigest()[:16]
        assert IntegrityKeyring([KEY, OLD]).signing_key_id == key_id_of(KEY)

    def test_short_or_duplicate_keys_are_refused(self) -> None:
        """Keys under 32 bytes, no key, or the same key twice are refused."""
        with pytest.raises(ValueError, match="at least 32"):
            IntegrityKeyring([b"fake-short"])
        with pytest.raises(ValueError, match="at least one key"):
            IntegrityKeyring([])
        with pytest.raises(ValueError, match="twice"):
            IntegrityKeyring([KEY, KEY])

    def test_repr_never_shows_the_key(self) -> None:
        """repr names key ids only."""
        assert KEY.decode() not in repr(IntegrityKeyring([KEY]))

    def test_sign_verify_and_every_forgery(self) -> None:
        """A MAC verifies; any changed field, another key or no MAC does not."""
        ring = IntegrityKeyring([KEY])
        mac = ring.sign(PIN_PURPOSE, PIN_FIELDS, PIN)
        assert mac.startswith(key_id_of(KEY) + ":")
        assert ring.verify(PIN_PURPOSE, PIN_FIELDS, PIN, mac) is IntegrityStatus.VERIFIED
        for name, value in [("active_version", "2"), ("rotation_due_at", T0 + timedelta(9999))]:
            forged = {**PIN, name: value}
            assert ring.verify(PIN_PURPOSE, PIN_FIELDS, forged, mac) is IntegrityStatus.INVALID
        assert ring.verify("other", PIN_FIELDS, PIN, mac) is IntegrityStatus.INVALID
        assert ring.verify(PIN_PURPOSE, PIN_FIELDS, PIN, None) is IntegrityStatus.MISSING
        other = IntegrityKeyring([OLD]).sign(PIN_PURPOSE, PIN_FIELDS, PIN)
        assert ring.verify(PIN_PURPOSE, PIN_FIELDS, PIN, other) is IntegrityStatus.INVALID

    def test_rotation_old_key_still_verifies(self) -> None:
        """After rotation (new key first, old listed) old MACs verify; new ones use the new key."""
        old_mac = IntegrityKeyring([OLD]).sign(PIN_PURPOSE, PIN_FIELDS, PIN)
        ring = IntegrityKeyring([KEY, OLD])
        assert ring.verify(PIN_PURPOSE, PIN_FIELDS, PIN, old_mac) is IntegrityStatus.VERIFIED
        assert ring.sign(PIN_PURPOSE, PIN_FIELDS, PIN).startswith(key_id_of(KEY))

    def test_live_state_accepts_the_signing_key_only(self) -> None:
        """Contract 17: an older key's MAC on live state is STALE_KEY (not servable); the
        audit-history check (verify) still accepts it."""
        old_mac = IntegrityKeyring([OLD]).sign(PIN_PURPOSE, PIN_FIELDS, PIN)
        ring = IntegrityKeyring([KEY, OLD])
        stale = ring.verify_live(PIN_PURPOSE, PIN_FIELDS, PIN, old_mac)
        assert stale is IntegrityStatus.STALE_KEY and not stale.servable
        assert verify_or_unchecked(ring, PIN_PURPOSE, PIN_FIELDS, PIN, old_mac) is stale
        new_mac = ring.sign(PIN_PURPOSE, PIN_FIELDS, PIN)
        assert ring.verify_live(PIN_PURPOSE, PIN_FIELDS, PIN, new_mac) is IntegrityStatus.VERIFIED
        forged = {**PIN, "active_version": "9"}
        assert ring.verify_live(PIN_PURPOSE, PIN_FIELDS, forged, old_mac) is IntegrityStatus.INVALID
        assert not IntegrityStatus.REPLAYED.servable

    def test_without_a_key_nothing_is_checked(self) -> None:
        """No keyring: UNCHECKED, which is servable; MISSING and INVALID are not."""
        status = verify_or_unchecked(None, PIN_PURPOSE, PIN_FIELDS, PIN, None)
        assert status is IntegrityStatus.UNCHECKED and status.servable
        assert not IntegrityStatus.MISSING.servable and not IntegrityStatus.INVALID.servable


class TestKeyedChain:
    def chain(self, ring: IntegrityKeyring | None, count: int, start: int = 0) -> list[Any]:
        rows, prev = [], audit_chain.GENESIS_HASH
        for n in range(start, start + count):
            row = audit_chain.seal(event(n), event_id=n + 1, prev_hash=prev, keyring=ring)
            rows.append(row)
            prev = row.row_hash
        return rows

    def test_keyed_row_is_hmac_not_sha256(self) -> None:
        """A keyed row's hash is the HMAC; the unkeyed formula does not reproduce it."""
        ring = IntegrityKeyring([KEY])
        (row,) = self.chain(ring, 1)
        assert row.key_id == key_id_of(KEY)
        assert row.row_hash != audit_chain.row_hash(row.prev_hash, row, 1)
        verdict = audit_chain.verify_chain([row], ring)
        assert verdict.ok and (verdict.keyed, verdict.unkeyed) == (1, 0)

    def test_unkeyed_prefix_then_keyed(self) -> None:
        """Legacy unkeyed rows followed by keyed rows verify, counted separately."""
        ring = IntegrityKeyring([KEY])
        legacy = self.chain(None, 3)
        keyed_row = audit_chain.seal(
            event(3), event_id=4, prev_hash=legacy[-1].row_hash, keyring=ring
        )
        verdict = audit_chain.verify_chain([*legacy, keyed_row], ring)
        assert verdict.ok and (verdict.keyed, verdict.unkeyed) == (1, 3)

    def test_unkeyed_after_keyed_is_refused(self) -> None:
        """An unkeyed row after a keyed one is a downgrade: refused at its id."""
        ring = IntegrityKeyring([KEY])
        keyed = self.chain(ring, 2)
        downgraded = audit_chain.seal(event(2), event_id=3, prev_hash=keyed[-1].row_hash)
        verdict = audit_chain.verify_chain([*keyed, downgraded], ring)
        assert not verdict.ok and verdict.first_bad_id == 3
        assert "unkeyed row after keyed" in (verdict.reason or "")
