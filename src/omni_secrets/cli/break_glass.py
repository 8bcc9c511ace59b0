"""``omni-secrets break-glass …``: the operator side of the encrypted override.

- ``keygen`` makes the service's X25519 key pair.
- ``push`` seals a credential to the service's public key and posts it: the value never leaves
  this process unencrypted and is never printed. The TTL is checked before anything else, so a
  TTL over 30 minutes exits 2 before any network call.
- ``revoke`` ends an override early.
- ``list`` shows the active overrides (from the status endpoint).
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._bearer import IdTokenAudienceOption
from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
from omni_secrets.cli._http import ApiClient
from omni_secrets.cli._output import console, minutes, print_json, relative
from omni_secrets.cli._secret_input import (
    ValueFileOption,
    ValueStdinOption,
    read_value,
    require_one_source,
)
from omni_secrets.cli._target import (
    InsecureOption,
    JsonOption,
    TokenFileOption,
    TokenOption,
    UrlOption,
    resolve_target,
)
from omni_secrets.domain.catalog import parse_secret_type

BREAK_GLASS_PATH = "/ops/apex-omni/secrets/break-glass"
PUBLIC_KEY_PATH = f"{BREAK_GLASS_PATH}/public-key"

_PRIVATE_KEY_MODE = 0o600


def register(app: typer.Typer) -> None:
    """Add the ``break-glass`` command group to ``app``."""
    app.add_typer(build_group(), name="break-glass")


def build_group() -> typer.Typer:
    """The ``break-glass`` group with its commands (built on demand, nothing at import)."""
    group = typer.Typer(
        help="Encrypted, time-boxed credential override for when GSM is down.",
        no_args_is_help=True,
    )
    group.command("keygen")(keygen)
    group.command("push")(push)
    group.command("revoke")(revoke)
    group.command("list")(list_overrides)
    return group


def keygen(
    private_key_out: Annotated[
        Path,
        typer.Option(
            "--private-key-out",
            metavar="FILE",
            help="Where to write the new private key (created with mode 0600; must not exist).",
            dir_okay=False,
        ),
    ],
) -> None:
    """Make a new break-glass X25519 key pair.

    Writes the private key (base64) to FILE, created with mode 0600, and prints
    `OMNI_BREAKGLASS_PUBLIC_KEY=<base64>` and a `# key id: <hex>` comment on stdout, so the
    output can be appended to an env file. Point OMNI_BREAKGLASS_PRIVATE_KEY_FILE at FILE.

    Safety: refuses (exit 2) when FILE already exists, so an existing key is never overwritten;
    the private key is never printed.
    """
    from omni_secrets.domain import breakglass  # PyNaCl: only when the command runs

    private_b64, public_b64, key_id = breakglass.generate_private_key()
    _write_new_private_file(private_key_out, private_b64 + "\n")
    typer.echo(f"OMNI_BREAKGLASS_PUBLIC_KEY={public_b64}")
    typer.echo(f"# key id: {key_id}")
    typer.echo(
        f"wrote the private key to {private_key_out} (mode 0600); "
        f"set OMNI_BREAKGLASS_PRIVATE_KEY_FILE={private_key_out}",
        err=True,
    )


def _write_new_private_file(path: Path, content: str) -> None:
    """Create ``path`` with mode 0600 and write ``content``; never replace an existing file."""
    try:
        # O_EXCL also refuses a symlink planted at the path, even a dangling one.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_KEY_MODE)
    except FileExistsError:
        fail(f"{path} already exists; refusing to overwrite a key file", code=EXIT_USAGE)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        fail(f"cannot create {path}: {exc.strerror}", code=EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot create {path}: {exc.strerror}", code=EXIT_FAILED)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            # The umask may have narrowed the mode further; pin it to exactly 0600.
            os.fchmod(handle.fileno(), _PRIVATE_KEY_MODE)
            handle.write(content)
    except OSError as exc:
        path.unlink(missing_ok=True)
        fail(f"cannot write {path}: {exc.strerror}", code=EXIT_FAILED)


STATUS_PATH = "/ops/apex-omni/secrets/status"


def push(
    secret_type: Annotated[
        str,
        typer.Option("--secret-type", metavar="T", help="The type to override, e.g. api_secret."),
    ],
    ttl: Annotated[
        str,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="How long the override lasts: 900, 900s or 15m; 60s to 30m.",
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept in the audit trail and the alert).")
    ],
    value_file: ValueFileOption = None,
    value_stdin: ValueStdinOption = False,
    ticket: Annotated[
        str | None, typer.Option("--ticket", metavar="ID", help="Incident reference, e.g. INC-42.")
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            metavar="B64",
            help="Seal to this public key instead of fetching it from the API.",
        ),
    ] = None,
    expected_key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            metavar="ID",
            help="Refuse (exit 2, nothing sent) unless the key sealed to has this key id.",
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve a credential from an encrypted, time-boxed override instead of GSM.

    Checks the TTL (at most 30 minutes) and the secret type locally first, reads the value,
    fetches the service's public key (unless --public-key is given), checks its key id against
    --key-id when given, seals the value to it with a fresh nonce and the current time, posts
    the sealed payload and prints `keyId=...` (the key it sealed to), `overrideId=...` and
    `expiresAt=...`. The override is audited and pages on-call; it ends by itself at its expiry
    or early with `omni-secrets break-glass revoke`. Needs the omni-secrets:break-glass scope.

    Safety: the value is never printed or sent unencrypted; the sealed payload is single-use and
    must be posted within 5 minutes. Pass --key-id with the id you got from the key's owner to
    be sure you seal to the right service. Exit codes: 0 activated; 2 bad input (TTL over 30m,
    unknown type, empty value, key id mismatch, a 4xx answer); 1 token refused; 3 the API is
    unreachable or answers 5xx.

    --json prints {"keyId": "...", "overrideId": "...", "secretType": "api_secret",
    "cacheSource": "break_glass", "activatedAt": "...", "expiresAt": "..."}.
    """
    from omni_secrets.domain import breakglass  # PyNaCl: only when the command runs

    ttl_seconds = breakglass.validate_ttl(breakglass.parse_duration(ttl))
    checked_type = parse_secret_type(secret_type)
    if not reason.strip():
        fail("--reason must not be empty", code=EXIT_USAGE)
    require_one_source(value_file, value_stdin)
    given_key = _given_public_key(public_key) if public_key is not None else None
    if given_key is not None and expected_key_id is not None:
        _require_key_id(given_key[1], expected_key_id)
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.BREAK_GLASS,
        id_token_audience=id_token_audience,
    )
    value = read_value(value_file)

    with ApiClient(target.url, target.token) as api:
        key_b64, key_id = given_key or _fetch_public_key(api)
        if expected_key_id is not None:
            _require_key_id(key_id, expected_key_id)
        ciphertext = breakglass.seal_payload(
            key_b64, secret_type=checked_type, value=value, issued_at=datetime.now(UTC)
        )
        body: dict[str, Any] = {
            "secretType": checked_type.value,
            "keyId": key_id,
            "ciphertext": ciphertext,
            "ttlSeconds": ttl_seconds,
            "reason": reason,
        }
        if ticket is not None:
            body["ticket"] = ticket
        activated = api.post_json(BREAK_GLASS_PATH, body)
    override_id, expires_at = activated["overrideId"], activated["expiresAt"]
    if as_json:
        print_json({"keyId": key_id, **activated})
        return
    typer.echo(f"keyId={key_id}")
    typer.echo(f"overrideId={override_id}")
    typer.echo(f"expiresAt={expires_at}")
    typer.echo(
        f"break-glass override active for {checked_type.value} until {expires_at} (sealed to "
        f"key {key_id}); end it early with: omni-secrets break-glass revoke {override_id}",
        err=True,
    )


