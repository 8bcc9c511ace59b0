"""``omni-secrets db …``: migrations and the catalog seed against ``OMNI_DATABASE_URL``.

These commands read only ``OMNI_DATABASE_URL`` (default ``sqlite:///./omni-secrets.db``),
``GCP_PROJECT_ID``, ``OMNI_GSM_SECRET_PREFIX`` and ``OMNI_ROTATION_PERIOD_DAYS``; they do not run
the service's environment guard, so they work before the rest of the configuration exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail, load_settings
from omni_secrets.domain.clock import to_rfc3339

if TYPE_CHECKING:
    # Annotations only: the modules load when a command runs (`--help` stays cheap, see
    # tests/unit/test_cli_lazy_imports.py); config pulls in pydantic-settings.
    from omni_secrets.catalog_seed import SeedOutcome, SeedReport
    from omni_secrets.config import Settings
    from omni_secrets.domain.integrity import IntegrityKeyring
    from omni_secrets.domain.secret_store import SecretStore

db_app = typer.Typer(
    name="db",
    help="Database migrations and the catalog seed (OMNI_DATABASE_URL).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


def database_url(settings: Settings) -> str:
    """``OMNI_DATABASE_URL`` after checking it names a supported database (exit 2 otherwise)."""
    from omni_secrets.bootstrap.database import check_database_url

    try:
        check_database_url(settings.database_url)
    except ValueError as exc:
        fail(f"OMNI_DATABASE_URL: {exc}", code=EXIT_USAGE)
    return settings.database_url


def load_keyring_or_exit(settings: Settings) -> IntegrityKeyring | None:
    """The integrity keys of ``OMNI_INTEGRITY_KEY_FILE`` (None when unset outside production).

    Exits 2 with one line when a file is bad, or when ``production`` names none: rows written
    without the key would not be served there.
    """
    from omni_secrets.bootstrap.database import load_integrity_keyring
    from omni_secrets.config import Environment
    from omni_secrets.domain.errors import IntegrityKeyInvalid

    try:
        keyring = load_integrity_keyring(settings)
    except IntegrityKeyInvalid as exc:
        fail(exc.reason, code=EXIT_USAGE)
    if keyring is None and settings.environment is Environment.PRODUCTION:
        fail(
            "OMNI_ENVIRONMENT='production' requires OMNI_INTEGRITY_KEY_FILE: rows written "
            "without the integrity key would not be served",
            code=EXIT_USAGE,
        )
    return keyring


def require_schema_at_head(url: str, *, code: int = EXIT_FAILED) -> None:
    """Exit ``code`` (default 1) with a clear line unless the database is migrated to head."""
    from omni_secrets.bootstrap.database import head_revision, schema_revision

    at, head = schema_revision(url), head_revision()
    if at != head:
        fail(
            f"the database schema is at {at or 'base'}, this version needs {head}: "
            "run 'omni-secrets db upgrade' first",
            code=code,
        )


@db_app.command("upgrade")
def upgrade(
    revision: str = typer.Option("head", help="Target revision id (default: the newest)."),
) -> None:
    """Migrate the database at OMNI_DATABASE_URL up to REVISION (default head).

    Usage: omni-secrets db upgrade [--revision head]

    Safe to run repeatedly: a database already at the target is left alone. Creates the SQLite
    file when it does not exist. The service itself never migrates (`serve` expects a migrated
    database); run this before deploying a new version.
    """
    from omni_secrets.bootstrap.database import redacted, schema_revision, upgrade_schema

    url = database_url(load_settings())
    upgrade_schema(url, revision)
    typer.echo(f"database {redacted(url)} is at revision {_describe(schema_revision(url))}")


@db_app.command("downgrade")
def downgrade(
    revision: str = typer.Argument(..., help="Target revision id, or 'base' to remove everything."),
    force: bool = typer.Option(False, "--force", help="Required when OMNI_ENVIRONMENT=production."),
) -> None:
    """Migrate the database at OMNI_DATABASE_URL down to REVISION (a revision id, or base).

    Usage: omni-secrets db downgrade REVISION [--force]

    Safety: destructive. Going below 0005 drops the integrity MACs and keys of the audit chain,
    below 0004 rotation previews, below 0003 every break-glass override and the used-nonce
    register (old payloads could be replayed after a re-upgrade), below 0002 the whole audit
    trail; `base` drops every table. There is no dry run and no undo: take a backup first. With
    OMNI_ENVIRONMENT=production it refuses (exit 2) unless --force is given. The target must be
    below the current revision.
    """
    from omni_secrets.bootstrap.database import downgrade_schema, redacted, schema_revision
    from omni_secrets.config import Environment

    settings = load_settings()
    if settings.environment is Environment.PRODUCTION and not force:
        fail(
            "db downgrade destroys data; with OMNI_ENVIRONMENT=production it needs --force "
            "(take a backup first)",
            code=EXIT_USAGE,
        )
    url = database_url(settings)
    downgrade_schema(url, revision)
    typer.echo(f"database {redacted(url)} is at revision {_describe(schema_revision(url))}")


@db_app.command("current")
def current() -> None:
    """Print the revision the database at OMNI_DATABASE_URL is at (`base` when not migrated).

    Usage: omni-secrets db current

    Read-only. The newest revision is marked `(head)`.
    """
    from omni_secrets.bootstrap.database import schema_revision

    url = database_url(load_settings())
    typer.echo(_describe(schema_revision(url)))


def _describe(revision: str | None) -> str:
    from omni_secrets.bootstrap.database import head_revision

    if revision is None:
        return "base"
    return f"{revision} (head)" if revision == head_revision() else revision


@db_app.command("seed")
def seed() -> None:
    """Insert the catalog's missing rows into omni_secret_metadata (idempotent).

    Usage: omni-secrets db seed

    Needs GCP_PROJECT_ID and a database migrated to head. Existing rows are kept exactly as they
    are, so running it twice is safe. For each new row GSM is asked for the newest ENABLED
    version: it is pinned as the active version and its create time becomes lastRotatedAt. When
    GSM cannot be reached the row is seeded with lastRotatedAt = now and no pinned version (the
    service pins the newest ENABLED version on its first successful fetch), and the command says
    so. Each new row's rotation is due OMNI_ROTATION_PERIOD_DAYS (default 365) later.
    """
    import asyncio

    settings = load_settings()
    url = database_url(settings)
    if settings.gcp_project_id is None:
        fail(
            "GCP_PROJECT_ID is not set: db seed records the project holding each secret",
            code=EXIT_USAGE,
        )
    require_schema_at_head(url)
    report = asyncio.run(_seed_with_gsm(settings, url, settings.gcp_project_id))
    _print_report(report, gsm_consulted=True)


async def _seed_with_gsm(settings: Settings, url: str, project_id: str) -> SeedReport:
    from omni_secrets.bootstrap import build_secret_store

    store = build_secret_store(settings)
    try:
        return await _seed(settings, url, project_id, store=store)
    finally:
        closer = getattr(store, "aclose", None)
        if closer is not None:
            await closer()


async def _seed(
    settings: Settings, url: str, project_id: str, *, store: SecretStore | None
) -> SeedReport:
    from omni_secrets.bootstrap.database import open_database
    from omni_secrets.catalog_seed import seed_catalog
    from omni_secrets.domain.catalog import Catalog
    from omni_secrets.domain.clock import SystemClock

    keyring = load_keyring_or_exit(settings)
    clock = SystemClock()
    async with open_database(url, clock=clock, keyring=keyring) as uow_factory:
        return await seed_catalog(
            uow_factory,
            Catalog(settings.gsm_secret_prefix),
            project_id=project_id,
            store=store,
            clock=clock,
            rotation_period_days=settings.rotation_period_days,
        )


# Keyed by ``catalog_seed.GsmLookup`` values, so that the module (and the pydantic models it
# pulls in) loads only when a command seeds.
_LOOKUP_TEXT = {
    "pinned": "no current alias: pinned newest ENABLED GSM version",
    "current_alias": "pinned the version GSM's current alias names",
    "no_enabled_version": "no ENABLED GSM version: unpinned, rotated now",
    "unreachable": "GSM unreachable: unpinned, rotated now",
    "not_consulted": "GSM not consulted: unpinned, rotated now",
    "existing": "kept as it is",
}


def _print_report(report: SeedReport, *, gsm_consulted: bool) -> None:
    if not gsm_consulted:
        typer.echo(
            "GSM was not consulted: new rows have no pinned version and lastRotatedAt = now; "
            "the service pins the version GSM's current alias names on its first fetch."
        )
    for outcome in report.outcomes:
        typer.echo(_outcome_line(outcome))
    typer.echo(f"{report.inserted} inserted, {report.kept} kept unchanged")


def _outcome_line(outcome: SeedOutcome) -> str:
    action = "inserted" if outcome.inserted else "existing"
    how = _LOOKUP_TEXT[outcome.gsm.value]
    if outcome.detail:
        how = f"{how} ({outcome.detail})"
    return (
        f"{outcome.secret_type.value:<15} {action:<8} version={outcome.active_version or '-'} "
        f"lastRotatedAt={to_rfc3339(outcome.last_rotated_at)} "
        f"dueAt={to_rfc3339(outcome.rotation_due_at)}  {how}"
    )


@db_app.command("sign-pins")
def sign_pins(
    apply: bool = typer.Option(False, "--apply", help="Write the MACs (default: only list)."),
) -> None:
    """List (and with --apply sign) metadata pins whose integrity MAC is missing or wrong.

    Usage: omni-secrets db sign-pins [--apply]

    Needs OMNI_INTEGRITY_KEY_FILE. A pin (active_version, last_rotated_at, rotation_due_at)
    without a valid MAC is never served: its type fails closed with INTEGRITY_VIOLATION. That
    is expected once, after upgrading to schema 0005 (rows written before the key existed).
    Default is a dry run that prints each such row as it is. Safety: --apply vouches for those
    values — compare them with GSM and the last rotation_commit audit rows first; a forged pin
    signed here would be served.
    """
    import asyncio

    settings = load_settings()
    url = database_url(settings)
    keyring = load_keyring_or_exit(settings)
    if keyring is None:
        fail("OMNI_INTEGRITY_KEY_FILE is not set: there is nothing to sign with", code=EXIT_USAGE)
    require_schema_at_head(url)
    asyncio.run(_sign_pins(url, keyring, apply=apply))


async def _sign_pins(url: str, keyring: IntegrityKeyring, *, apply: bool) -> None:
    from omni_secrets.bootstrap.database import open_sql_unit_of_work

    async with open_sql_unit_of_work(url, keyring=keyring) as uow:
        rows = [r for r in await uow.metadata.list_all() if not r.pin_integrity.servable]
        for row in rows:
            typer.echo(
                f"{row.secret_type.value:<15} mac={row.pin_integrity.value:<8} "
                f"version={row.active_version or '-'} "
                f"lastRotatedAt={to_rfc3339(row.last_rotated_at)} "
                f"dueAt={to_rfc3339(row.rotation_due_at)}"
            )
        if not apply:
            typer.echo(f"{len(rows)} pin(s) unsigned or invalid; re-run with --apply to sign")
            return
        signed = await uow.metadata.sign_pins()
        await uow.commit()
    typer.echo(f"{len(signed)} pin(s) signed with integrity key {keyring.signing_key_id}")


@db_app.command("grants")
def grants(
    role: str = typer.Option(..., "--role", help="The runtime role that runs `serve`."),
    apply: bool = typer.Option(False, "--apply", help="Run the statements (default: print)."),
) -> None:
    """Print (and with --apply run) the GRANTs that let ROLE do exactly what `serve` needs.

    Usage: omni-secrets db grants --role ROLE [--apply]

    PostgreSQL only; run it as the owner of the tables (the migration role), after
    `db upgrade`. ROLE gets USAGE on the schema and, per table, only the privileges `serve`
    uses: SELECT/INSERT on the audit table (never UPDATE, DELETE or TRUNCATE), SELECT/UPDATE
    on metadata, SELECT/INSERT/UPDATE on overrides and previews, SELECT/INSERT on the nonce
    register. Each table's privileges are revoked first, so re-running converges. Default is a
    dry run that prints the SQL; --apply runs it in one transaction. ROLE must exist (CREATE
    ROLE ... LOGIN first) and must not own the tables.
    """
    from omni_secrets.bootstrap import database

    url = database_url(load_settings())
    if database.is_sqlite(url):
        fail("db grants is for PostgreSQL; SQLite has no roles", code=EXIT_USAGE)
    try:
        database.check_role_name(role)
    except ValueError as exc:
        fail(f"--role: {exc}", code=EXIT_USAGE)
    require_schema_at_head(url)
    statements = database.runtime_grants(url, role)
    if not apply:
        for statement in statements:
            typer.echo(f"{statement};")
        return
    if not database.role_exists(url, role):
        fail(f"role {role!r} does not exist: CREATE ROLE {role} LOGIN first", code=EXIT_USAGE)
    if database.audit_table_owner(url) == role:
        # Revoking the owner's own privileges would lock the migrations out; and serving as the
        # owner is exactly what the runtime role is meant to avoid.
        fail(f"role {role!r} owns the tables: --role names the runtime role", code=EXIT_USAGE)
    user, owner = database.runs_as_audit_owner(url)
    if not owner:
        fail(
            f"connected as {user!r}, which does not own the tables: run db grants as the "
            "migration (owner) role",
            code=EXIT_USAGE,
        )
    database.apply_grants(url, statements)
    typer.echo(f"granted {role!r} the runtime privileges ({len(statements)} statements)")
