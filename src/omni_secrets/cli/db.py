"""``omni-secrets db …``: migrations and the catalog seed against ``OMNI_DATABASE_URL``.

These commands read only ``OMNI_DATABASE_URL`` (default ``sqlite:///./omni-secrets.db``),
``GCP_PROJECT_ID``, ``OMNI_GSM_SECRET_PREFIX`` and ``OMNI_ROTATION_PERIOD_DAYS``; they do not run
the service's environment guard, so they work before the rest of the configuration exists.
"""

from __future__ import annotations

import asyncio

import typer

from omni_secrets.catalog_seed import GsmLookup, SeedOutcome, SeedReport, seed_catalog
from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
from omni_secrets.config import Settings, load_settings
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import SystemClock, to_rfc3339
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
    from omni_secrets.adapters.db.engine import sync_url

    try:
        sync_url(settings.database_url)
    except ValueError as exc:
        fail(f"OMNI_DATABASE_URL: {exc}", code=EXIT_USAGE)
    return settings.database_url


def require_schema_at_head(url: str, *, code: int = EXIT_FAILED) -> None:
    """Exit ``code`` (default 1) with a clear line unless the database is migrated to head."""
    from omni_secrets.adapters.db import migrate

    at, head = migrate.current(url), migrate.head()
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
    from omni_secrets.adapters.db import migrate
    from omni_secrets.adapters.db.engine import redacted

    url = database_url(load_settings())
    migrate.upgrade(url, revision)
    typer.echo(f"database {redacted(url)} is at revision {_describe(migrate.current(url))}")


@db_app.command("downgrade")
def downgrade(
    revision: str = typer.Argument(..., help="Target revision id, or 'base' to remove everything."),
) -> None:
    """Migrate the database at OMNI_DATABASE_URL down to REVISION (a revision id, or base).

    Usage: omni-secrets db downgrade REVISION

    Safety: destructive. Going below 0004 drops rotation previews, below 0003 every break-glass
    override and the used-nonce register (old payloads could be replayed after a re-upgrade),
    below 0002 the whole audit trail; `base` drops every table. There is no dry run and no undo:
    take a backup first. The target must be below the current revision.
    """
    from omni_secrets.adapters.db import migrate
    from omni_secrets.adapters.db.engine import redacted

    url = database_url(load_settings())
    migrate.downgrade(url, revision)
    typer.echo(f"database {redacted(url)} is at revision {_describe(migrate.current(url))}")


@db_app.command("current")
def current() -> None:
    """Print the revision the database at OMNI_DATABASE_URL is at (`base` when not migrated).

    Usage: omni-secrets db current

    Read-only. The newest revision is marked `(head)`.
    """
    from omni_secrets.adapters.db import migrate

    url = database_url(load_settings())
    typer.echo(_describe(migrate.current(url)))


def _describe(revision: str | None) -> str:
    from omni_secrets.adapters.db import migrate

    if revision is None:
        return "base"
    return f"{revision} (head)" if revision == migrate.head() else revision


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
    from omni_secrets.bootstrap import open_database

    clock = SystemClock()
    async with open_database(url, clock=clock) as uow_factory:
        return await seed_catalog(
            uow_factory,
            Catalog(settings.gsm_secret_prefix),
            project_id=project_id,
            store=store,
            clock=clock,
            rotation_period_days=settings.rotation_period_days,
        )


_LOOKUP_TEXT = {
    GsmLookup.PINNED: "pinned newest ENABLED GSM version",
    GsmLookup.NO_ENABLED_VERSION: "no ENABLED GSM version: unpinned, rotated now",
    GsmLookup.UNREACHABLE: "GSM unreachable: unpinned, rotated now",
    GsmLookup.NOT_CONSULTED: "GSM not consulted: unpinned, rotated now",
    GsmLookup.EXISTING: "kept as it is",
}


def _print_report(report: SeedReport, *, gsm_consulted: bool) -> None:
    if not gsm_consulted:
        typer.echo(
            "GSM was not consulted: new rows have no pinned version and lastRotatedAt = now; "
            "the service pins the newest ENABLED version on its first fetch."
        )
    for outcome in report.outcomes:
        typer.echo(_outcome_line(outcome))
    typer.echo(f"{report.inserted} inserted, {report.kept} kept unchanged")


def _outcome_line(outcome: SeedOutcome) -> str:
    action = "inserted" if outcome.inserted else "existing"
    how = _LOOKUP_TEXT[outcome.gsm]
    if outcome.detail:
        how = f"{how} ({outcome.detail})"
    return (
        f"{outcome.secret_type.value:<15} {action:<8} version={outcome.active_version or '-'} "
        f"lastRotatedAt={to_rfc3339(outcome.last_rotated_at)} "
        f"dueAt={to_rfc3339(outcome.rotation_due_at)}  {how}"
    )
