"""``log_cache_event``: one ``cache.*`` line per cache event, with stable names and levels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

from structlog.testing import capture_logs

from omni_secrets.domain.cache.events import (
    CacheEvent,
    Evicted,
    Expired,
    FetchRaisedUnexpectedly,
    Hydrated,
    ListenerFailed,
    OverrideEnded,
    OverrideInstalled,
    OverrideStopReason,
    Refreshed,
    RefresherStepFailed,
    RefreshFailed,
)
from omni_secrets.domain.cache.models import CacheSource, CacheState, Operation
from omni_secrets.domain.catalog import SecretType
from omni_secrets.observability.cache_log import log_cache_event

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def logged(event: CacheEvent) -> dict[str, object]:
    with capture_logs() as logs:
        log_cache_event(event)
    assert len(logs) == 1
    return logs[0]


def failed(*, serving: bool) -> RefreshFailed:
    return RefreshFailed(
        secret_type=SecretType.API_KEY,
        operation=Operation.REFRESH,
        reason="UNAVAILABLE",
        message="GSM unavailable",
        transient=True,
        duration_seconds=0.25,
        consecutive_failures=3,
        serving=serving,
    )


class TestLogCacheEvent:
    def test_refreshed(self) -> None:
        """A success is an info line with versions and the duration in milliseconds."""
        line = logged(
            Refreshed(SecretType.API_SECRET, Operation.REFRESH, "4", "3", 0.0125, failures_before=2)
        )
        assert line == {
            "event": "cache.refreshed",
            "log_level": "info",
            "secret_type": "api_secret",
            "operation": "refresh",
            "version": "4",
            "previous_version": "3",
            "failures_before": 2,
            "duration_ms": 12.5,
        }

    def test_refresh_failed_level_follows_serving(self) -> None:
        """A failure is a warning while the type is still served, an error once it is not."""
        serving = logged(failed(serving=True))
        gone = logged(failed(serving=False))
        assert serving["event"] == gone["event"] == "cache.refresh_failed"
        assert serving["log_level"] == "warning"
        assert gone["log_level"] == "error"
        assert serving["reason"] == "UNAVAILABLE"
        assert serving["consecutive_failures"] == 3
        assert serving["duration_ms"] == 250.0

    def test_hydrated(self) -> None:
        """Hydration is info when complete, a warning when some type failed."""
        good = logged(Hydrated(0.1, CacheState.READY, (SecretType.API_KEY,), ()))
        bad = logged(Hydrated(0.1, CacheState.EMPTY, (), (SecretType.API_KEY,)))
        assert good["event"] == bad["event"] == "cache.hydrated"
        assert (good["log_level"], bad["log_level"]) == ("info", "warning")
        assert bad["failed"] == ["api_key"]
        assert bad["state"] == "empty"

    def test_expired_and_evicted(self) -> None:
        """Dropping an entry is logged: expiry as a warning, a fail-closed eviction as an error."""
        expired = logged(Expired(SecretType.ZK_SEEDS, "2", AT, 0.0))
        evicted = logged(Evicted(SecretType.API_KEY, "3", "PERMISSION_DENIED"))
        assert (expired["event"], expired["log_level"]) == ("cache.expired", "warning")
        assert expired["expires_at"] == "2026-11-25T10:00:00Z"
        assert (evicted["event"], evicted["log_level"]) == ("cache.evicted", "error")
        assert evicted["reason"] == "PERMISSION_DENIED"

    def test_overrides(self) -> None:
        """Break-glass start and end are logged with the override id, never a value."""
        installed = logged(OverrideInstalled(SecretType.API_SECRET, "ovr-1", AT, AT))
        ended = logged(
            OverrideEnded(
                SecretType.API_SECRET, "ovr-1", OverrideStopReason.EXPIRED, CacheSource.GSM
            )
        )
        assert (installed["event"], installed["log_level"]) == (
            "cache.override_installed",
            "warning",
        )
        assert installed["override_id"] == "ovr-1"
        assert ended["event"] == "cache.override_ended"
        assert (ended["reason"], ended["reverted_to"]) == ("expired", "gsm")

    def test_fetch_raised_unexpectedly(self) -> None:
        """A bug in fetch is a warning naming the exception's type and place, never its text."""
        line = logged(FetchRaisedUnexpectedly(SecretType.API_KEY, "KeyError", "pinned.py:42"))
        assert line == {
            "event": "cache.fetch_unexpected_error",
            "log_level": "warning",
            "secret_type": "api_key",
            "error": "KeyError",
            "at": "pinned.py:42",
        }

    def test_refresher_step_failed(self) -> None:
        """A bug in the refresher's bookkeeping is an error line with its traceback."""
        error = RuntimeError("fake bookkeeping fault")
        line = logged(RefresherStepFailed(error))
        assert line == {
            "event": "cache.refresher_step_failed",
            "log_level": "error",
            "exc_info": error,
        }

    def test_listener_failed(self) -> None:
        """A failing listener is an error line naming the event it was handling."""
        error = ValueError("fake listener fault")
        line = logged(ListenerFailed("Refreshed", error))
        assert line == {
            "event": "cache.listener_failed",
            "log_level": "error",
            "event_type": "Refreshed",
            "exc_info": error,
        }

    def test_every_cache_event_has_a_line(self) -> None:
        """No event the cache can emit goes unlogged."""
        samples: list[CacheEvent] = [
            Refreshed(SecretType.API_KEY, Operation.HYDRATE, "1", None, 0.01, failures_before=0),
            failed(serving=True),
            Hydrated(0.1, CacheState.READY, (SecretType.API_KEY,), ()),
            Expired(SecretType.API_KEY, "1", AT, 0.0),
            Evicted(SecretType.API_KEY, "1", "NOT_FOUND"),
            OverrideInstalled(SecretType.API_KEY, "ovr-1", AT, AT),
            OverrideEnded(SecretType.API_KEY, "ovr-1", OverrideStopReason.REMOVED, None),
            FetchRaisedUnexpectedly(SecretType.API_KEY, "KeyError", "?"),
            RefresherStepFailed(RuntimeError("fake")),
            ListenerFailed("Hydrated", RuntimeError("fake")),
        ]
        assert {type(event) for event in samples} == set(get_args(CacheEvent))
        for event in samples:
            assert str(logged(event)["event"]).startswith("cache.")