def _require_key_id(actual: str, expected: str) -> None:
    """Exit 2 (before anything is sent) unless the key to seal to has the expected id."""
    if actual.lower() != expected.strip().lower():
        fail(
            f"the break-glass key id is {actual}, not the expected {expected.strip()}: refusing "
            "to seal (nothing sent); check which service --url points at",
            code=EXIT_USAGE,
        )


def revoke(
    override_id: Annotated[
        str, typer.Argument(metavar="OVERRIDE_ID", help="The id printed by `push`.")
    ],
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """End a break-glass override early; the secret type reverts to GSM.

    Needs the omni-secrets:break-glass scope. Audited and resolves the page. Exit codes: 0
    revoked; 1 unknown or already ended (404) or token refused; 3 the API is unreachable or
    answers 5xx.

    --json prints {"overrideId": "...", "revoked": true}.
    """
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.BREAK_GLASS,
        id_token_audience=id_token_audience,
    )
    with ApiClient(target.url, target.token) as api:
        api.request("DELETE", f"{BREAK_GLASS_PATH}/{quote(override_id, safe='')}")
    if as_json:
        print_json({"overrideId": override_id, "revoked": True})
    else:
        typer.echo(f"revoked {override_id}")


def list_overrides(
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the active break-glass overrides (read from the status endpoint).

    Read-only; needs the omni-secrets:read scope. Prints one line per active override: type,
    override id, who activated it, when it expires and why. Exit 0 (also when none is active).

    --json prints {"overrides": [{"secretType": "api_secret", "overrideId": "...",
    "actor": "...", "activatedAt": "...", "expiresAt": "...", "reason": "..."}]}.
    """
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.READ,
        id_token_audience=id_token_audience,
    )
    with ApiClient(target.url, target.token) as api:
        body = api.get_json(STATUS_PATH)
    overrides = [
        {
            "secretType": item["secretType"],
            **{k: v for k, v in item["breakGlass"].items() if k != "active"},
        }
        for item in body.get("secrets", [])
        if (item.get("breakGlass") or {}).get("active")
    ]
    if as_json:
        print_json({"overrides": overrides})
        return
    if not overrides:
        print("no active break-glass override")
        return
    from rich.markup import escape

    out = console()
    for item in overrides:
        out.print(
            f"[magenta]{item['secretType']}[/] {item.get('overrideId')} until "
            f"{minutes(item.get('expiresAt'))} ({relative(item.get('expiresAt'))}), by "
            f"{escape(str(item.get('actor')))}: {escape(str(item.get('reason')))}",
            soft_wrap=True,
        )


def _given_public_key(text: str) -> tuple[str, str]:
    """``(base64, key id)`` of a public key given on the command line, or exit 2."""
    from omni_secrets.domain import breakglass  # PyNaCl: only when the command runs

    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != breakglass.KEY_BYTES:
        fail("--public-key is not the base64 of a 32-byte X25519 public key", code=EXIT_USAGE)
    return text.strip(), breakglass.key_id(raw)


def _fetch_public_key(api: ApiClient) -> tuple[str, str]:
    """``(base64, key id)`` served by the API, checked against each other."""
    from omni_secrets.domain import breakglass  # PyNaCl: only when the command runs

    served = api.get_json(PUBLIC_KEY_PATH)
    try:
        key_b64, served_id = str(served["publicKey"]), str(served["keyId"])
        raw = base64.b64decode(key_b64, validate=True)
        if served["algorithm"] != breakglass.ALGORITHM or len(raw) != breakglass.KEY_BYTES:
            raise ValueError("unexpected key")
    except (KeyError, TypeError, ValueError, binascii.Error):
        fail("the API did not answer with a usable break-glass public key", code=EXIT_FAILED)
    if breakglass.key_id(raw) != served_id:
        fail("the API's keyId does not match its public key; refusing to seal", code=EXIT_FAILED)
    return key_b64, served_id
