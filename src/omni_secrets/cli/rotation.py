"""``omni-secrets rotation check``: a one-shot rotation monitor run against the database (cron).

Reads only ``OMNI_DATABASE_URL`` and the rotation settings (``OMNI_ROTATION_WARNING_DAYS``); it
needs neither GSM nor the API, and runs no environment guard beyond validating the settings.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from omni_secrets.cli._common import EXIT_OK, EXIT_UNAVAILABLE, fail, load_settings
from omni_secrets.cli._database import existing_database_url
from omni_secrets.cli.db import require_schema_at_head
from omni_secrets.domain.clock import to_rfc3339

if TYPE_CHECKING:
    # Annotations only: the pydantic domain models and the rotation domain load when `rotation
    # check` runs, so `--help` does not pay for them (tests/unit/test_cli_lazy_imports.py).
    from rich.console import Console

    from omni_secrets.domain.models import OmniSecretMetadata
    from omni_secrets.service.rotation.report import RotationReport

_STATUS_STYLE = {"ok": "green", "due_soon": "yellow", "overdue": "red"}
# The check's exit code for the most urgent status found (contract: 0 fine, 1 due soon, 2 overdue),
# keyed by RotationStatus values (a test holds that every member has one) so that the rotation
# domain need not load with the CLI.
ROTATION_CHECK_EXIT_CODES = {"ok": EXIT_OK, "due_soon": 1, "overdue": 2}
_PLAIN_WIDTH = 120

rotation_app = typer.Typer(
    name="rotation",
    help="Rotation: check (reads OMNI_DATABASE_URL), preview, commit, cancel (call the API).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(rotation_app, name="rotation")


@rotation_app.command("check")
def check(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Report every secret type's rotation status from the database, for cron.

    Usage: omni-secrets rotation check [--json]

    Read-only: sends no alert and writes no audit row (the service's in-process monitor does
    that). Prints type, group, last rotation, due date, status and days until due.

    Exit codes: 0 every type ok; 1 something is due within OMNI_ROTATION_WARNING_DAYS; 2
    something is overdue; 3 a setup error: the database cannot be reached, does not exist, is
    not migrated or not seeded (with a hint). Never creates a database: with OMNI_DATABASE_URL
    unset it finds `omni-secrets dev`'s .omni-dev/omni-secrets.db.

    --json prints {"checkedAt": "...", "warningDays": 30, "status": "ok", "exitCode": 0,
    "secrets": [{"secretType": "api_key", "group": "api_credentials", "lastRotatedAt": "...",
    "dueAt": "...", "status": "ok", "daysUntilDue": 364}], "groups": [...]}
    """
    import asyncio

    from omni_secrets.domain.catalog import Catalog
    from omni_secrets.domain.clock import SystemClock
    from omni_secrets.domain.errors import CatalogNotSeeded
    from omni_secrets.service.rotation.report import build_report

    settings = load_settings()
    url = existing_database_url(settings)
    require_schema_at_head(url, code=EXIT_UNAVAILABLE)
    catalog = Catalog(settings.gsm_secret_prefix)
    rows = asyncio.run(_read_metadata(url))
    report = build_report(
        catalog, rows, now=SystemClock().now(), warning_days=settings.rotation_warning_days
    )
    if report.missing:
        # A setup error, not a rotation state: exit 3, so cron can tell it from "due soon" (1).
        fail(CatalogNotSeeded([t.value for t in report.missing]).message, code=EXIT_UNAVAILABLE)
    if as_json:
        print(json.dumps(_as_json(report, settings.rotation_warning_days), indent=2))
    else:
        # Cron mails are not terminals: give the table room instead of Rich's 80 columns.
        from rich.console import Console

        _render(report, Console() if sys.stdout.isatty() else Console(width=_PLAIN_WIDTH))
    raise typer.Exit(ROTATION_CHECK_EXIT_CODES[report.worst.value])


async def _read_metadata(url: str) -> list[OmniSecretMetadata]:
    from omni_secrets.bootstrap.database import open_database

    async with open_database(url) as uow_factory, uow_factory() as uow:
        return list(await uow.metadata.list_all())


def _as_json(report: RotationReport, warning_days: int) -> dict[str, Any]:
    return {
        "checkedAt": to_rfc3339(report.checked_at),
        "warningDays": warning_days,
        "status": report.worst.value,
        "exitCode": ROTATION_CHECK_EXIT_CODES[report.worst.value],
        "secrets": [
            {
                "secretType": t.secret_type.value,
                "group": t.group.value,
                "lastRotatedAt": to_rfc3339(t.last_rotated_at),
                "dueAt": to_rfc3339(t.due_at),
                "status": t.status.value,
                "daysUntilDue": t.days_until_due,
            }
            for t in report.types
        ],
        "groups": [
            {
                "group": g.group.value,
                "dueAt": to_rfc3339(g.due_at),
                "status": g.status.value,
                "daysUntilDue": g.days_until_due,
            }
            for g in report.groups
        ],
    }


def _render(report: RotationReport, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"Rotation status at {_minutes(report.checked_at)}")
    for column in ("type", "group", "last rotated", "due", "status"):
        table.add_column(column)
    table.add_column("days", justify="right")
    for t in report.types:
        style = _STATUS_STYLE[t.status.value]
        table.add_row(
            t.secret_type.value,
            t.group.value,
            _minutes(t.last_rotated_at),
            _minutes(t.due_at),
            f"[{style}]{t.status.value}[/{style}]",
            str(t.days_until_due),
        )
    console.print(table)


def _minutes(moment: datetime) -> str:
    """``2026-11-25 10:00Z``: what an operator needs from a rotation date (JSON keeps it all)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
