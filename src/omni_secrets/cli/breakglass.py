"""``omni-secrets break-glass …``: the operator side of the encrypted override.

``keygen`` lives here now; ``push`` and ``revoke`` join the same group (add them in
:func:`build_group`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
from omni_secrets.domain import breakglass

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
