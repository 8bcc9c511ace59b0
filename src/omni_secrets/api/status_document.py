"""The status view as the contract's JSON document, built without pydantic.

Validating the service's read model into :class:`~omni_secrets.api.schemas.StatusResponse` and
serialising it again cost more than the rest of the request (profile in ``docs/benchmarks.md``).
The view is already typed and trusted (the service built it), so this module maps it to the
camelCase document directly. ``StatusResponse`` stays the documented schema, and a unit test
holds the two to the same output for every shape of view.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import orjson

from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.service.views import (
    NO_BREAK_GLASS,
    BreakGlassView,
    CacheView,
    LastErrorView,
    RotationView,
    SecretStatusView,
    StatusView,
)


@functools.lru_cache(maxsize=1024)
def _rfc3339(moment: datetime) -> str:
    # The same few instants (fetch, expiry, rotation dates) are rendered on every status call.
    return to_rfc3339(moment)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else _rfc3339(moment)


def _last_error(error: LastErrorView | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "at": _rfc3339(error.at)}


def _rotation(rotation: RotationView) -> dict[str, Any]:
    return {
        "group": rotation.group,
        "lastRotatedAt": _time(rotation.last_rotated_at),
        "dueAt": _time(rotation.due_at),
        "status": rotation.status,
        "daysUntilDue": rotation.days_until_due,
        "previewOpen": rotation.preview_open,
        "candidateVersion": rotation.candidate_version,
        "aliasVersion": rotation.alias_version,
        "previousVersion": rotation.previous_version,
        "drift": (
            None
            if rotation.drift is None
            else {"since": _rfc3339(rotation.drift.since), "reason": rotation.drift.reason}
        ),
    }


def _break_glass(view: BreakGlassView) -> dict[str, Any]:
    # Only the fields that are set: {"active": false} when no override is active.
    if view is NO_BREAK_GLASS:  # every type but one under an override, on every call
        return {"active": False}
    document: dict[str, Any] = {
        "active": view.active,
        "overrideId": view.override_id,
        "actor": view.actor,
        "activatedAt": _time(view.activated_at),
        "expiresAt": _time(view.expires_at),
        "reason": view.reason,
    }
    return {key: value for key, value in document.items() if value is not None}


def _secret(secret: SecretStatusView) -> dict[str, Any]:
    return {
        "secretType": secret.secret_type,
        "gsmSecretId": secret.gsm_secret_id,
        "required": secret.required,
        "cacheSource": secret.cache_source,
        "version": secret.version,
        "activeVersion": secret.active_version,
        "enabledVersions": secret.enabled_versions,
        "fetchedAt": _time(secret.fetched_at),
        "ageSeconds": secret.age_seconds,
        "expiresAt": _time(secret.expires_at),
        "stale": secret.stale,
        "lastError": _last_error(secret.last_error),
        "rotation": _rotation(secret.rotation),
        "breakGlass": _break_glass(secret.break_glass),
    }


def _cache(cache: CacheView) -> dict[str, Any]:
    return {
        "state": cache.state,
        "ttlSeconds": cache.ttl_seconds,
        "hydratedAt": _time(cache.hydrated_at),
        "lastRefreshAt": _time(cache.last_refresh_at),
    }


def status_document(view: StatusView) -> dict[str, Any]:
    """The JSON-ready document of contract section 5 (``GET .../status``)."""
    return {
        "environment": view.environment,
        "gcpProjectId": view.gcp_project_id,
        "cache": _cache(view.cache),
        "secrets": [_secret(secret) for secret in view.secrets],
        # Contract section 12: this replica and the GSM event feed (null when off).
        # Section 18: clockOffsetSeconds, this host's clock minus the database's (null before
        # the first heartbeat measured it).
        "replica": {
            "id": view.replica.id,
            "peers": view.replica.peers,
            "clockOffsetSeconds": view.replica.clock_offset_seconds,
        }
        if view.replica is not None
        else None,
        "events": {
            "subscription": view.events.subscription,
            "connected": view.events.connected,
            "lastEventAt": _time(view.events.last_event_at),
        }
        if view.events is not None
        else None,
    }


def render_status(view: StatusView) -> bytes:
    """``status_document`` as compact UTF-8 JSON, as FastAPI would have sent it.

    orjson writes the same bytes as ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``
    for this document (a unit test holds it) at a fifteenth of the cost; nothing in the view is
    NaN or infinite (ages are clamped, days are integers).
    """
    return orjson.dumps(status_document(view))


class StatusRenderer:
    """:func:`render_status` that remembers the last view's bytes.

    The service shares one view between the status calls of the same millisecond
    (``service/status.py``); rendering it once for all of them is exact, since a view is
    immutable and is recognised by identity, not by comparing it.
    """

    def __init__(self) -> None:
        self._last: tuple[StatusView, bytes] | None = None

    def __call__(self, view: StatusView) -> bytes:
        last = self._last
        if last is not None and last[0] is view:
            return last[1]
        body = render_status(view)
        self._last = (view, body)
        return body
