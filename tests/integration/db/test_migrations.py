"""Guard tests for the Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool, text

from omni_secrets.adapters.db import migrate
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import metadata
from omni_secrets.domain.errors import InvalidInput

REPO = Path(__file__).resolve().parents[3]
ALEMBIC = shutil.which("alembic", path=str(Path(sys.executable).parent)) or "alembic"
REVISIONS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0009"]
TABLES_AT = {
    "0001": {"omni_secret_metadata"},
    "0002": {"omni_secret_metadata", "omni_secret_access_events"},
    "0003": {
        "omni_secret_metadata",
        "omni_secret_access_events",
        "omni_break_glass_overrides",
        "omni_break_glass_nonces",
    },
    "0004": {
        "omni_secret_metadata",
        "omni_secret_access_events",
        "omni_break_glass_overrides",
        "omni_break_glass_nonces",
        "omni_rotation_previews",
    },
    "0006": {
        "omni_secret_metadata",
        "omni_secret_access_events",
        "omni_break_glass_overrides",
        "omni_break_glass_nonces",
        "omni_rotation_previews",
        "omni_replicas",
        "omni_refresh_requests",
        "omni_refresh_results",
        "omni_secret_signals",
    },
}
TABLES_AT["0005"] = TABLES_AT["0004"]  # columns and a CHECK constraint, no new table
TABLES_AT["0007"] = TABLES_AT["0006"] | {"omni_commit_journal"}
TABLES_AT["0009"] = TABLES_AT["0007"]  # a column and an index, no new table


def tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names()) - {"omni_alembic_version"}
    finally:
        engine.dispose()


class TestMigrations:
    def test_each_revision_upgrades_and_downgrades_one_step(self, empty_database_url: str) -> None:
        """Every revision adds its tables going up and removes exactly them going down."""
        url = empty_database_url
        for revision in REVISIONS:
            migrate.upgrade(url, revision)
            assert migrate.current(url) == revision
            assert tables(url) == TABLES_AT[revision]
        for previous in reversed([None, *REVISIONS[:-1]]):
            migrate.downgrade(url, previous or "base")
            assert migrate.current(url) == previous
            assert tables(url) == (TABLES_AT[previous] if previous else set())

    def test_current_reads_what_alembic_reads(self, empty_database_url: str) -> None:
        """current() reads the version table without Alembic (serve does not import it): at
        base, at each revision and back at base it says what Alembic's own reader says."""
        url = empty_database_url

        def alembic_says() -> str | None:
            engine = create_engine(sync_url(url), poolclass=pool.NullPool)
            try:
                with engine.connect() as connection:
                    context = MigrationContext.configure(
                        connection, opts={"version_table": migrate.VERSION_TABLE}
                    )
                    return context.get_current_revision()
            finally:
                engine.dispose()

        assert migrate.current(url) is None
        assert alembic_says() is None
        for revision in REVISIONS:
            migrate.upgrade(url, revision)
            assert migrate.current(url) == alembic_says() == revision
        migrate.downgrade(url, "base")
        assert migrate.current(url) is None
        assert alembic_says() is None

    def test_current_refuses_a_version_table_with_two_heads(self, empty_database_url: str) -> None:
        url = empty_database_url
        migrate.upgrade(url)
        engine = create_engine(sync_url(url), poolclass=pool.NullPool)
        try:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO omni_alembic_version VALUES ('0001')"))
        finally:
            engine.dispose()
        with pytest.raises(InvalidInput, match="more than one head"):
            migrate.current(url)

    def test_round_trip_head_base_head(self, empty_database_url: str) -> None:
        """upgrade head, downgrade base, upgrade head again leaves the full schema."""
        url = empty_database_url
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        assert migrate.current(url) is None
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head() == "0009"
        assert tables(url) == TABLES_AT["0009"]

    def test_migrated_schema_matches_the_table_definitions(self, database_url: str) -> None:
        """Autogenerate finds no difference between the migrations and tables.py."""
        engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"compare_type": True, "version_table": migrate.VERSION_TABLE}
                )
                diff = compare_metadata(context, metadata)
        finally:
            engine.dispose()
        assert diff == []

    def test_alembic_command_upgrade_head_then_downgrade_base(
        self, empty_database_url: str
    ) -> None:
        """The plain `alembic` command with the repository's alembic.ini runs clean both ways."""
        env = {**os.environ, "OMNI_DATABASE_URL": empty_database_url}
        for args in (["upgrade", "head"], ["downgrade", "base"]):
            proc = subprocess.run(
                [ALEMBIC, "-c", str(REPO / "alembic.ini"), *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
        assert tables(empty_database_url) == set()
        assert migrate.current(empty_database_url) is None

    def test_unknown_revision_is_invalid_input(self, empty_database_url: str) -> None:
        """An unknown revision id is refused as bad input, naming it."""
        from omni_secrets.domain.errors import InvalidInput

        with pytest.raises(InvalidInput, match="nope"):
            migrate.upgrade(empty_database_url, "nope")
