"""``omni-secrets db …`` and ``audit verify`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, select

from omni_secrets.adapters.db import migrate
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import secret_metadata
from tests.integration.db.conftest import OmniCli

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"
CATALOG = {
    "api_key": ("apex-omni-api-key", True, "api_credentials"),
    "api_secret": ("apex-omni-api-secret", True, "api_credentials"),
    "api_passphrase": ("apex-omni-api-passphrase", True, "api_credentials"),
    "zk_seeds": ("apex-omni-zk-seeds", False, "zk_keys"),
    "zk_l2_key": ("apex-omni-zk-l2-key", False, "zk_keys"),
}


def metadata_rows(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            m = secret_metadata.c
            query = select(
                m.secret_type,
                m.gsm_secret_id,
                m.gsm_project_id,
                m.required,
                m.rotation_group,
                m.active_version,
                m.last_rotated_at,
                m.rotation_due_at,
            ).order_by(m.secret_type)
            return [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


HEAD = migrate.head()


class TestDbMigrationCommands:
    def test_upgrade_downgrade_base_upgrade_round_trip(
        self, omni_cli: OmniCli, empty_database_url: str
    ) -> None:
        """upgrade, downgrade base and upgrade again all succeed and `db current` follows."""
        env = {"OMNI_DATABASE_URL": empty_database_url}
        steps = [
            (("db", "current"), "base"),
            (("db", "upgrade"), f"{HEAD} (head)"),
            (("db", "current"), f"{HEAD} (head)"),
            (("db", "downgrade", "base"), "base"),
            (("db", "current"), "base"),
            (("db", "upgrade", "--revision", "head"), f"{HEAD} (head)"),
        ]
        for args, expected in steps:
            result = omni_cli(*args, **env)
            assert result.code == 0, result.stderr
            assert result.stdout.strip().endswith(expected), (args, result.stdout)

    def test_downgrade_to_a_revision_id(self, omni_cli: OmniCli, empty_database_url: str) -> None:
        """A revision id is a valid downgrade target."""
        env = {"OMNI_DATABASE_URL": empty_database_url}
        assert omni_cli("db", "upgrade", **env).code == 0
        down = omni_cli("db", "downgrade", "0002", **env)
        current = omni_cli("db", "current", **env)
        assert down.code == 0
        assert current.stdout.strip() == "0002"

    def test_unknown_revision_is_one_line_exit_2(
        self, omni_cli: OmniCli, empty_database_url: str
    ) -> None:
        """A revision that does not exist is bad input: exit 2 and one line naming it."""
        result = omni_cli("db", "downgrade", "nope", OMNI_DATABASE_URL=empty_database_url)
        assert result.code == 2
        assert "nope" in one_line(result.stderr)


class TestDbSeed:
    def test_seed_twice_leaves_one_row_per_type_due_in_365_days(
        self, omni_cli: OmniCli, empty_database_url: str
    ) -> None:
        """Two seeds insert each catalog type once, due 365 days after its last rotation."""
        env = {"OMNI_DATABASE_URL": empty_database_url, "GCP_PROJECT_ID": "omni-test"}
        assert omni_cli("db", "upgrade", **env).code == 0
        first = omni_cli("db", "seed", **env)
        rows_after_first = metadata_rows(empty_database_url)
        second = omni_cli("db", "seed", **env)
        rows = metadata_rows(empty_database_url)

        assert (first.code, second.code) == (0, 0)
        assert first.stdout.count("GSM unreachable: unpinned, rotated now") == 5
        assert "5 inserted, 0 kept unchanged" in first.stdout
        assert "0 inserted, 5 kept unchanged" in second.stdout
        assert rows == rows_after_first
        assert [row[0] for row in rows] == sorted(CATALOG)
        for secret_type, gsm_id, project, required, group, version, rotated, due in rows:
            assert (gsm_id, bool(required), group) == CATALOG[str(secret_type)]
            assert project == "omni-test"
            assert version is None
            assert due - rotated == timedelta(days=365)

    def test_seed_uses_prefix_and_period_from_the_environment(
        self, omni_cli: OmniCli, empty_database_url: str
    ) -> None:
        """OMNI_GSM_SECRET_PREFIX and OMNI_ROTATION_PERIOD_DAYS shape the seeded rows."""
        env = {
            "OMNI_DATABASE_URL": empty_database_url,
            "GCP_PROJECT_ID": "omni-test",
            "OMNI_GSM_SECRET_PREFIX": "desk7-",
            "OMNI_ROTATION_PERIOD_DAYS": "90",
        }
        assert omni_cli("db", "upgrade", **env).code == 0
        assert omni_cli("db", "seed", **env).code == 0
        rows = metadata_rows(empty_database_url)
        assert {row[1] for row in rows} == {"desk7-" + name.replace("_", "-") for name in CATALOG}
        assert {row[7] - row[6] for row in rows} == {timedelta(days=90)}

    def test_seed_on_an_unmigrated_database_says_what_to_do(
        self, omni_cli: OmniCli, empty_database_url: str
    ) -> None:
        """Seeding before migrating exits 1 with one line pointing at `db upgrade`."""
        result = omni_cli(
            "db", "seed", OMNI_DATABASE_URL=empty_database_url, GCP_PROJECT_ID="omni-test"
        )
        assert result.code == 1
        assert "omni-secrets db upgrade" in one_line(result.stderr)

    def test_seed_without_project_is_exit_2(
        self, omni_cli: OmniCli, empty_database_url: str
    ) -> None:
        """GCP_PROJECT_ID is required to seed."""
        result = omni_cli("db", "seed", OMNI_DATABASE_URL=empty_database_url)
        assert result.code == 2
        assert "GCP_PROJECT_ID" in one_line(result.stderr)


class TestAuditVerifyCommand:
    def test_empty_trail_is_intact(self, omni_cli: OmniCli, database_url: str) -> None:
        """A migrated database with no events verifies with a count of zero."""
        result = omni_cli("audit", "verify", OMNI_DATABASE_URL=database_url)
        assert result.code == 0
        assert "0 events verified" in result.stdout


class TestBadInput:
    @pytest.mark.parametrize(
        "args", [("db", "current"), ("db", "seed"), ("audit", "verify")], ids=" ".join
    )
    def test_unsupported_url_is_one_line_without_the_password(
        self, omni_cli: OmniCli, args: tuple[str, ...]
    ) -> None:
        """An unsupported scheme exits 2 with one line that never shows the password."""
        result = omni_cli(
            *args, OMNI_DATABASE_URL="mysql://ops:fake-db-pass@db/omni", GCP_PROJECT_ID="p"
        )
        line = one_line(result.stderr)
        assert result.code == 2
        assert "OMNI_DATABASE_URL" in line
        assert "fake-db-pass" not in line

    def test_unreachable_database_is_exit_3(self, omni_cli: OmniCli) -> None:
        """A database that does not answer exits 3 with one line, no traceback."""
        url = "postgresql+psycopg://omni:fake-db-pass@127.0.0.1:1/omni"
        result = omni_cli("db", "upgrade", OMNI_DATABASE_URL=url)
        line = one_line(result.stderr)
        assert result.code == 3
        assert "unreachable" in line
        assert "fake-db-pass" not in line

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    def test_installed_console_script(self, empty_database_url: str) -> None:
        """The installed `omni-secrets` script runs the db group and documents every command."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
        env["OMNI_DATABASE_URL"] = empty_database_url
        for args in (["db", "upgrade"], ["db", "current"], ["audit", "verify"]):
            proc = subprocess.run(
                [CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == (
            "audit chain verified, no anchor: 0 events verified (0 keyed, 0 unkeyed)"
        )
        assert "no anchor (GCP_PROJECT_ID is not set" in proc.stderr
        for group, command in (("db", "downgrade"), ("db", "seed"), ("audit", "verify")):
            proc = subprocess.run(
                [CLI, group, command, "--help"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert proc.returncode == 0
            assert "Usage: omni-secrets" in proc.stdout
