"""``omni-secrets serve``: the production entry point."""

from __future__ import annotations

import typer

from omni_secrets.cli._common import EXIT_USAGE, fail
from omni_secrets.config import load_checked_settings


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, min=1, max=65535, help="TCP port to listen on."),
) -> None:
    """Serve the API. Configuration comes from the environment only (README, Configuration).

    The environment guard runs first: a configuration that breaks a startup rule exits non-zero
    with one line naming the variables and values at fault, before anything listens; so does a
    break-glass key pair that does not match or cannot be read, an invalid
    OMNI_AUTH_POLICY_FILE, and a database that answers but was never migrated. SIGHUP reloads
    the policy file. Does not run database migrations (use `omni-secrets db upgrade`).
    """
    from omni_secrets.api.auth_policy import AuthPolicySource
    from omni_secrets.bootstrap import load_break_glass_key_pair
    from omni_secrets.cli._serving import serve_app

    settings = load_checked_settings()
    # A mismatched or unreadable break-glass key pair must stop us before anything listens.
    load_break_glass_key_pair(settings)
    # So must an auth policy file that cannot be read or names an unknown scope.
    AuthPolicySource(settings.auth_policy_file)
    _require_migrated(settings.database_url)
    serve_app(settings, host=host, port=port)


def _require_migrated(url: str) -> None:
    """Exit with one line when the database was never migrated (serve does not migrate).

    An unreachable database does not stop startup: the service reports it in ``/readyz`` and
    heals when it returns. A database that answers but has no schema would only ever fail.
    """
    from omni_secrets.adapters.db import migrate
    from omni_secrets.adapters.db.engine import redacted
    from omni_secrets.domain.errors import DatabaseUnavailable

    try:
        revision = migrate.current(url)
    except DatabaseUnavailable:
        return
    if revision is None:
        fail(
            f"database {redacted(url)} has never been migrated; run 'omni-secrets db upgrade' "
            "(and 'omni-secrets db seed') before 'serve', which does not migrate",
            code=EXIT_USAGE,
        )
