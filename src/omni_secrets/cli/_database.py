"""Which database the read-only CLI commands (``rotation check``, ``audit verify``) open.

They must never create what they are meant to inspect: an SQLite URL whose file does not exist
is a setup error (exit 3), not a fresh empty database. And on a developer's machine they find
``omni-secrets dev``'s database: when ``OMNI_DATABASE_URL`` is unset, the default
``./omni-secrets.db`` does not exist and ``./.omni-dev/omni-secrets.db`` does, that one is used
and a note on stderr says so (``source .omni-dev/env`` sets it explicitly).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from omni_secrets.cli._common import EXIT_UNAVAILABLE, fail
from omni_secrets.cli.db import database_url

if TYPE_CHECKING:
    # Annotations only: config (pydantic-settings) loads when a command runs, not for --help.
    from omni_secrets.config import Settings

DEV_DATABASE = Path(".omni-dev") / "omni-secrets.db"
DEV_INTEGRITY_KEY = Path(".omni-dev") / "integrity.key"
DATABASE_URL_ENV = "OMNI_DATABASE_URL"


def existing_database_url(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The database URL to read, checked to exist when it is SQLite; exit 3 when it does not."""
    from omni_secrets.bootstrap.database import sqlite_file

    env = os.environ if environ is None else environ
    url = database_url(settings)
    path = sqlite_file(url)
    if path is None or Path(path).exists():
        return url
    if not env.get(DATABASE_URL_ENV) and DEV_DATABASE.exists():
        typer.echo(
            f"note: {DATABASE_URL_ENV} is unset and {path} does not exist; using the dev "
            f"database {DEV_DATABASE} (source .omni-dev/env to make this explicit)",
            err=True,
        )
        return f"sqlite:///{DEV_DATABASE.resolve()}"
    fail(
        f"the SQLite database {path} does not exist (nothing was created): set "
        f"{DATABASE_URL_ENV}, `source .omni-dev/env` after `make run`, or run "
        "'omni-secrets db upgrade' and 'omni-secrets db seed' first",
        code=EXIT_UNAVAILABLE,
    )


def with_dev_integrity_key(settings: Settings, url: str) -> Settings:
    """``settings`` with ``omni-secrets dev``'s integrity key when ``url`` is its database.

    The dev database is keyed with ``.omni-dev/integrity.key``; when the database was found
    without ``source .omni-dev/env`` (see :func:`existing_database_url`), the key that signed it
    is found the same way, unless ``OMNI_INTEGRITY_KEY_FILE`` names one.
    """
    if settings.integrity_key_files or url != f"sqlite:///{DEV_DATABASE.resolve()}":
        return settings
    if not DEV_INTEGRITY_KEY.exists():
        return settings
    return settings.model_copy(update={"integrity_key_file": str(DEV_INTEGRITY_KEY.resolve())})
