"""``omni-secrets serve``: the production entry point."""

from __future__ import annotations

import gc
import socket
from typing import TYPE_CHECKING

import typer

from omni_secrets.cli._common import EXIT_UNAVAILABLE, EXIT_USAGE, fail

if TYPE_CHECKING:
    # Annotations only: config (pydantic-settings) loads when `serve` runs, not for `--help`.
    from omni_secrets.config import Settings


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
    OMNI_AUTH_POLICY_FILE, and an integrity key file (OMNI_INTEGRITY_KEY_FILE, required in
    production) that is missing, unreadable or shorter than 32 bytes. In production it also
    refuses to run as the owner of the audit table (or a superuser: either can disable its
    append-only triggers) unless OMNI_ALLOW_TABLE_OWNER=true; run `omni-secrets db grants --role
    ROLE --apply` as the owner and serve as ROLE. So does a database that answers but was never
    migrated. SIGHUP reloads the policy file. Does not run database migrations (use
    `omni-secrets db upgrade`). The port is bound before anything else is touched (the database,
    GSM, the replica registry): a port in use exits 3 at once.
    """
    # Start-up creates ~160k objects that live as long as the process (modules, the app and its
    # services); the cyclic collector would rescan them all on the way (three full passes, about
    # 0.15 s of a 0.9 s start). Paused here, it runs once in serve_app before listening.
    gc.disable()
    # A port in use exits 3 before the imports and checks below (a second or more on a busy
    # node): a probe, bound and closed at once; the listener itself is bound further down.
    _probe_port(host, port)
    from omni_secrets.api.auth_policy import AuthPolicySource
    from omni_secrets.bootstrap import load_break_glass_key_pair
    from omni_secrets.bootstrap.database import load_integrity_keyring
    from omni_secrets.cli._serving import serve_app
    from omni_secrets.config import load_checked_settings

    settings = load_checked_settings()
    # A mismatched or unreadable break-glass key pair must stop us before anything listens.
    load_break_glass_key_pair(settings)
    # So must a missing, unreadable or short integrity key.
    load_integrity_keyring(settings)
    # So must an auth policy file that cannot be read or names an unknown scope.
    AuthPolicySource(settings.auth_policy_file)
    # Contract section 18, start in order: bind first, then the database, hydration, the
    # registry and the subscriptions (a busy port must not have touched any of them).
    listener = _bind(host, port)
    _require_migrated(settings.database_url)
    _refuse_table_owner(settings)
    serve_app(settings, host=host, port=port, sock=listener)


def _probe_port(host: str, port: int) -> None:
    """Exit 3 with one line when ``host:port`` cannot be bound (nothing listens here: the socket
    is closed at once, so a bad configuration still stops ``serve`` before it listens)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code=EXIT_UNAVAILABLE)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, or exit 3 with one line when the port cannot be bound."""
    from omni_secrets.cli._serving import bind_listener

    try:
        return bind_listener(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code=EXIT_UNAVAILABLE)


def _require_migrated(url: str) -> None:
    """Exit with one line when the database was never migrated (serve does not migrate).

    An unreachable database does not stop startup: the service reports it in ``/readyz`` and
    heals when it returns. A database that answers but has no schema would only ever fail.
    """
    from omni_secrets.bootstrap.database import redacted, schema_revision
    from omni_secrets.domain.errors import DatabaseUnavailable

    try:
        revision = schema_revision(url)
    except DatabaseUnavailable:
        return
    if revision is None:
        fail(
            f"database {redacted(url)} has never been migrated; run 'omni-secrets db upgrade' "
            "(and 'omni-secrets db seed') before 'serve', which does not migrate",
            code=EXIT_USAGE,
        )


def _refuse_table_owner(settings: Settings) -> None:
    """Production: exit with one line when the runtime role owns the audit table."""
    import structlog

    from omni_secrets.bootstrap.database import is_sqlite, runs_as_audit_owner
    from omni_secrets.config import Environment
    from omni_secrets.domain.errors import DatabaseUnavailable

    if settings.environment is not Environment.PRODUCTION or settings.allow_table_owner:
        return
    if is_sqlite(settings.database_url):
        return  # one embedded process; there is no other role
    try:
        user, owner = runs_as_audit_owner(settings.database_url)
    except DatabaseUnavailable:
        # serve starts with the database down (status from memory): it cannot check now.
        structlog.get_logger("omni_secrets.serve").warning(
            "serve.role_unchecked", reason="database unreachable at startup"
        )
        return
    if owner:
        fail(
            f"OMNI_ENVIRONMENT='production' refuses to serve as database role {user!r}, which "
            "owns omni_secret_access_events (or is superuser) and could rewrite the audit "
            "trail: serve as a runtime role (omni-secrets db grants --role ROLE --apply) or "
            "set OMNI_ALLOW_TABLE_OWNER=true",
            code=EXIT_USAGE,
        )
