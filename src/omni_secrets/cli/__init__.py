"""The ``omni-secrets`` command line.

One Typer app; each command group lives in its own module and is registered here. :func:`main`
is the console script: it turns every expected error (:class:`OmniSecretsError`) into one clear
line on stderr and an exit code, never a traceback.

Exit codes come from ``omni_secrets.error_mapping`` (one table for local errors and API answers):
0 success; 1 a check failed (``rotation check`` due soon, ``audit verify`` broken chain), not
found, a conflict or a runtime error; 2 bad usage, invalid input or a rejected configuration;
3 a dependency (GSM, the database, the API) is unavailable.

Shell completion: ``omni-secrets --install-completion`` (bash, zsh, fish, PowerShell).
"""

from __future__ import annotations

import sys

import typer
from typer._click import exceptions as click_errors  # typer vendors click; these are its errors

from omni_secrets import __version__
from omni_secrets.cli import (
    audit,
    break_glass,
    db,
    dev,
    doctor,
    emulator,
    gsm,
    ops,
    rotation,
    rotation_api,
    serve,
    token,
)
from omni_secrets.cli._common import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    fail,
    running_as_console_script,
)
from omni_secrets.cli._help import tidy_help
from omni_secrets.cli.client import ApiError, ApiStatusError, ApiUnreachable
from omni_secrets.domain.errors import OmniSecretsError
from omni_secrets.error_mapping import exit_code_for, exit_code_for_http_status

app = typer.Typer(
    name="omni-secrets",
    help="Serve ApeX Omni credentials from Google Secret Manager, safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"omni-secrets {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    """Serve ApeX Omni credentials from Google Secret Manager, safely.

    Commands that call the API take --url/--token (or $OMNI_URL and $OMNI_TOKEN, or
    --token-file/$OMNI_TOKEN_FILE, or the per-scope $OMNI_TOKEN_<SCOPE> that `dev` writes to
    its env file) and --json. Exit codes: 0 ok; 1 a check failed, not found, a conflict or the
    API refused; 2 bad usage or input; 3 a dependency (API, GSM, database) unavailable.
    """


audit.register(app)
break_glass.register(app)
db.register(app)
dev.register(app)
doctor.register(app)
emulator.register(app)
gsm.register(app)
ops.register(app)
rotation.register(app)
rotation_api.register(app, rotation.rotation_app)
serve.register(app)
token.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, mapping every expected failure to one line."""
    if argv is None:  # the console script itself, not a test calling main([...])
        running_as_console_script()
    command = typer.main.get_command(app)
    tidy_help(command)
    try:
        result = command.main(args=argv, prog_name="omni-secrets", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except click_errors.ClickException as exc:
        fail(exc.format_message(), code=exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        fail("aborted", code=130)
    except OmniSecretsError as exc:
        fail(exc.message, code=exit_code_for(type(exc)))
    except ApiError as exc:
        fail(exc.message, code=_exit_code_for_api_error(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


def _exit_code_for_api_error(error: ApiError) -> int:
    """An API refusal exits as its status's category would locally; no answer at all is 3."""
    if isinstance(error, ApiStatusError):
        return exit_code_for_http_status(error.status_code)
    if isinstance(error, ApiUnreachable):
        return EXIT_UNAVAILABLE
    return EXIT_FAILED
