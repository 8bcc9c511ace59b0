"""``omni-secrets break-glass …``: the operator side of the encrypted override.

- ``keygen`` makes the service's X25519 key pair.
- ``push`` seals a credential to the service's public key and posts it: the value never leaves
  this process unencrypted and is never printed. The TTL is checked before anything else, so a
  TTL over 30 minutes exits 2 before any network call.
- ``revoke`` ends an override early.
- ``list`` shows the active overrides (from the status endpoint).

The sealing itself is the domain's (``omni_secrets.domain.break_glass``, PyNaCl), imported when a
command runs.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._api_options import ApiOptions, api_command
from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
from omni_secrets.cli._output import show
from omni_secrets.cli._secret_input import (
    ValueFileOption,
    ValueStdinOption,
    read_value,
    require_one_source,
)
from omni_secrets.cli.client import UnexpectedAnswer
from omni_secrets.domain.catalog import parse_secret_type

if TYPE_CHECKING:
    from omni_secrets.cli.client import ApiClient

_PRIVATE_KEY_MODE = 0o600

SecretTypeOption = Annotated[
    str, typer.Option("--secret-type", metavar="T", help="The type to override, e.g. api_secret.")
]
TtlOption = Annotated[
    str,
    typer.Option(
        "--ttl",
        metavar="DURATION",
        help="How long the override lasts: 900, 900s or 15m; 60s to 30m.",
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (kept in the audit trail and the alert).")
]
TicketOption = Annotated[
    str | None, typer.Option("--ticket", metavar="ID", help="Incident reference, e.g. INC-42.")
]
PublicKeyOption = Annotated[
    str | None,
    typer.Option(
        "--public-key",
        metavar="B64",
        help="Seal to this public key instead of fetching it from the API.",
    ),
]
KeyIdOption = Annotated[
    str | None,
    typer.Option(
        "--key-id",
        metavar="ID",
        help="Refuse (exit 2, nothing sent) unless the key sealed to has this key id.",
    ),
]


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
    from omni_secrets.domain import break_glass  # PyNaCl: only when it runs

    private_b64, public_b64, key_id = break_glass.generate_private_key()
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


@api_command(Scope.BREAK_GLASS)
def push(
    secret_type: SecretTypeOption,
    ttl: TtlOption,
    reason: ReasonOption,
    value_file: ValueFileOption = None,
    value_stdin: ValueStdinOption = False,
    ticket: TicketOption = None,
    public_key: PublicKeyOption = None,
    expected_key_id: KeyIdOption = None,
    *,
    api: ApiOptions,
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
    from omni_secrets.domain import break_glass  # PyNaCl: only when it runs

    ttl_seconds = break_glass.validate_ttl(break_glass.parse_duration(ttl))
    checked_type = parse_secret_type(secret_type)
    if not reason.strip():
        fail("--reason must not be empty", code=EXIT_USAGE)
    require_one_source(value_file, value_stdin)
    given_key = _given_public_key(public_key) if public_key is not None else None
    if given_key is not None and expected_key_id is not None:
        _require_key_id(given_key[1], expected_key_id)
    with api.connect() as client:
        value = read_value(value_file)
        key_b64, key_id = given_key or _served_public_key(client)
        if expected_key_id is not None:
            _require_key_id(key_id, expected_key_id)
        ciphertext = break_glass.seal_payload(
            key_b64, secret_type=checked_type, value=value, issued_at=datetime.now(UTC)
        )
        activation = client.activate_break_glass(
            secret_type=checked_type.value,
            key_id=key_id,
            ciphertext=ciphertext,
            ttl_seconds=ttl_seconds,
            reason=reason,
            ticket=ticket,
        )
    show(activation, as_json=api.as_json)


def _require_key_id(actual: str, expected: str) -> None:
    """Exit 2 (before anything is sent) unless the key to seal to has the expected id."""
    if actual.lower() != expected.strip().lower():
        fail(
            f"the break-glass key id is {actual}, not the expected {expected.strip()}: refusing "
            "to seal (nothing sent); check which service --url points at",
            code=EXIT_USAGE,
        )


@api_command(Scope.BREAK_GLASS)
def revoke(
    override_id: Annotated[
        str, typer.Argument(metavar="OVERRIDE_ID", help="The id printed by `push`.")
    ],
    api: ApiOptions,
) -> None:
    """End a break-glass override early; the secret type reverts to GSM.

    Needs the omni-secrets:break-glass scope. Audited and resolves the page. Exit codes: 0
    revoked; 1 unknown or already ended (404) or token refused; 3 the API is unreachable or
    answers 5xx.

    --json prints {"overrideId": "...", "revoked": true}.
    """
    from omni_secrets.cli.client import RevokeAnswer

    with api.connect() as client:
        client.revoke_break_glass(override_id)
    show(RevokeAnswer(override_id), as_json=api.as_json)


@api_command(Scope.READ)
def list_overrides(api: ApiOptions) -> None:
    """List the active break-glass overrides (read from the status endpoint).

    Read-only; needs the omni-secrets:read scope. Prints one line per active override: type,
    override id, who activated it, when it expires and why. Exit 0 (also when none is active).

    --json prints {"overrides": [{"secretType": "api_secret", "overrideId": "...",
    "actor": "...", "activatedAt": "...", "expiresAt": "...", "reason": "..."}]}.
    """
    from omni_secrets.cli.client import ActiveOverrides

    with api.connect() as client:
        report = client.status()
    show(ActiveOverrides.of(report), as_json=api.as_json)


def _given_public_key(text: str) -> tuple[str, str]:
    """``(base64, key id)`` of a public key given on the command line, or exit 2."""
    from omni_secrets.domain import break_glass  # PyNaCl: only when it runs

    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != break_glass.KEY_BYTES:
        fail("--public-key is not the base64 of a 32-byte X25519 public key", code=EXIT_USAGE)
    return text.strip(), break_glass.key_id(raw)


def _served_public_key(client: ApiClient) -> tuple[str, str]:
    """``(base64, key id)`` served by the API, checked against each other."""
    from omni_secrets.domain import break_glass  # PyNaCl: only when it runs

    served = client.break_glass_public_key()
    try:
        raw = base64.b64decode(served.public_key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if served.algorithm != break_glass.ALGORITHM or len(raw) != break_glass.KEY_BYTES:
        raise UnexpectedAnswer("break-glass public key")
    if break_glass.key_id(raw) != served.key_id:
        fail("the API's keyId does not match its public key; refusing to seal", code=EXIT_FAILED)
    return served.public_key, served.key_id
