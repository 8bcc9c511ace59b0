"""Database URL rules and the vendor-error translation of the SQL adapter (no I/O)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from omni_secrets.adapters.db.engine import async_url, create_engine, redacted, sync_url
from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.domain.errors import AuditUnavailable, DatabaseUnavailable


class TestUrls:
    @pytest.mark.parametrize(
        ("given", "async_driver", "sync_driver"),
        [
            ("sqlite:///./omni-secrets.db", "sqlite+aiosqlite", "sqlite"),
            ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite", "sqlite"),
            ("postgresql://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
            ("postgresql+psycopg://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
            ("postgres://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ],
    )
    def test_drivers(self, given: str, async_driver: str, sync_driver: str) -> None:
        """Accepted forms map to aiosqlite/psycopg for the engine and a sync driver for Alembic."""
        assert async_url(given).drivername == async_driver
        assert sync_url(given).drivername == sync_driver
        assert async_url(given).database == sync_url(given).database

    @pytest.mark.parametrize("given", ["mysql://u@h/db", "not a url", "postgresql+asyncpg://h/db"])
    def test_unsupported_urls_are_refused(self, given: str) -> None:
        """Other databases and garbage are a ValueError naming what is accepted."""
        with pytest.raises(ValueError, match="sqlite:///path"):
            create_engine(given)

    def test_redacted_hides_the_password(self) -> None:
        """Messages show the URL without its password."""
        shown = redacted("postgresql+psycopg://ops:fake-db-pass@db:5432/omni")
        assert "fake-db-pass" not in shown
        assert "ops@db:5432/omni" in shown.replace(":***", "")


class TestTranslateDbErrors:
    @pytest.mark.parametrize(
        "error",
        [
            sa_exc.OperationalError("SELECT 1", {}, Exception("connection refused")),
            sa_exc.InterfaceError("SELECT 1", {}, Exception("connection closed")),
            sa_exc.TimeoutError("QueuePool limit reached"),
            ConnectionRefusedError("refused"),
        ],
        ids=["operational", "interface", "pool-timeout", "os-error"],
    )
    def test_operational_failures_become_unavailable(self, error: Exception) -> None:
        """Every 'database not there' failure becomes the requested Unavailable error."""
        with pytest.raises(DatabaseUnavailable) as info, translate_db_errors(doing="read"):
            raise error
        assert info.value.__cause__ is error
        with pytest.raises(AuditUnavailable), translate_db_errors(AuditUnavailable):
            raise error

    def test_bugs_pass_through(self) -> None:
        """Integrity and programming errors are bugs and are not disguised as outages."""
        error = sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
        with pytest.raises(sa_exc.IntegrityError), translate_db_errors():
            raise error

    def test_message_names_the_operation_not_the_sql(self) -> None:
        """The message says what failed without SQL or parameters."""
        error = sa_exc.OperationalError("SELECT secret", {"p": "fake-param"}, Exception("x"))
        with pytest.raises(DatabaseUnavailable) as info, translate_db_errors(doing="commit"):
            raise error
        assert info.value.message == "commit failed: the database is unreachable or busy"
