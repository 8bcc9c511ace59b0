"""Helpers shared by the CLI command modules: exit codes and the one-line error."""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, NoReturn

from omni_secrets.error_mapping import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

if TYPE_CHECKING:
    from omni_secrets.config import Settings

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "fail",
    "load_settings",
    "quiet_library_logs",
    "running_as_console_script",
]


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

    quiet_library_logs()
    return config.load_settings()


class _ConsoleScript:
    """Set by :func:`omni_secrets.cli.main` (the console script): the process is one command."""

    running = False


def running_as_console_script() -> None:
    """Called once by the console script before it runs a command."""
    _ConsoleScript.running = True


def quiet_library_logs() -> None:
    """Keep the adapters' informational log lines (``gsm.retry_scheduled``, …) out of a CLI
    command's output: warnings and errors only, on stderr.

    A command says what happened in its own words, once (``cannot reach GSM …``); the lines
    the service logs for its operators are noise here. ``serve`` and ``dev`` configure logging
    afterwards for themselves, which replaces this. Only in the console script: a test that
    runs a command in-process keeps its own logging configuration.
    """
    if not _ConsoleScript.running:
        return
    import structlog

    structlog.configure(
        # A processor, not a level-filtering logger class: a test's structlog.testing
        # capture (which swaps the processors) still sees every level.
        processors=[
            _drop_below_warning,
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        # The stderr of the moment each line is written, not the one at configuration.
        logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr),
    )


_QUIET_LEVELS = frozenset({"debug", "info", "msg"})


def _drop_below_warning(
    _logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if method in _QUIET_LEVELS:
        import structlog

        raise structlog.DropEvent
    return event
