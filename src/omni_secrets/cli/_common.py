"""Helpers shared by the CLI command modules: exit codes and the one-line error."""

from __future__ import annotations

import sys
from typing import NoReturn

from omni_secrets.error_mapping import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "fail"]


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``omni-secrets: <message>`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(message.split())
    print(f"omni-secrets: {one_line}", file=sys.stderr)
    raise SystemExit(code)
