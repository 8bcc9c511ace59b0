"""Helpers shared by the CLI command modules: exit codes and the one-line error."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

from omni_secrets.error_mapping import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

if TYPE_CHECKING:
    from omni_secrets.config import Settings

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "fail", "load_settings"]


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``omni-secrets: <message>`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(message.split())
    print(f"omni-secrets: {one_line}", file=sys.stderr)
    raise SystemExit(code)


def load_settings() -> Settings:
    """:func:`omni_secrets.config.load_settings`, imported when a command runs.

    ``omni_secrets.config`` pulls in pydantic and pydantic-settings (about 60 ms and 20 MB);
    importing it here instead of at the top of each command module keeps ``--help`` and the
    commands that never read the configuration from paying for it.
    """
    from omni_secrets import config

    return config.load_settings()
