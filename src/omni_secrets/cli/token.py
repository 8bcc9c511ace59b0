"""``omni-secrets token``: print an HS256 development token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._common import EXIT_USAGE, fail
from omni_secrets.domain.clock import SystemClock

_SCOPES = ", ".join(s.value for s in Scope)


def register(app: typer.Typer) -> None:
    app.command("token")(token)


def token(
    scope: list[str] = typer.Option(
        ..., "--scope", help=f"Scope to grant; repeatable. One of: {_SCOPES}."
    ),
    subject: str = typer.Option(
        "dev-operator", "--subject", help="The token's `sub` (audit actor)."
    ),
    ttl_seconds: int = typer.Option(3600, "--ttl-seconds", min=1, max=86_400, help="Lifetime."),
) -> None:
    """Print an HS256 token signed with OMNI_AUTH_HS256_SECRET, for development and tests.

    Uses OMNI_AUTH_AUDIENCE (default omni-secrets) and OMNI_AUTH_ISSUER when set. Refuses, with
    exit code 2, when OMNI_ENVIRONMENT=production (production verifies JWKS tokens only) or when
    no OMNI_AUTH_HS256_SECRET is set. The token is a credential: don't paste it into tickets.
    """
    # Here, not at the top: config pulls in pydantic-settings and api.subject the pydantic
    # domain models, which `--help` must not pay for.
    from omni_secrets.api.subject import SubjectRefused, checked_subject
    from omni_secrets.config import MIN_HS256_SECRET_BYTES, Environment, load_settings

    settings = load_settings()
    if settings.environment is Environment.PRODUCTION:
        fail("refusing to mint an HS256 token when OMNI_ENVIRONMENT=production", code=EXIT_USAGE)
    if settings.auth_hs256_secret is None:
        hint = (
            ": run `source .omni-dev/env` (written by omni-secrets dev) first"
            if Path(".omni-dev", "env").exists()
            else ""
        )
        fail(
            f"OMNI_AUTH_HS256_SECRET is not set: nothing to sign the token with{hint}",
            code=EXIT_USAGE,
        )
    known = {s.value for s in Scope}
    unknown = [s for s in scope if s not in known]
    if unknown:
        fail(f"unknown scope {unknown[0]!r}; known scopes: {_SCOPES}", code=EXIT_USAGE)
    if not subject.strip():
        fail("--subject must not be empty", code=EXIT_USAGE)
    secret = settings.auth_hs256_secret.get_secret_value()
    if len(secret.encode()) < MIN_HS256_SECRET_BYTES:
        fail(
            f"OMNI_AUTH_HS256_SECRET is shorter than {MIN_HS256_SECRET_BYTES} bytes; the service "
            "refuses it, so a token signed with it would be useless",
            code=EXIT_USAGE,
        )
    try:
        checked_subject(subject)
    except SubjectRefused as exc:
        fail(f"--subject: {exc} (the service would refuse the token)", code=EXIT_USAGE)
    from omni_secrets.api.auth import mint_hs256_token  # PyJWT: only when minting

    print(
        mint_hs256_token(
            secret=secret,
            scopes=scope,
            subject=subject,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
            now=SystemClock().now(),
            ttl=timedelta(seconds=ttl_seconds),
        )
    )
