"""The rotation monitor in the real app: gauges, alerts, audit rows, and ``rotation check``.

Metadata dates are moved with SQL in the stack's database, then a round is run by hand
(``services.rotation_monitor.run_once()``) instead of waiting for the hourly timer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, update

from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import secret_metadata
from omni_secrets.bootstrap import Overrides
from omni_secrets.testing import RecordingAlertSink
from tests.contract.conftest import OmniStack, StackFactory
from tests.contract.test_rotation import audit_rows, commit_path, ready_api_preview

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"
ROTATE = ("omni-secrets:rotate",)


async def age_group(stack: OmniStack, group: str, days: int) -> datetime:
    """Pretend ``group`` was last rotated ``days`` ago (365-day period); returns its due date.

    Runs in a thread: a blocking write on the event loop's thread would wait for the SQLite write
    lock of an app transaction that needs the loop to finish.
    """
    return await asyncio.to_thread(_age_group, stack.database_url, group, days)


def _age_group(url: str, group: str, days: int) -> datetime:
    rotated = datetime.now(UTC) - timedelta(days=days)
    due = rotated + timedelta(days=365)
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(secret_metadata)
                .where(secret_metadata.c.rotation_group == group)
                .values(last_rotated_at=rotated, rotation_due_at=due)
            )
    finally:
        engine.dispose()
    return due


def gauge(stack: OmniStack, name: str, secret_type: str) -> float | None:
    return stack.services.metrics.registry.get_sample_value(name, {"secret_type": secret_type})


def events(sink: RecordingAlertSink, name: str, action: str) -> list[str]:
    return [
        e.alert.severity
        for e in sink.delivered
        if e.alert.name == name and e.action == action and e.alert.subject == "api_credentials"
    ]


async def rotation_check(stack: OmniStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OMNI_", "GCP_"))}
    env["OMNI_DATABASE_URL"] = stack.database_url
    return await asyncio.to_thread(
        subprocess.run,
        [CLI, "rotation", "check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def stack_with_sink(factory: StackFactory) -> tuple[OmniStack, RecordingAlertSink]:
    sink = RecordingAlertSink()
    stack = await factory(overrides=Overrides(alert_sinks=[sink]))
    return stack, sink


class TestRotationMonitor:
    async def test_startup_round_sets_gauges(self, omni_stack: OmniStack) -> None:
        """The startup round sets the due timestamp of every type; nothing is overdue."""
        for secret_type in ("api_key", "zk_l2_key"):
            due = gauge(omni_stack, "omni_secret_rotation_due_timestamp_seconds", secret_type)
            assert due is not None
            assert due > (datetime.now(UTC) + timedelta(days=364)).timestamp()
            assert gauge(omni_stack, "omni_secret_rotation_overdue", secret_type) == 0

    async def test_due_soon_warns(self, omni_stack_factory: StackFactory) -> None:
        """340 days after the last rotation: due_soon, a warning alert, overdue gauge 0."""
        stack, sink = await stack_with_sink(omni_stack_factory)
        due = await age_group(stack, "api_credentials", 340)
        result = await stack.services.rotation_monitor.run_once()
        assert result.leader is True
        statuses = {t.secret_type.value: t.status.value for t in result.report.types}
        assert statuses["api_key"] == "due_soon"
        assert statuses["zk_seeds"] == "ok"
        await stack.wait_for(lambda: bool(events(sink, "rotation_due_soon", "trigger")))
        assert events(sink, "rotation_due_soon", "trigger") == ["warning"]
        assert gauge(stack, "omni_secret_rotation_overdue", "api_key") == 0
        assert gauge(stack, "omni_secret_rotation_due_timestamp_seconds", "api_secret") == (
            pytest.approx(due.timestamp(), abs=1e-3)
        )
        await stack.wait_for(
            lambda: any(
                row["details"]["status"] == "due_soon"
                for row in audit_rows(stack, "rotation_alert")
            ),
            what="the rotation_alert audit row",
        )
        # The same status on the next round sends nothing new.
        await stack.services.rotation_monitor.run_once()
        await asyncio.sleep(0.05)
        assert events(sink, "rotation_due_soon", "trigger") == ["warning"]
        await stack.services.secrets.reconcile()  # status reads the metadata reloaded periodically
        status = (await stack.request("GET", "/ops/apex-omni/secrets/status")).json()
        assert status["secrets"][0]["rotation"]["status"] == "due_soon"
        check = await rotation_check(stack)
        assert check.returncode == 1, check.stderr

    async def test_overdue_pages_and_commit_resolves(
        self, omni_stack_factory: StackFactory
    ) -> None:
        """400 days: overdue, gauge 1, critical alert, check exits 2; a commit resolves it."""
        stack, sink = await stack_with_sink(omni_stack_factory)
        await age_group(stack, "api_credentials", 400)
        await stack.services.rotation_monitor.run_once()
        await stack.wait_for(lambda: bool(events(sink, "rotation_overdue", "trigger")))
        assert events(sink, "rotation_overdue", "trigger") == ["critical"]
        assert gauge(stack, "omni_secret_rotation_overdue", "api_passphrase") == 1
        assert gauge(stack, "omni_secret_rotation_overdue", "zk_seeds") == 0
        metrics = (await stack.client.get("/metrics")).text
        assert 'omni_secret_rotation_overdue{secret_type="api_key"} 1.0' in metrics

        check = await rotation_check(stack)
        assert check.returncode == 2, check.stderr
        assert "overdue" in check.stdout

        body = await ready_api_preview(stack)
        committed = await stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert committed.status_code == 200
        await stack.wait_for(
            lambda: bool(events(sink, "rotation_overdue", "resolve")), what="the resolve"
        )
        # The commit woke the monitor: the gauge follows without waiting for the timer.
        await stack.wait_for(
            lambda: gauge(stack, "omni_secret_rotation_overdue", "api_key") == 0,
            what="the overdue gauge back to 0",
        )
        await stack.wait_for(
            lambda: any(
                row["details"]["alertAction"] == "resolve"
                for row in audit_rows(stack, "rotation_alert")
            ),
            what="the resolve audit row",
        )
        check = await rotation_check(stack, "--json")
        assert check.returncode == 0, check.stderr

    async def test_due_soon_then_overdue_escalates(self, omni_stack_factory: StackFactory) -> None:
        """due_soon → overdue triggers the critical alert and resolves the warning."""
        stack, sink = await stack_with_sink(omni_stack_factory)
        await age_group(stack, "api_credentials", 340)
        await stack.services.rotation_monitor.run_once()
        await age_group(stack, "api_credentials", 370)
        await stack.services.rotation_monitor.run_once()
        await stack.wait_for(lambda: bool(events(sink, "rotation_due_soon", "resolve")))
        assert events(sink, "rotation_overdue", "trigger") == ["critical"]
