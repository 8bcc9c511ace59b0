"""``omni-secrets doctor``: check a deployment from where it runs, without serving.

The operator's first command on a new deployment and the migration Job's last step (contract
section 16; anchor: ``vault operator diagnose``). One line per check, ``ok|warn|fail  <check>
<detail>  [fix: …]``; ``--json`` prints ``{"checks": [{"name", "status", "detail", "fix"}],
"ok"}``. Exit 0 with no fail, 1 with any, 3 when it cannot run (the configuration cannot be
loaded). The probes live in ``bootstrap/doctor.py``.
"""

from __future__ import annotations

import json

import typer

from omni_secrets.cli._common import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    fail,
    quiet_library_logs,
)
from omni_secrets.service.doctor import GROUPS

_SKIP_HELP = "Leave out a check group (repeatable): " + ", ".join(GROUPS) + "."


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
    skip: list[str] = typer.Option([], "--skip", metavar="GROUP", help=_SKIP_HELP),
) -> None:
    """Check the configuration, database, GSM, Pub/Sub, JWKS and keys without serving.

    Usage: omni-secrets doctor [--json] [--skip GROUP]...

    Reads the same environment as serve. Checks, in order: every rule of the startup guard;
    the database (reachable, migrated, seeded, not served by the table owner in production);
    GSM (each catalog secret readable at its `current` alias, the runtime's permissions by
    TestIamPermissions where the endpoint answers it, topics and rotation schedule set: warn
    if not); the Pub/Sub subscription and the JWKS when configured; the break-glass key pair;
    the integrity key against the audit head. Each check takes at most 5 s. One line per
    check: `ok|warn|fail  CHECK  DETAIL  [fix: ...]`. --json prints {"checks": [{"name",
    "status", "detail", "fix"}], "ok"}. Exit 0 when nothing failed (warnings included), 1
    when a check failed, 3 when doctor cannot run (the configuration cannot be loaded).
    Nothing is written; a missing SQLite file is reported, never created.
    """
    import asyncio

    from omni_secrets.config import load_settings
    from omni_secrets.domain.errors import ConfigurationRejected

    unknown = sorted(set(skip) - set(GROUPS))
    if unknown:
        fail(
            f"--skip {', '.join(unknown)}: not a check group (one of {', '.join(GROUPS)})",
            code=EXIT_USAGE,
        )
    quiet_library_logs()
    try:
        settings = load_settings()
    except ConfigurationRejected as exc:
        fail(f"doctor cannot run: {exc.message}", code=EXIT_UNAVAILABLE)
    from omni_secrets.bootstrap.doctor import diagnose

    report = asyncio.run(diagnose(settings, skip=frozenset(skip)))
    if as_json:
        typer.echo(json.dumps(report.document(), indent=2))
    else:
        for check in report.checks:
            typer.echo(check.line())
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
