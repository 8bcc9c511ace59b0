"""Every ``--help`` page reads like an operator tool's: no Python type names, exit 0."""

from __future__ import annotations

import re

import pytest
from typer._click import core as click_core

from omni_secrets.cli import app, main
from omni_secrets.cli._help import tidy_help

PYTHON_TYPE_NAMES = re.compile(
    r"<(str|int|float|bool|path|list\[[^>]*\]|int range|float range)>"
    r"|\b(TEXT|INTEGER|FLOAT|BOOLEAN)\b|\{[A-Z_]+\}"
)


def command_paths() -> list[list[str]]:
    import typer

    root = typer.main.get_command(app)
    tidy_help(root)
    paths: list[list[str]] = []

    def walk(command: click_core.Command, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


ALL_COMMANDS = command_paths()


def test_every_verb_of_section_11_exists() -> None:
    """The contract's new verbs are all registered."""
    names = {" ".join(path) for path in ALL_COMMANDS}
    assert {
        "rotation preview",
        "rotation commit",
        "rotation cancel",
        "rotation check",
        "break-glass list",
        "refresh status",
        "gsm versions list",
        "gsm versions add",
        "gsm versions enable",
        "gsm versions disable",
    } <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "root")
def test_help_has_no_python_type_names(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` exits 0 and never labels a value with a Python (or Click) type name."""
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "Usage: omni-secrets" in out
    assert PYTHON_TYPE_NAMES.search(out) is None, out
    # Issue 26: command summaries are whole sentences, not cut at 45 characters with "...".
    commands = out.split("Commands:", 1)[1] if "Commands:" in out else ""
    assert "..." not in commands, out


def test_api_commands_document_json_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command taking --json shows what the JSON looks like."""
    checked = 0
    for path in ALL_COMMANDS:
        with pytest.raises(SystemExit):
            main([*path, "--help"])
        out = capsys.readouterr().out
        if "--json" in out and path:
            assert re.search(r"--json prints[^{]*\{", out), " ".join(path)
            checked += 1
    assert checked >= 14


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and exits 0."""
    from omni_secrets import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"omni-secrets {__version__}\n"


def test_shell_completion_script(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--show-completion prints a completion script for the named shell."""
    monkeypatch.setenv("SHELL", "/bin/bash")
    with pytest.raises(SystemExit) as exited:
        main(["--show-completion", "bash"])
    assert exited.value.code == 0
    assert "_OMNI_SECRETS_COMPLETE" in capsys.readouterr().out
