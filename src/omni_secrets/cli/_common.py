"""Helpers shared by the CLI command modules: exit codes and the one-line error."""

from __future__ import annotations

import sys
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``omni-secrets: <message>`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(message.split())
    print(f"omni-secrets: {one_line}", file=sys.stderr)
    raise SystemExit(code)
