"""Translate SQLAlchemy/driver failures into domain errors, in one place.

Only operational failures are translated (connection refused or lost, pool exhausted, SQLite
busy): they become :class:`~omni_secrets.domain.errors.DatabaseUnavailable` (or the error class
the caller names, e.g. ``AuditUnavailable`` for audit appends). Integrity and programming errors
are bugs in our SQL and propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from omni_secrets.domain.errors import DatabaseUnavailable, Unavailable

# Most specific first; the first match decides the message.
OPERATIONAL_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (sa_exc.TimeoutError, "no database connection free in the pool"),
    (sa_exc.OperationalError, "the database is unreachable or busy"),
    (sa_exc.InterfaceError, "the database connection failed"),
    (ConnectionError, "the database connection failed"),
)


@contextmanager
def translate_db_errors(
    error_class: type[Unavailable] = DatabaseUnavailable, *, doing: str = "database call"
) -> Iterator[None]:
    """Turn an operational database failure raised inside the block into ``error_class``.

    Args:
        error_class: the domain error to raise (constructed with a message only).
        doing: what was being done, for the message ("audit append", "commit", …).

    Raises:
        Unavailable: ``error_class``, chained to the original exception. The message names the
            kind of failure, never SQL parameters.
    """
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated or _is_operational(exc):
            raise error_class(f"{doing} failed: {_describe(exc)}") from exc
        raise
    except (sa_exc.TimeoutError, OSError) as exc:
        raise error_class(f"{doing} failed: {_describe(exc)}") from exc


def _is_operational(exc: Exception) -> bool:
    return any(isinstance(exc, kind) for kind, _ in OPERATIONAL_ERRORS)


def _describe(exc: BaseException) -> str:
    for kind, text in OPERATIONAL_ERRORS:
        if isinstance(exc, kind):
            return text
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "the database connection was lost"
    return "the database connection failed"
