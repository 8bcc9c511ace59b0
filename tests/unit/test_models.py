"""Domain records: validation rules that keep the database and the audit chain sane."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from omni_secrets.domain.models import (
    AUDIT_ACTIONS,
    BreakGlassOverrideRecord,
    NewAccessEvent,
    OmniSecretMetadata,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def event(**changes: Any) -> NewAccessEvent:
    values: dict[str, Any] = {
        "occurred_at": T0,
        "action": "hydrate",
        "actor": "system",
        "result": "success",
    }
    values.update(changes)
    return NewAccessEvent(**values)


class TestNewAccessEvent:
    def test_actions_are_the_contracts(self) -> None:
        """The accepted actions are contract section 7's list, plus section 15's rollback,
        recovery and adoption."""
        assert set(AUDIT_ACTIONS) == {
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
        }

    @pytest.mark.parametrize(
        "changes",
        [
            {"action": "read_secret"},
            {"result": "ok"},
            {"actor": ""},
            {"occurred_at": datetime(2026, 11, 25, 10, 0)},  # naive on purpose
            {"details": {"x": float("nan")}},
            {"details": {"when": T0}},
            {"duration_ms": -1},
        ],
        ids=["action", "result", "actor", "naive-time", "nan", "non-json", "negative-duration"],
    )
    def test_invalid_events_are_refused(self, changes: dict[str, Any]) -> None:
        """Unknown actions/results, naive times and non-strict-JSON details are refused."""
        with pytest.raises(ValidationError):
            event(**changes)

    def test_times_are_normalised_to_utc(self) -> None:
        """An aware time in another zone is stored as the same instant in UTC."""
        local = datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        assert event(occurred_at=local).occurred_at.utcoffset() == timedelta(0)
        assert event(occurred_at=local).occurred_at == T0

    def test_is_immutable(self) -> None:
        """Records are frozen."""
        with pytest.raises(ValidationError):
            event().actor = "mallory"  # type: ignore[misc]


class TestOmniSecretMetadata:
    def test_has_no_field_for_a_value(self) -> None:
        """Metadata names versions and dates, never a secret value."""
        assert not {"value", "payload", "secret", "plaintext"} & set(
            OmniSecretMetadata.model_fields
        )


class TestBreakGlassOverrideRecord:
    def record(self, **changes: Any) -> BreakGlassOverrideRecord:
        values: dict[str, Any] = {
            "override_id": "ovr-1",
            "secret_type": "api_secret",
            "key_id": "0123456789abcdef",
            "ciphertext": "ZmFrZQ==",
            "nonce": "fake-nonce",
            "actor": "alice",
            "reason": "drill",
            "activated_at": T0,
            "expires_at": T0 + timedelta(minutes=15),
        }
        values.update(changes)
        return BreakGlassOverrideRecord(**values)

    def test_active_until_expiry_or_end(self) -> None:
        """Active strictly before expiry and only while not ended."""
        record = self.record()
        ended = self.record(ended_at=T0 + timedelta(minutes=1), end_reason="revoked")
        assert record.is_active(T0 + timedelta(minutes=14))
        assert not record.is_active(T0 + timedelta(minutes=15))
        assert not ended.is_active(T0 + timedelta(minutes=2))

    def test_end_reason_is_revoked_or_expired(self) -> None:
        """Any other end reason is refused."""
        with pytest.raises(ValidationError):
            self.record(ended_at=T0, end_reason="forgotten")
