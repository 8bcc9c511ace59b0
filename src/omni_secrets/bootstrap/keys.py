"""The key files the service reads at construction: the break-glass pair and the integrity keys."""

from __future__ import annotations

from pathlib import Path

import structlog

from omni_secrets.bootstrap.database import load_integrity_keyring
from omni_secrets.config import Settings
from omni_secrets.domain.break_glass import BreakGlassKeyPair, load_key_pair
from omni_secrets.domain.errors import BreakGlassKeyInvalid
from omni_secrets.domain.integrity import IntegrityKeyring

log = structlog.get_logger("omni_secrets.bootstrap")


def load_break_glass_key_pair(settings: Settings) -> BreakGlassKeyPair | None:
    """The break-glass key pair of ``settings``, or None when break-glass is not configured.

    Reads the file named by ``OMNI_BREAKGLASS_PRIVATE_KEY_FILE`` and checks that it matches
    ``OMNI_BREAKGLASS_PUBLIC_KEY``. ``serve`` calls this before listening, so a bad pair exits
    non-zero with one line and nothing is served.

    Raises:
        BreakGlassKeyInvalid: the file is missing or unreadable, a key is malformed, or the two
            halves do not belong together (the message never quotes the private key).
    """
    public_key = settings.breakglass_public_key
    if public_key is None:
        return None
    path = settings.breakglass_private_key_file
    if path is None:
        raise BreakGlassKeyInvalid(
            "OMNI_BREAKGLASS_PUBLIC_KEY is set but OMNI_BREAKGLASS_PRIVATE_KEY_FILE is not"
        )
    try:
        text = Path(path).read_text(encoding="ascii")
    except OSError as exc:
        raise BreakGlassKeyInvalid(
            f"cannot read OMNI_BREAKGLASS_PRIVATE_KEY_FILE={path!r}: {exc.strerror or 'error'}"
        ) from None
    except UnicodeDecodeError:
        # The decode error's text would quote bytes of the key: say only what is wrong.
        raise BreakGlassKeyInvalid(
            f"OMNI_BREAKGLASS_PRIVATE_KEY_FILE={path!r} is not a base64 text file"
        ) from None
    return load_key_pair(public_key, text)


def load_service_keyring(settings: Settings) -> IntegrityKeyring | None:
    """The integrity keys ``serve`` signs and checks with; without them it says what that means
    (only possible outside production: the environment guard refuses it there)."""
    keyring = load_integrity_keyring(settings)
    if keyring is None:
        log.warning(
            "integrity.disabled",
            reason="OMNI_INTEGRITY_KEY_FILE is not set",
            effect="audit rows are unkeyed; override and pin MACs are neither written nor checked",
        )
    return keyring
