"""PostgreSQL roles: the least privileges ``serve`` needs, and whether it runs as the table owner.

Two roles (see ``docs/runbooks/integrity.md``): the **owner** runs the migrations (``db upgrade``,
``db seed``, ``db grants --apply``) and owns every table; the **runtime** role runs ``serve`` and
gets only what :data:`RUNTIME_PRIVILEGES` lists. On the audit table that is SELECT and INSERT:
its triggers refuse UPDATE/DELETE/TRUNCATE, but an owner could disable them — a non-owner cannot,
and cannot be granted UPDATE, DELETE or TRUNCATE there by these statements.

Synchronous (psycopg through SQLAlchemy's sync engine): used by CLI commands before any event
loop runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sqlalchemy import create_engine, pool, text

from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.errors import translate_db_errors

AUDIT_TABLE = "omni_secret_access_events"

RUNTIME_PRIVILEGES: Mapping[str, tuple[str, ...]] = {
    # Pins (first fetch, rotation commit), rotation locks, the break-glass window.
    "omni_secret_metadata": ("SELECT", "UPDATE"),
    # Append-only: rows are inserted (COPY needs INSERT only) and read for verification.
    AUDIT_TABLE: ("SELECT", "INSERT"),
    # Activation inserts; revoke/expiry update ended_at.
    "omni_break_glass_overrides": ("SELECT", "INSERT", "UPDATE"),
    # The used-nonce register: insert-only, kept for ever.
    "omni_break_glass_nonces": ("SELECT", "INSERT"),
    # Previews are stored, then committed or cancelled.
    "omni_rotation_previews": ("SELECT", "INSERT", "UPDATE"),
    # Section 12: heartbeats upsert, departures and the retention sweep delete.
    "omni_replicas": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    # Cluster refresh requests and per-replica outcomes (upserted); old ones are swept.
    "omni_refresh_requests": ("SELECT", "INSERT", "DELETE"),
    "omni_refresh_results": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    # GSM event signals (revocations, candidates), one upserted row per type.
    "omni_secret_signals": ("SELECT", "INSERT", "UPDATE"),
    # Section 15: commit journal entries are written, claimed and closed, never deleted.
    "omni_commit_journal": ("SELECT", "INSERT", "UPDATE"),
    # Read-only: which schema revision the database is at.
    "omni_alembic_version": ("SELECT",),
}
"""Exactly what ``serve`` does to each table (advisory locks and LISTEN/NOTIFY need no grant)."""

_ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


def quote_role(role: str) -> str:
    """The role as a quoted SQL identifier.

    Raises:
        ValueError: not a plain role name (letters, digits, ``_``, ``$``, ``-``; <= 63 chars).
    """
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"{role!r} is not a plain PostgreSQL role name")
    return f'"{role}"'


def grant_statements(role: str, tables: Sequence[str] | None = None) -> list[str]:
    """The statements giving ``role`` exactly :data:`RUNTIME_PRIVILEGES` (idempotent).

    Each table's privileges are first revoked, then granted, so re-running converges.

    Args:
        role: the runtime role.
        tables: only these tables (those that exist); every known table when None.

    Raises:
        ValueError: ``role`` is not a plain role name.
    """
    quoted = quote_role(role)
    statements = [f"GRANT USAGE ON SCHEMA public TO {quoted}"]
    for table, privileges in RUNTIME_PRIVILEGES.items():
        if tables is not None and table not in tables:
            continue
        statements.append(f"REVOKE ALL ON TABLE {table} FROM {quoted}")
        statements.append(f"GRANT {', '.join(privileges)} ON TABLE {table} TO {quoted}")
    return statements


def existing_tables(url: str) -> list[str]:
    """The known tables that exist in ``url``'s public schema."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with translate_db_errors(doing="catalog read"), engine.connect() as conn:
            rows = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            present = {str(r[0]) for r in rows}
    finally:
        engine.dispose()
    return [t for t in RUNTIME_PRIVILEGES if t in present]


def role_exists(url: str, role: str) -> bool:
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with translate_db_errors(doing="role lookup"), engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            return found.first() is not None
    finally:
        engine.dispose()


def audit_table_owner(url: str) -> str | None:
    """The role owning the audit table (None when it does not exist)."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with translate_db_errors(doing="catalog read"), engine.connect() as conn:
            owner = conn.execute(
                text(
                    "SELECT tableowner FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename = :t"
                ),
                {"t": AUDIT_TABLE},
            ).scalar()
            return None if owner is None else str(owner)
    finally:
        engine.dispose()


def apply(url: str, statements: Sequence[str]) -> None:
    """Run ``statements`` in one transaction (all or nothing)."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with translate_db_errors(doing="grants"), engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def runs_as_audit_owner(url: str) -> tuple[str, bool]:
    """``(current_user, True)`` when the connecting role owns the audit table or is superuser.

    Either can disable the append-only triggers and rewrite history; ``serve`` in production
    refuses that unless ``OMNI_ALLOW_TABLE_OWNER=true``.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with translate_db_errors(doing="role check"), engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT current_user, "
                    "COALESCE((SELECT tableowner = current_user FROM pg_tables "
                    "          WHERE schemaname = 'public' AND tablename = :t), false) "
                    "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
                ),
                {"t": AUDIT_TABLE},
            ).one()
            return str(row[0]), bool(row[1])
    finally:
        engine.dispose()
