"""A Google ID token as the CLI's bearer token (contract section 14).

``--id-token-audience AUD`` or else ``OMNI_ID_TOKEN_AUDIENCE``: a Google-signed ID token for
audience ``AUD``, fetched with Application Default Credentials (google-auth): a service account
key or an impersonated service account in ``GOOGLE_APPLICATION_CREDENTIALS``, or the metadata
server on GKE (Workload Identity) and GCE. Where it sits among the other ways to give a token is
decided in one place, :func:`omni_secrets.cli._target.resolve_token`.
"""

from __future__ import annotations

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
