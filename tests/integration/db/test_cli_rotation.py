"""``omni-secrets rotation check`` end to end, on SQLite and PostgreSQL (contract section 1)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool

from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import secret_metadata
from omni_secrets.domain.catalog import Catalog
from tests.integration.db.conftest import OmniCli
from tests.integration.db.test_cli_db import CLI, one_line

PERIOD = timedelta(days=365)


def seed(url: str, *, api_age_days: float, zk_age_days: float = 10) -> None:
    """Insert every catalog row, as if each group was last rotated that many days ago."""
    now = datetime.now(UTC)
    ages = {"api_credentials": api_age_days, "zk_keys": zk_age_days}
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            for entry in Catalog():
                rotated = now - timedelta(days=ages[entry.rotation_group.value])
                conn.execute(
                    secret_metadata.insert().values(
                        secret_type=entry.secret_type.value,
                        gsm_secret_id=entry.gsm_secret_id,
                        gsm_project_id="omni-test",
                        required=entry.required,
                        rotation_group=entry.rotation_group.value,
                        active_version="1",
                        last_rotated_at=rotated,
                        rotation_due_at=rotated + PERIOD,
                        created_at=now,
                        updated_at=now,
                    )
                )
    finally:
        engine.dispose()


class TestRotationCheck:
    @pytest.mark.parametrize(
        ("api_age_days", "code", "status"),
        [(10, 0, "ok"), (340, 1, "due_soon"), (400, 2, "overdue")],
    )
    def test_exit_codes(
        self, omni_cli: OmniCli, database_url: str, api_age_days: int, code: int, status: str
    ) -> None:
        """Exit 0 all ok, 1 something due within the warning window, 2 something overdue."""
        seed(database_url, api_age_days=api_age_days)
        result = omni_cli("rotation", "check", OMNI_DATABASE_URL=database_url)
        assert result.code == code, result.stderr
        row = next(line for line in result.stdout.splitlines() if " api_key " in line)
        assert f" {status} " in row
        assert " api_credentials " in row

    def test_json(self, omni_cli: OmniCli, database_url: str) -> None:
        """--json lists every type with its group, dates, status and days until due."""
        seed(database_url, api_age_days=400, zk_age_days=340)
        result = omni_cli("rotation", "check", "--json", OMNI_DATABASE_URL=database_url)
        assert result.code == 2
        body = json.loads(result.stdout)
        assert body["status"] == "overdue"
        assert body["exitCode"] == 2
        by_type = {s["secretType"]: s for s in body["secrets"]}
        assert list(by_type) == ["api_key", "api_secret", "api_passphrase", "zk_seeds", "zk_l2_key"]
        assert by_type["api_key"]["status"] == "overdue"
        assert by_type["api_key"]["daysUntilDue"] == -36
        assert by_type["zk_seeds"]["status"] == "due_soon"
        assert by_type["zk_seeds"]["group"] == "zk_keys"
        assert by_type["zk_seeds"]["dueAt"].endswith("Z")
        assert {g["group"]: g["status"] for g in body["groups"]} == {
            "api_credentials": "overdue",
            "zk_keys": "due_soon",
        }

    def test_warning_days_setting(self, omni_cli: OmniCli, database_url: str) -> None:
        """OMNI_ROTATION_WARNING_DAYS moves the due-soon window."""
        seed(database_url, api_age_days=300)
        wide = omni_cli(
            "rotation", "check", OMNI_DATABASE_URL=database_url, OMNI_ROTATION_WARNING_DAYS="90"
        )
        assert wide.code == 1
        narrow = omni_cli(
            "rotation", "check", OMNI_DATABASE_URL=database_url, OMNI_ROTATION_WARNING_DAYS="30"
        )
        assert narrow.code == 0

    def test_not_seeded(self, omni_cli: OmniCli, database_url: str) -> None:
        """A migrated but unseeded database: a setup error, exit 3 with the db seed hint."""
        result = omni_cli("rotation", "check", OMNI_DATABASE_URL=database_url)
        assert result.code == 3
        assert "omni-secrets db seed" in one_line(result.stderr)

    def test_not_migrated(self, omni_cli: OmniCli, empty_database_url: str) -> None:
        """An empty database: a setup error, exit 3 with the db upgrade hint."""
        if empty_database_url.startswith("sqlite"):
            # An existing but empty file, as after a failed setup.
            Path(empty_database_url.removeprefix("sqlite:///")).touch()
        result = omni_cli("rotation", "check", OMNI_DATABASE_URL=empty_database_url)
        assert result.code == 3
        assert "omni-secrets db upgrade" in one_line(result.stderr)

    @pytest.mark.parametrize("backend", ["sqlite"])
    def test_missing_sqlite_file_is_not_created(
        self, omni_cli: OmniCli, empty_database_url: str
    ) -> None:
        """A SQLite path that does not exist: exit 3 with a hint, and no file is created."""
        path = empty_database_url.removeprefix("sqlite:///")
        result = omni_cli("rotation", "check", OMNI_DATABASE_URL=empty_database_url)
        assert result.code == 3
        assert "does not exist" in one_line(result.stderr)
        assert not Path(path).exists()

    @pytest.mark.parametrize("backend", ["postgres"])
    def test_unreachable_database(self, omni_cli: OmniCli, backend: str) -> None:
        """No database server listening: one clear line and exit 3."""
        result = omni_cli(
            "rotation",
            "check",
            OMNI_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/omni",
        )
        assert result.code == 3
        assert "unreachable" in one_line(result.stderr)

    def test_console_script(self, database_url: str) -> None:
        """The installed console script exits 2 on an overdue group (what cron sees)."""
        seed(database_url, api_age_days=400)
        completed = subprocess.run(
            [CLI, "rotation", "check"],
            env={"OMNI_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 2, completed.stderr
        assert "overdue" in completed.stdout
