"""Reading a secret value given to the CLI (``--value-file F`` or ``--value-stdin``).

Shared by ``break-glass push`` and ``gsm versions add``: the two options, declared here once as
``Annotated`` aliases, the check that exactly one of them is given, and the read. The value goes
straight into a redacting :class:`~omni_secrets.domain.values.SecretValue`; no error message ever
quotes it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from omni_secrets.cli._common import EXIT_USAGE, fail
from omni_secrets.domain.values import SecretValue

ValueFileOption = Annotated[
    Path | None,
    typer.Option(
        "--value-file",
        metavar="F",
        dir_okay=False,
        help="Read the value from F (one trailing newline is dropped).",
    ),
]
ValueStdinOption = Annotated[
    bool,
    typer.Option("--value-stdin", help="Read the value from stdin (one trailing newline dropped)."),
]


def require_one_source(value_file: Path | None, value_stdin: bool) -> None:
    """Exit 2 unless exactly one of ``--value-file`` and ``--value-stdin`` was given."""
    if (value_file is None) == (not value_stdin):
        fail("give exactly one of --value-file F or --value-stdin", code=EXIT_USAGE)


def read_value(value_file: Path | None) -> SecretValue:
    """The value from the file or stdin, minus one trailing newline; exit 2 when unusable."""
    if value_file is not None:
        try:
            data = value_file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {value_file}: {exc.strerror or 'error'}", code=EXIT_USAGE)
    else:
        if sys.stdin.isatty():
            typer.echo("reading the value from stdin; end with Ctrl-D", err=True)
        data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Not the decode error's text: it would quote bytes of the value.
        fail("the value is not UTF-8 text", code=EXIT_USAGE)
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        fail("the value is empty", code=EXIT_USAGE)
    return SecretValue(text)
