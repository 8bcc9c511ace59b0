"""The status table is usable at 80 columns and shows the API's own numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omni_secrets.cli._render import render_status
from omni_secrets.cli.client import StatusReport


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def item(secret_type: str, days: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "secretType": secret_type,
        "required": True,
        "cacheSource": "gsm",
        "version": "3",
        "fetchedAt": iso(timedelta(seconds=-12)),
        "ageSeconds": 12.5,
        "expiresAt": iso(timedelta(minutes=4)),
        "stale": False,
        "lastError": None,
        "rotation": {
            "group": "api_credentials",
            "dueAt": iso(timedelta(days=days, hours=23)),
            "status": "ok" if days > 30 else ("due_soon" if days >= 0 else "overdue"),
            "daysUntilDue": days,
            "previewOpen": False,
        },
        "breakGlass": {"active": False},
    }
    body.update(extra)
    return body


REASON = "GSM UNAVAILABLE in europe-west1 since 10:02, trading halted, see INC-4242 for the bridge"


def status_body() -> dict[str, Any]:
    return {
        "environment": "production",
        "gcpProjectId": "omni-trading-prod",
        "cache": {
            "state": "degraded",
            "ttlSeconds": 300,
            "hydratedAt": iso(timedelta(hours=-5)),
            "lastRefreshAt": iso(timedelta(seconds=-30)),
        },
        "secrets": [
            item(
                "api_secret",
                364,
                cacheSource="break_glass",
                breakGlass={
                    "active": True,
                    "overrideId": "fake-override-0001",
                    "actor": "oncall@example.com",
                    "activatedAt": iso(timedelta(minutes=-3)),
                    "expiresAt": iso(timedelta(minutes=12)),
                    "reason": REASON,
                },
            ),
            item(
                "api_passphrase",
                -3,
                cacheSource="none",
                version=None,
                ageSeconds=None,
                lastError={
                    "code": "PERMISSION_DENIED",
                    "message": "Permission 'secretmanager.versions.access' denied on the secret",
                    "at": iso(timedelta(minutes=-1)),
                },
            ),
            item("zk_seeds", 20),
        ],
    }


def test_fits_80_columns_and_keeps_the_long_fields_whole(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No line is wider than 80; the override's reason and the error message survive entire."""
    monkeypatch.setenv("COLUMNS", "80")
    render_status(StatusReport.parse(status_body()))
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    flat = " ".join(out.split())
    assert REASON in flat
    assert "fake-override-0001" in flat
    assert "PERMISSION_DENIED" in flat
    assert "secretmanager.versions.access' denied on the secret" in flat


def test_days_are_the_apis_days_until_due(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """364 in JSON is "due in 364d" (not a rounded 365), overdue counts days late."""
    monkeypatch.setenv("COLUMNS", "80")
    render_status(StatusReport.parse(status_body()))
    rows: dict[str, str] = {}
    for line in capsys.readouterr().out.splitlines():
        if line and not line.startswith(" "):
            rows.setdefault(line.split()[0], line)  # table rows come before the detail lines
    assert "due in 364d" in rows["api_secret"]
    assert "3d late" in rows["api_passphrase"]
    assert "due in 20d" in rows["zk_seeds"]
