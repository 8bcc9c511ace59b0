"""The bearer token of CLI commands that talk to the API: given, or a Google ID token.

One function, :func:`resolve_bearer_token`, decides where the token comes from:

1. ``--token TOKEN``;
2. ``--id-token-audience AUD`` or else ``OMNI_ID_TOKEN_AUDIENCE``: a Google-signed ID token for
   audience ``AUD``, fetched with Application Default Credentials (google-auth): a service
   account key or an impersonated service account in ``GOOGLE_APPLICATION_CREDENTIALS``, or the
   metadata server on GKE (Workload Identity) and GCE. Contract section 14.

Giving both flags is refused; with neither, one line names the ways to give a token.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from omni_secrets.cli._common import EXIT_UNAVAILABLE, EXIT_USAGE, fail

ID_TOKEN_AUDIENCE_VARIABLE = "OMNI_ID_TOKEN_AUDIENCE"  # noqa: S105 (a variable name)

IdTokenAudienceOption = Annotated[
    str | None,
    typer.Option(
        "--id-token-audience",
        metavar="AUD",
        help=(
            "Instead of --token: fetch a Google ID token for audience AUD with Application "
            f"Default Credentials (or set {ID_TOKEN_AUDIENCE_VARIABLE})."
        ),
        show_default=False,
    ),
]


def resolve_bearer_token(token: str | None, *, id_token_audience: str | None) -> str:
    """The bearer token to send (see the module docstring for the order).

    Exits 2 with one line when no token can be had from the arguments given, and 2 or 3 when
    a Google ID token cannot be fetched (no suitable credentials / the token endpoint failed).
    """
    if token is not None and id_token_audience is not None:
        fail("give either --token or --id-token-audience, not both", code=EXIT_USAGE)
    if token is not None:
        if not token.strip():
            fail("--token is empty", code=EXIT_USAGE)
        return token.strip()
    audience = id_token_audience or os.environ.get(ID_TOKEN_AUDIENCE_VARIABLE, "").strip()
    if audience:
        return fetch_google_id_token(audience)
    fail(
        "no bearer token: give --token TOKEN, or --id-token-audience AUD "
        f"(or {ID_TOKEN_AUDIENCE_VARIABLE}) to use a Google ID token",
        code=EXIT_USAGE,
    )


def fetch_google_id_token(audience: str) -> str:
    """A Google-signed ID token for ``audience`` from Application Default Credentials."""
    # Imported here: google-auth's transport pulls in requests, which only this path needs.
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.id_token

    try:
        token = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
            google.auth.transport.requests.Request(), audience
        )
    except google.auth.exceptions.DefaultCredentialsError:
        fail(
            f"cannot get a Google ID token for audience {audience!r}: no Application Default "
            "Credentials that can mint ID tokens (GOOGLE_APPLICATION_CREDENTIALS naming a "
            "service account key or an impersonated-service-account file, or the GKE/GCE "
            "metadata server)",
            code=EXIT_USAGE,
        )
    except google.auth.exceptions.GoogleAuthError as exc:
        fail(
            f"cannot get a Google ID token for audience {audience!r}: {_reason(exc)}",
            code=EXIT_UNAVAILABLE,
        )
    if not isinstance(token, str) or not token:
        fail(f"no Google ID token was returned for audience {audience!r}", code=EXIT_UNAVAILABLE)
    return token


def _reason(exc: Exception) -> str:
    # google-auth puts a short description first and the raw response second; show the first.
    first = exc.args[0] if exc.args else None
    if isinstance(first, str) and first.strip():
        return " ".join(first.split())[:200]
    return type(exc).__name__
