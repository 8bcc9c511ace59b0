"""Run the packaged Alembic migrations programmatically (``omni-secrets db …``, ``dev``, tests).

Alembic runs synchronously on the matching sync driver (pysqlite or psycopg 3); call these
functions from synchronous code, or through ``asyncio.to_thread`` inside an event loop. The
migrations live in ``migrations/`` inside the package so an installed service can migrate; the
version table is ``omni_alembic_version``.

Revisions, in order: ``0001`` secret metadata, ``0002`` audit events (append-only triggers),
``0003`` break-glass overrides + used nonces, ``0004`` rotation previews, ``0005`` integrity
(audit ``key_id``, override and pin MACs, the 1800 s override window CHECK).

Alembic itself (about 50 ms and 7 MB of imports) loads only in the functions that migrate or read
the scripts (:func:`upgrade`, :func:`downgrade`, :func:`head`): :func:`current` reads the version
table with SQLAlchemy alone, so ``serve``, which only checks that the database was migrated,
never imports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import column, create_engine, inspect, pool, select, table

from omni_secrets.adapters.db.engine import DEFAULT_SQLITE_BUSY_TIMEOUT_SECONDS, is_sqlite, sync_url
from omni_secrets.adapters.db.errors import translate_db_errors
from omni_secrets.domain.errors import InvalidInput

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "omni_alembic_version"
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"


def alembic_config(url: str) -> Config:
    """An Alembic :class:`Config` for the packaged migrations, bound to ``url``.

    The URL travels in ``config.attributes`` (not the ini options), so a ``%`` in a password
    needs no escaping.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.attributes["url"] = url
    return config


@contextmanager
def _alembic_errors(doing: str) -> Iterator[None]:
    from alembic.util.exc import CommandError

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
    from alembic import command

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
    from alembic import command

    sync_url(url)
    with _alembic_errors("database downgrade"):
        command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when it was never migrated.

    Raises:
        ValueError: ``url`` is not a supported database URL.
        DatabaseUnavailable: the database cannot be reached.
    """
    # What Alembic's MigrationContext.get_current_revision() reads (no version table: None; one
    # row: its revision; more than one: refused), without importing Alembic.
    connect_args = {"timeout": DEFAULT_SQLITE_BUSY_TIMEOUT_SECONDS} if is_sqlite(url) else {}
    engine = create_engine(sync_url(url), poolclass=pool.NullPool, connect_args=connect_args)
    doing = "database revision read"
    try:
        with translate_db_errors(doing=doing), engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            version_table = table(VERSION_TABLE, column("version_num"))
            heads = [str(v) for v in connection.scalars(select(version_table.c.version_num))]
    finally:
        engine.dispose()
    if len(heads) > 1:
        raise InvalidInput(
            f"{doing} refused: version table {VERSION_TABLE!r} has more than one head present"
        )
    return heads[0] if heads else None


def head() -> str:
    """The newest revision id shipped with this package."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations are packaged")
    return revision
