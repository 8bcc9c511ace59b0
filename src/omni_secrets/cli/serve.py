"""``omni-secrets serve``: the production entry point."""

from __future__ import annotations

import typer

from omni_secrets.config import check_environment, load_settings


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, min=1, max=65535, help="TCP port to listen on."),
) -> None:
    """Serve the API. Configuration comes from the environment only (README, Configuration).

    The environment guard runs first: a configuration that breaks a startup rule exits non-zero
    with one line naming the variables and values at fault, before anything listens; so does a
    break-glass key pair that does not match or cannot be read, and an integrity key file
    (OMNI_INTEGRITY_KEY_FILE, required in production) that is missing, unreadable or shorter
    than 32 bytes. Does not run database
    migrations (use `omni-secrets db upgrade`).
    """
    from omni_secrets.adapters import integrity_keys
    from omni_secrets.bootstrap import load_break_glass_key_pair
    from omni_secrets.cli._serving import serve_app

    settings = load_settings()
    check_environment(settings)
    # A mismatched or unreadable break-glass key pair must stop us before anything listens.
    load_break_glass_key_pair(settings)
    # So must a missing, unreadable or short integrity key.
    integrity_keys.load_keyring(settings.integrity_key_files)
    serve_app(settings, host=host, port=port)
