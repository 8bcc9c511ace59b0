"""`bootstrap/database.py`: the CLI reaches the database `serve` uses, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_secrets.adapters import integrity_keys
from omni_secrets.bootstrap import database
from omni_secrets.domain.integrity import IntegrityKeyring


class TestUrls:
    def test_sqlite_file_is_the_path_as_written(self) -> None:
        """The file of an SQLite URL keeps its spelling (messages quote it); memory has none."""
        assert database.sqlite_file("sqlite:///./omni-secrets.db") == "./omni-secrets.db"
        assert database.sqlite_file("sqlite:///:memory:") is None
        assert database.sqlite_file("postgresql+psycopg://u@h/db") is None

    def test_an_unsupported_url_is_refused_without_its_password(self) -> None:
        """check_database_url raises ValueError and never quotes the password."""
        with pytest.raises(ValueError, match="unsupported database URL") as raised:
            database.check_database_url("mysql://user:fake-password@h/db")
        assert "fake-password" not in str(raised.value)


class TestUnitsOfWork:
    async def test_open_database_reads_the_migrated_schema(self, database_url: str) -> None:
        """open_database gives units of work over the migrated (empty) tables."""
        async with database.open_database(database_url) as uow_factory, uow_factory() as uow:
            assert list(await uow.metadata.list_all()) == []

    async def test_the_sql_unit_of_work_offers_pin_maintenance(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """open_sql_unit_of_work is the adapter's own unit of work (db sign-pins signs with it)."""
        key = tmp_path / "integrity.key"
        database.create_integrity_key_file(key)
        keyring = integrity_keys.load_keyring([str(key)])
        assert isinstance(keyring, IntegrityKeyring)
        async with database.open_sql_unit_of_work(database_url, keyring=keyring) as uow:
            assert list(await uow.metadata.sign_pins()) == []


class TestSchema:
    def test_the_revision_is_the_head(self, database_url: str) -> None:
        """The test databases are migrated to the newest revision this version ships."""
        assert database.schema_revision(database_url) == database.head_revision()
