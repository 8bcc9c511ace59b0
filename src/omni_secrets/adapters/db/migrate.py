"""Run the packaged Alembic migrations programmatically (``omni-secrets db …``, ``dev``, tests).

Alembic runs synchronously on the matching sync driver (pysqlite or psycopg 3); call these
functions from synchronous code, or through ``asyncio.to_thread`` inside an event loop. The
migrations live in ``migrations/`` inside the package so an installed service can migrate; the
version table is ``omni_alembic_version``.

Revisions, in order: ``0001`` secret metadata, ``0002`` audit events (append-only triggers),
``0003`` break-glass overrides + used nonces, ``0004`` rotation previews, ``0005`` integrity
(audit ``key_id``, override and pin MACs, the 1800 s override window CHECK).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine, pool

from omni_secrets.adapters.db.engine import DEFAULT_SQLITE_BUSY_TIMEOUT_SECONDS, is_sqlite, sync_url
from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.domain.errors import InvalidInput

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "omni_alembic_version"
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"


def alembic_config(url: str) -> Config:
    """An Alembic :class:`Config` for the packaged migrations, bound to ``url``.

    The URL travels in ``config.attributes`` (not the ini options), so a ``%`` in a password
    needs no escaping.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.attributes["url"] = url
    return config


@contextmanager
def _alembic_errors(doing: str) -> Iterator[None]:
    with translate_db_errors(doing=doing):
        try:
            yield
        except CommandError as exc:
            # Unknown or ambiguous revision ids, a downgrade target above the current one, …
            raise InvalidInput(f"{doing} refused: {exc}") from exc


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest).

    Raises:
        ValueError: ``url`` is not a supported database URL.
        InvalidInput: ``revision`` is unknown.
        DatabaseUnavailable: the database cannot be reached.
    """
    sync_url(url)  # validate before Alembic prints anything
    with _alembic_errors("database upgrade"):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (``base`` removes every table).

    .. warning:: Downgrading below ``0002`` drops the audit trail, below ``0003`` every
       break-glass override and used nonce. Take a backup first.

    Raises:
        ValueError: ``url`` is not a supported database URL.
        InvalidInput: ``revision`` is unknown or not below the current revision.
        DatabaseUnavailable: the database cannot be reached.
    """
    sync_url(url)
    with _alembic_errors("database downgrade"):
        command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated.

    Raises:
        ValueError: ``url`` is not a supported database URL.
        DatabaseUnavailable: the database cannot be reached.
    """
    connect_args = {"timeout": DEFAULT_SQLITE_BUSY_TIMEOUT_SECONDS} if is_sqlite(url) else {}
    engine = create_engine(sync_url(url), poolclass=pool.NullPool, connect_args=connect_args)
    try:
        with _alembic_errors("database revision read"), engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision id shipped with this package."""
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations are packaged")
    return revision
