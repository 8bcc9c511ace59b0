"""One structured log line per cache event (``cache.*``), for operators reading the JSON log.

=================================  ========  ==============================================
event                              level     fields
=================================  ========  ==============================================
``cache.hydrated``                 info/     state, loaded, failed, duration_ms
                                   warning   (warning when a type failed)
``cache.refreshed``                info      secret_type, operation, version, previous_version,
                                             failures_before, duration_ms
``cache.refresh_failed``           warning/  secret_type, operation, reason, message, transient,
                                   error     serving, consecutive_failures, duration_ms
                                             (error when the type is no longer served)
``cache.expired``                  warning   secret_type, version, expires_at, stale_seconds
``cache.evicted``                  error     secret_type, version, reason (fail closed)
``cache.override_installed``       warning   secret_type, override_id, activated_at, expires_at
``cache.override_ended``           info      secret_type, override_id, reason, reverted_to
``cache.fetch_unexpected_error``   warning   secret_type, error (the exception's type), at
                                             (``file:line`` where it was raised)
``cache.refresher_step_failed``    error     exception (the traceback)
``cache.listener_failed``          error     event_type (the event being handled), exception
=================================  ========  ==============================================

Events hold no secret values (types, versions, codes, durations only); ``message`` is GSM's or our
own status text, never a payload. The last three report a bug; the cache carries on through each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from omni_secrets.domain.cache.events import (
    CacheEvent,
    Evicted,
    Expired,
    FetchRaisedUnexpectedly,
    Hydrated,
    ListenerFailed,
    OverrideEnded,
    OverrideInstalled,
    Refreshed,
    RefresherStepFailed,
    RefreshFailed,
)
from omni_secrets.domain.clock import to_rfc3339

_log = structlog.get_logger("omni_secrets.cache")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def log_cache_event(event: CacheEvent, log: Any = None) -> None:
    """Write ``event`` as one ``cache.*`` line (see the module docstring for names and fields).

    Args:
        event: what the cache reported.
        log: a structlog logger (the module's by default).
    """
    _LINES[type(event)](log if log is not None else _log, event)


def _refreshed(out: Any, event: Refreshed) -> None:
    out.info(
        "cache.refreshed",
        secret_type=event.secret_type.value,
        operation=event.operation.value,
        version=event.version,
        previous_version=event.previous_version,
        failures_before=event.failures_before,
        duration_ms=_ms(event.duration_seconds),
    )


def _refresh_failed(out: Any, event: RefreshFailed) -> None:
    level = out.warning if event.serving else out.error
    level(
        "cache.refresh_failed",
        secret_type=event.secret_type.value,
        operation=event.operation.value,
        reason=event.reason,
        message=event.message,
        transient=event.transient,
        serving=event.serving,
        consecutive_failures=event.consecutive_failures,
        duration_ms=_ms(event.duration_seconds),
    )


def _hydrated(out: Any, event: Hydrated) -> None:
    level = out.warning if event.failed else out.info
    level(
        "cache.hydrated",
        state=event.state.value,
        loaded=[t.value for t in event.loaded],
        failed=[t.value for t in event.failed],
        duration_ms=_ms(event.duration_seconds),
    )


def _expired(out: Any, event: Expired) -> None:
    out.warning(
        "cache.expired",
        secret_type=event.secret_type.value,
        version=event.version,
        expires_at=to_rfc3339(event.expires_at),
        stale_seconds=event.stale_seconds,
    )


def _evicted(out: Any, event: Evicted) -> None:
    out.error(
        "cache.evicted",
        secret_type=event.secret_type.value,
        version=event.version,
        reason=event.reason,
    )


def _override_installed(out: Any, event: OverrideInstalled) -> None:
    out.warning(
        "cache.override_installed",
        secret_type=event.secret_type.value,
        override_id=event.override_id,
        activated_at=to_rfc3339(event.activated_at),
        expires_at=to_rfc3339(event.expires_at),
    )


def _override_ended(out: Any, event: OverrideEnded) -> None:
    out.info(
        "cache.override_ended",
        secret_type=event.secret_type.value,
        override_id=event.override_id,
        reason=event.reason.value,
        reverted_to=event.reverted_to.value if event.reverted_to is not None else None,
    )


def _fetch_raised_unexpectedly(out: Any, event: FetchRaisedUnexpectedly) -> None:
    out.warning(
        "cache.fetch_unexpected_error",
        secret_type=event.secret_type.value,
        error=event.error_type,
        at=event.at,
    )


def _refresher_step_failed(out: Any, event: RefresherStepFailed) -> None:
    out.error("cache.refresher_step_failed", exc_info=event.error)


def _listener_failed(out: Any, event: ListenerFailed) -> None:
    # ``event`` is structlog's key for the line's name: the failed event's type goes in event_type.
    out.error("cache.listener_failed", event_type=event.event_type, exc_info=event.error)


_LINES: dict[type[Any], Callable[[Any, Any], None]] = {
    Refreshed: _refreshed,
    RefreshFailed: _refresh_failed,
    Hydrated: _hydrated,
    Expired: _expired,
    Evicted: _evicted,
    OverrideInstalled: _override_installed,
    OverrideEnded: _override_ended,
    FetchRaisedUnexpectedly: _fetch_raised_unexpectedly,
    RefresherStepFailed: _refresher_step_failed,
    ListenerFailed: _listener_failed,
}
