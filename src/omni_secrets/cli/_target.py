"""Which API a command talks to, and with which bearer token (contract section 11).

Every command that calls the HTTP API takes the same options (declared here once as ``Annotated``
aliases; ``cli/_api_options.py`` puts them on each command) and resolves them with
:func:`resolve_target`:

- the URL: ``--url``, else ``$OMNI_URL``;
- the token: ``--token``, ``--token-file F`` or ``--id-token-audience AUD`` (a Google ID token,
  :mod:`omni_secrets.cli._bearer`), else ``$OMNI_TOKEN``, else ``$OMNI_TOKEN_FILE``, else
  ``$OMNI_ID_TOKEN_AUDIENCE``, else ``$OMNI_TOKEN_<SCOPE>`` for the scope the command needs (see
  :func:`token_env_var`; the env file ``omni-secrets dev`` writes exports one per scope, so
  every command works after ``source .omni-dev/env``). A flag always beats the environment.

Token resolution lives in :func:`resolve_token` alone. A plain ``http://`` URL whose host is not
loopback is refused (exit 2) unless ``--insecure``: the bearer token would cross the network in
clear.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._bearer import ID_TOKEN_AUDIENCE_VARIABLE, fetch_google_id_token
from omni_secrets.cli._common import EXIT_USAGE, fail
from omni_secrets.cli.client._exceptions import without_user_info

URL_ENV = "OMNI_URL"
# Names of environment variables, not token values.
TOKEN_ENV = "OMNI_TOKEN"  # noqa: S105
TOKEN_FILE_ENV = "OMNI_TOKEN_FILE"  # noqa: S105
TOKEN_SCOPE_ENV_PREFIX = "OMNI_TOKEN_"  # noqa: S105

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        show_default=False,
        help="Base URL of the API, e.g. https://omni-secrets.internal [default: $OMNI_URL].",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        show_default=False,
        help="Bearer token. Visible in ps and shell history: prefer --token-file or "
        "$OMNI_TOKEN [default: $OMNI_TOKEN, $OMNI_TOKEN_FILE, then $OMNI_TOKEN_<SCOPE>].",
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        metavar="FILE",
        show_default=False,
        dir_okay=False,
        help="Read the bearer token from FILE (surrounding whitespace stripped).",
    ),
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Allow a plain http:// URL whose host is not loopback (the token travels in clear).",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout and nothing else."),
]


@dataclass(frozen=True, slots=True)
class ApiTarget:
    """The API's base URL and the bearer token to send it (never shown in ``repr``).

    ``token_source`` says where the token came from (``--token``, ``OMNI_TOKEN``,
    ``OMNI_TOKEN_FILE``, ``OMNI_TOKEN_<SCOPE>``, …), for the line a 401 or 403 prints.
    """

    url: str
    token: str = field(repr=False)
    token_source: str = ""


def token_env_var(scope: Scope) -> str:
    """The per-scope token variable: ``OMNI_TOKEN_`` + the scope upper-cased, non-alnum -> ``_``.

    ``omni-secrets:read`` -> ``OMNI_TOKEN_OMNI_SECRETS_READ``, ``omni-secrets:break-glass`` ->
    ``OMNI_TOKEN_OMNI_SECRETS_BREAK_GLASS``, ``apex-omni:read`` -> ``OMNI_TOKEN_APEX_OMNI_READ``.
    """
    return TOKEN_SCOPE_ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", scope.value.upper())


def resolve_target(
    *,
    url: str | None,
    token: str | None,
    token_file: Path | None,
    insecure: bool,
    scope: Scope,
    id_token_audience: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ApiTarget:
    """The URL and token a command uses, from its flags, else the environment; exit 2 if missing.

    Args:
        url: ``--url`` (None when not given).
        token: ``--token``.
        token_file: ``--token-file``.
        insecure: ``--insecure``: allow plain http to a host that is not loopback.
        scope: the scope the command needs (names the per-scope fallback variable).
        id_token_audience: ``--id-token-audience``.
        environ: the environment (default ``os.environ``).

    Returns:
        The target; the URL has no trailing slash.
    """
    env = os.environ if environ is None else environ
    base = (url if url is not None else env.get(URL_ENV, "")).strip()
    if not base:
        fail(f"no API URL: give --url URL or set {URL_ENV}", code=EXIT_USAGE)
    require_safe_url(base, insecure=insecure)
    value, source = resolve_token(
        token=token,
        token_file=token_file,
        id_token_audience=id_token_audience,
        scope=scope,
        environ=env,
    )
    return ApiTarget(url=base.rstrip("/"), token=value, token_source=source)


def resolve_token(
    *,
    token: str | None,
    token_file: Path | None,
    scope: Scope,
    environ: Mapping[str, str],
    id_token_audience: str | None = None,
) -> tuple[str, str]:
    """The bearer token and where it came from: a flag, else ``OMNI_TOKEN``, ``OMNI_TOKEN_FILE``,
    ``OMNI_ID_TOKEN_AUDIENCE``, then the per-scope variable.

    The source names the flag or variable; when a general variable won while the per-scope one
    is set too, it says so (the per-scope dev token was not used).

    Exits 2 with one line when two token flags are given, a token file cannot be read or is
    empty, or no way yields a token; 2 or 3 when a Google ID token cannot be fetched.
    """
    if token is not None and id_token_audience is not None:
        fail("give either --token or --id-token-audience, not both", code=EXIT_USAGE)
    if token is not None and token_file is not None:
        fail("give either --token or --token-file, not both", code=EXIT_USAGE)
    if token_file is not None and id_token_audience is not None:
        fail("give either --token-file or --id-token-audience, not both", code=EXIT_USAGE)
    if token is not None:
        return _non_empty(token, "--token"), "--token"
    if token_file is not None:
        return _read_token_file(token_file, "--token-file"), f"--token-file {token_file}"
    if id_token_audience is not None:
        audience = _non_empty(id_token_audience, "--id-token-audience")
        return fetch_google_id_token(audience), "--id-token-audience"
    per_scope = token_env_var(scope)
    shadowed = f" (which beats {per_scope})" if environ.get(per_scope, "").strip() else ""
    if environ.get(TOKEN_ENV, "").strip():
        return environ[TOKEN_ENV].strip(), TOKEN_ENV + shadowed
    if environ.get(TOKEN_FILE_ENV, "").strip():
        path = Path(environ[TOKEN_FILE_ENV].strip()).expanduser()
        return _read_token_file(path, TOKEN_FILE_ENV), f"{TOKEN_FILE_ENV} ({path}){shadowed}"
    if environ.get(ID_TOKEN_AUDIENCE_VARIABLE, "").strip():
        token_value = fetch_google_id_token(environ[ID_TOKEN_AUDIENCE_VARIABLE].strip())
        return token_value, ID_TOKEN_AUDIENCE_VARIABLE + shadowed
    if environ.get(per_scope, "").strip():
        return environ[per_scope].strip(), per_scope
    fail(
        "no bearer token: give --token TOKEN, or --id-token-audience AUD (or "
        f"{ID_TOKEN_AUDIENCE_VARIABLE}) to use a Google ID token, or --token-file FILE, or set "
        f"{TOKEN_ENV} or {TOKEN_FILE_ENV} (or {per_scope}); this command needs the "
        f"{scope.value} scope",
        code=EXIT_USAGE,
    )


def require_safe_url(url: str, *, insecure: bool) -> None:
    """Exit 2 unless ``url`` is https, or http to a loopback host, or ``insecure`` allows it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(
            f"the API URL must be http(s)://HOST[:PORT], got {without_user_info(url)!r}",
            code=EXIT_USAGE,
        )
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        fail(
            f"refusing plain http to {parts.hostname}: the token would travel in clear; use "
            "https, or pass --insecure if you really mean it",
            code=EXIT_USAGE,
        )


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1 only (contract section 17): not ``*.localhost``,
    which a resolver may send anywhere."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _non_empty(token: str, source: str) -> str:
    stripped = token.strip()
    if not stripped:
        fail(f"{source} is empty", code=EXIT_USAGE)
    return stripped


def _read_token_file(path: Path, source: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        fail(f"{source}: cannot read the token file {str(path)!r}: {reason}", code=EXIT_USAGE)
    return _non_empty(text, f"{source} ({path})")
