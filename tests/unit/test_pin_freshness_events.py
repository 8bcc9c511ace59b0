"""Which audit events say what a pin is since (contract section 17's freshness, with section 15).

A pin that an adoption of GSM's aliases or a forward recovery of a dead replica's commit wrote
must be the newest one, not a "replayed" row: those events name the pins they wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime

from omni_secrets.adapters.db.freshness import PIN_ACTIONS, PinSince, _pins_of

ROTATED = "2026-12-07T10:00:00Z"
BEFORE = "2025-12-07T10:00:00Z"


def test_every_pin_writing_action_is_read() -> None:
    assert set(PIN_ACTIONS) == {
        "rotation_commit",
        "rotation_rollback",
        "rotation_adopted",
        "rotation_recovered",
    }


def test_commit_and_adoption_name_their_pins_and_date() -> None:
    details = {"activeVersions": {"api_key": "3", "api_secret": "3"}, "lastRotatedAt": ROTATED}
    for action in ("rotation_commit", "rotation_adopted"):
        assert _pins_of(action, details) == {
            "api_key": ("3", ROTATED),
            "api_secret": ("3", ROTATED),
        }


def test_rollback_names_the_restored_dates() -> None:
    details = {
        "activeVersions": {"api_key": "2"},
        "restoredDates": {"api_key": {"lastRotatedAt": BEFORE}},
    }
    assert _pins_of("rotation_rollback", details) == {"api_key": ("2", BEFORE)}


def test_a_forward_recovery_names_the_dates_it_pinned() -> None:
    details = {
        "outcome": "forward",
        "activeVersions": {"api_key": "4"},
        "dates": {"api_key": {"lastRotatedAt": ROTATED, "dueAt": "2027-12-07T10:00:00Z"}},
    }
    assert _pins_of("rotation_recovered", details) == {"api_key": ("4", ROTATED)}


def test_a_recovery_that_went_back_names_no_pin() -> None:
    """Its pins are those of the event before it, which the scan then reads."""
    details = {"outcome": "back", "restoredVersions": {"api_key": "3"}}
    assert _pins_of("rotation_recovered", details) == {}


def test_an_adopted_pin_is_not_superseded_by_its_own_event() -> None:
    since = PinSince(audit_id=7, version="3", last_rotated_at=ROTATED)
    rotated = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert not since.supersedes("3", rotated)
    assert since.supersedes("2", rotated)
