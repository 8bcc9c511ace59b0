"""Loading the integrity keys named by ``OMNI_INTEGRITY_KEY_FILE`` (and making one for ``dev``).

Each file holds one key: at least 32 random bytes, standard base64, surrounding whitespace
ignored. The variable is a comma list of files; the first key signs, all verify (rotation: add
the new key first, keep the old one listed until nothing needs it). Errors name the variable and
the file, never the contents.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from omni_secrets.domain.errors import IntegrityKeyInvalid
from omni_secrets.domain.integrity import MIN_KEY_BYTES, IntegrityKeyring

VARIABLE = "OMNI_INTEGRITY_KEY_FILE"


def read_key_file(path: str) -> bytes:
    """The raw key in ``path``.

    Raises:
        IntegrityKeyInvalid: missing, unreadable, not base64, or shorter than 32 bytes.
    """
    try:
        text = Path(path).read_text(encoding="ascii")
    except OSError as exc:
        raise IntegrityKeyInvalid(
            f"cannot read {VARIABLE} file {path!r}: {exc.strerror or 'error'}"
        ) from None
    except UnicodeDecodeError:
        raise IntegrityKeyInvalid(f"{VARIABLE} file {path!r} is not a base64 text file") from None
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityKeyInvalid(f"{VARIABLE} file {path!r} is not valid base64") from None
    if len(raw) < MIN_KEY_BYTES:
        raise IntegrityKeyInvalid(
            f"{VARIABLE} file {path!r} holds {len(raw)} bytes; at least {MIN_KEY_BYTES} random "
            "bytes are required"
        )
    return raw


def load_keyring(paths: Sequence[str]) -> IntegrityKeyring | None:
    """The keyring of ``paths`` (first signs), or None when no file is named.

    Raises:
        IntegrityKeyInvalid: a file is bad (see :func:`read_key_file`) or listed twice.
    """
    if not paths:
        return None
    keys = [read_key_file(path) for path in paths]
    try:
        return IntegrityKeyring(keys)
    except ValueError as exc:
        raise IntegrityKeyInvalid(f"{VARIABLE}: {exc}") from None


def create_key_file(path: Path) -> None:
    """Write a new 32-byte random key (base64, mode 0600) to ``path`` unless it exists."""
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(secrets.token_bytes(MIN_KEY_BYTES)).decode("ascii") + "\n")
