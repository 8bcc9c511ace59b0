"""Alembic environment: runs the migrations against one database, synchronously.

The URL comes from ``config.attributes["url"]`` (set by :mod:`omni_secrets.adapters.db.migrate`,
the way the service and ``omni-secrets db`` run migrations), else from ``sqlalchemy.url`` in an
ini file, else from ``OMNI_DATABASE_URL`` (for the plain ``alembic`` command in a checkout).
Async URLs are mapped to their synchronous drivers. SQLite migrations use batch mode, because
SQLite's ALTER TABLE cannot change constraints in place.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from omni_secrets.adapters.db.engine import is_sqlite, sync_url
from omni_secrets.adapters.db.tables import metadata

VERSION_TABLE = "omni_alembic_version"

config = context.config

if config.config_file_name is not None:
    # Only the plain `alembic` command has an ini file; the service configures its own logging.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("OMNI_DATABASE_URL")
    )
    if not url:
        raise RuntimeError("no database URL: set OMNI_DATABASE_URL")
    return str(url)


def run_offline() -> None:
    url = _url()
    context.configure(
        url=sync_url(url),
        target_metadata=metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
        render_as_batch=is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = _url()
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table=VERSION_TABLE,
                render_as_batch=is_sqlite(url),
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
