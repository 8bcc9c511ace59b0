"""``omni-secrets dev``'s data dir: what it holds, ``dev --reset``, and whether its database and
its GSM emulator state agree.

Everything ``dev`` keeps lives in the data dir (``.omni-dev/`` by default): the SQLite database,
the break-glass key pair, the dev token secret, the integrity key, the env file and the GSM
emulator's state (``gsm-emulator.json``). ``--reset`` removes exactly those files and the
directory, and refuses a directory holding anything else: it never wipes what ``dev`` did not
write.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from omni_secrets.cli._common import EXIT_USAGE, fail

if TYPE_CHECKING:
    from omni_secrets.domain.models import OmniSecretMetadata
    from omni_secrets.emulator import GsmEmulator

ENV_FILE_NAME = "env"
DATABASE_FILE_NAME = "omni-secrets.db"
EMULATOR_STATE_FILE_NAME = "gsm-emulator.json"
#: The first line of the env file ``dev`` writes (what marks a dev data dir).
ENV_FILE_HEADER = "# Written by `omni-secrets dev`"
#: Every file ``dev`` writes in its data dir (temp files of atomic writes included).
DEV_FILES = frozenset(
    {
        DATABASE_FILE_NAME,
        f"{DATABASE_FILE_NAME}-journal",
        f"{DATABASE_FILE_NAME}-wal",
        f"{DATABASE_FILE_NAME}-shm",
        "breakglass.key",
        "breakglass.pub",
        "token.secret",
        "integrity.key",
        ENV_FILE_NAME,
        f".{ENV_FILE_NAME}.tmp",
        EMULATOR_STATE_FILE_NAME,
        f".{EMULATOR_STATE_FILE_NAME}.tmp",
    }
)


def reset_command(data_dir: Path) -> str:
    """The command that wipes ``data_dir`` (``--data-dir`` only when it is not the default)."""
    if data_dir == Path(".omni-dev"):
        return "omni-secrets dev --reset"
    return f"omni-secrets dev --reset --data-dir {data_dir}"


def reset(data_dir: Path, *, yes: bool) -> None:
    """``dev --reset``: remove the dev data dir after a confirmation (``yes`` skips it).

    Exits 2 (nothing removed) when ``data_dir`` is not a dev data dir; 1 when the operator
    declines; prints one line and returns when it is wiped or there is nothing to wipe.
    """
    if not data_dir.exists():
        typer.echo(f"omni-secrets dev: {data_dir} does not exist; nothing to reset")
        return
    if data_dir.is_symlink() or not data_dir.is_dir():
        fail(f"refusing to reset {data_dir}: not a directory", code=EXIT_USAGE)
    entries = sorted(entry.name for entry in data_dir.iterdir())
    foreign = [name for name in entries if name not in DEV_FILES]
    if foreign:
        fail(
            f"refusing to reset {data_dir}: it holds {_listing(foreign)}, which omni-secrets dev "
            "did not write (is --data-dir right?); nothing removed",
            code=EXIT_USAGE,
        )
    if entries and not _has_dev_marker(data_dir):
        fail(
            f"refusing to reset {data_dir}: no env file written by omni-secrets dev in it, so it "
            "is not a dev data dir; nothing removed",
            code=EXIT_USAGE,
        )
    serving = _serving_url(data_dir)
    if serving is not None:
        fail(
            f"refusing to reset {data_dir}: an omni-secrets dev using it answers on {serving}; "
            "stop it first (Ctrl-C in its terminal); nothing removed"
        )
    if not yes and not typer.confirm(
        f"Wipe {data_dir.resolve()} (the dev database, keys, token secret, env file and GSM "
        "emulator state)?",
        default=False,
    ):
        fail("reset declined; nothing removed")
    for name in entries:
        (data_dir / name).unlink()
    data_dir.rmdir()
    typer.echo(f"omni-secrets dev: wiped {data_dir}; the next `omni-secrets dev` starts afresh")


def _serving_url(data_dir: Path) -> str | None:
    """The env file's ``OMNI_URL`` when something accepts connections there, else None."""
    import shlex
    import socket
    from urllib.parse import urlsplit

    env_file = data_dir / ENV_FILE_NAME
    if not env_file.is_file():
        return None
    for line in env_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("export OMNI_URL="):
            continue
        url = " ".join(shlex.split(line.removeprefix("export OMNI_URL=")))
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            return None
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
                return url
        except OSError:
            return None
    return None


def _has_dev_marker(data_dir: Path) -> bool:
    env_file = data_dir / ENV_FILE_NAME
    if not env_file.is_file():
        # A first start that stopped before writing the env file still made the token secret.
        return (data_dir / "token.secret").is_file()
    with env_file.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline().startswith(ENV_FILE_HEADER)


def _listing(names: Iterable[str]) -> str:
    shown = list(names)
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
    return ", ".join(shown[:5]) + more


def first_disagreement(
    rows: Iterable[OmniSecretMetadata], emulator: GsmEmulator, project_id: str
) -> str | None:
    """What the database pins that the dev emulator lacks (the first such pin), or None.

    A version that exists in any state is agreement (a DISABLED served version is a state the
    operator made, which the service reports itself); a missing secret or version can only
    come from a data dir whose emulator state was lost or is older than its database.
    """
    import grpc

    from omni_secrets.emulator import RpcFault

    for row in rows:
        if row.active_version is None:
            continue
        if row.gsm_project_id != project_id:
            return f"{row.secret_type} is pinned in project {row.gsm_project_id}, not {project_id}"
        try:
            emulator.version_state(project_id, row.gsm_secret_id, row.active_version)
        except RpcFault as fault:
            if fault.code is not grpc.StatusCode.NOT_FOUND:
                raise
            return (
                f"the database pins {row.gsm_secret_id} version {row.active_version}, which the "
                "dev GSM emulator does not have"
            )
    return None
