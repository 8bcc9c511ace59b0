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


def test_every_line_at_80_columns_is_whole(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """COLUMNS=80 during a break-glass with an open preview: one block per type, line by line,
    the pinned version beside the cached one, nothing cut with an ellipsis."""
    monkeypatch.setenv("COLUMNS", "80")
    body = status_body()
    body["secrets"][0]["activeVersion"] = "3"
    body["secrets"][0]["rotation"]["previewOpen"] = True
    body["secrets"][2]["activeVersion"] = "2"
    body["secrets"][2]["rotation"]["candidateVersion"] = "4"
    render_status(StatusReport.parse(body))
    lines = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    until = (datetime.now(UTC) + timedelta(minutes=12)).strftime("%Y-%m-%d %H:%MZ")
    assert lines == [
        "production · project omni-trading-prod · cache degraded · ttl 300s",
        "hydrated 5h ago · last refresh 30s ago",
        "api_secret ok (due in 364d, preview open)",
        "  required · source break_glass · version 3 · pinned 3",
        "  age 12s · expires in 4m",
        "api_passphrase overdue (3d late)",
        "  required · source none · version - · pinned -",
        "  age - · expires in 4m",
        "zk_seeds due_soon (due in 20d, v4 waiting)",
        "  required · source gsm · version 3 · pinned 2",
        "  age 12s · expires in 4m",
        "break-glass overrides active:",
        f"  api_secret until {until} (in 12m), override fake-override-0001 by",
        "oncall@example.com: GSM UNAVAILABLE in europe-west1 since 10:02, trading halted,",
        "see INC-4242 for the bridge",
        "last errors:",
        "  api_passphrase PERMISSION_DENIED (60s ago): Permission",
        "'secretmanager.versions.access' denied on the secret",
    ]


def test_wide_terminal_keeps_the_table_with_the_pin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 120 columns the table fits: one row per type, the pin column, the open preview."""
    monkeypatch.setenv("COLUMNS", "120")
    body = status_body()
    body["secrets"][0]["activeVersion"] = "3"
    body["secrets"][0]["rotation"]["previewOpen"] = True
    render_status(StatusReport.parse(body))
    lines = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert lines[2].split() == [
        "secret", "type", "req", "source", "ver", "pin", "cur", "age", "expires", "rotation",
    ]  # fmt: skip
    assert lines[3].split() == [
        "api_secret", "yes", "break_glass", "3", "3", "-", "12s", "in", "4m", "ok", "(due", "in",
        "364d,", "preview", "open)",
    ]  # fmt: skip
    assert "…" not in "\n".join(lines)


def test_gsm_aliases_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """aliasVersion, previousVersion and enabledVersions each on the type's own line, whole,
    at 80 columns; in the wide table `current` sits beside the pin."""
    monkeypatch.setenv("COLUMNS", "80")
    body = status_body()
    body["secrets"][2]["activeVersion"] = "2"
    body["secrets"][2]["enabledVersions"] = 3
    body["secrets"][2]["rotation"]["aliasVersion"] = "3"
    body["secrets"][2]["rotation"]["previousVersion"] = "2"
    render_status(StatusReport.parse(body))
    lines = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert max(len(line) for line in lines) <= 80
    assert "  gsm current 3 · previous 2 · enabled versions 3" in lines
    assert sum(line.startswith("  gsm current") for line in lines) == 1  # only where sent

    monkeypatch.setenv("COLUMNS", "120")
    body["secrets"][2]["rotation"]["aliasVersion"] = "2"
    render_status(StatusReport.parse(body))
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("zk_seeds"))
    assert row.split()[3:6] == ["3", "2", "2"]


def test_drift_is_named_in_the_rotation_column(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """rotation.drift (contract section 15) shows its reason beside the rotation state, whole
    at 80 columns; a type without drift says nothing of it."""
    monkeypatch.setenv("COLUMNS", "80")
    body = status_body()
    body["secrets"][2]["rotation"]["drift"] = {
        "since": iso(timedelta(minutes=-3)),
        "reason": "group_incomplete",
    }
    render_status(StatusReport.parse(body))
    out = capsys.readouterr().out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80
    assert out.count("drift group_incomplete") == 1


def test_commit_says_the_days_status_says(capsys: pytest.CaptureFixture[str]) -> None:
    """Right after a 365-day rotation the commit says `in 365d`, as status then does (not 364)."""
    from omni_secrets.cli._render import human
    from omni_secrets.cli.client import CommitAnswer

    now = datetime.now(UTC)
    due = now + timedelta(days=365)
    member = {"secretType": "api_key", "activeVersion": "2"}  # pragma: allowlist secret
    answer = CommitAnswer.parse(
        {
            "group": "api_credentials",
            "members": [member],
            "lastRotatedAt": now.isoformat().replace("+00:00", "Z"),
            "dueAt": due.isoformat().replace("+00:00", "Z"),
        }
    )
    human(answer)
    out = capsys.readouterr().out
    assert "(in 365d)" in out, out
