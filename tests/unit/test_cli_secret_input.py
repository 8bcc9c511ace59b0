"""``--value-file`` / ``--value-stdin``, declared once (``cli/_secret_input.py``) for both
commands that take a secret value: exactly one of them, checked before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_secrets.cli import main

COMMANDS = {
    "gsm versions add": ["gsm", "versions", "add", "--secret-type", "api_key"],
    "break-glass push": [
        "break-glass",
        "push",
        "--secret-type",
        "api_key",
        "--ttl",
        "10m",
        "--reason",
        "rehearsal",
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "fake-token",
    ],
}


@pytest.mark.parametrize("argv", COMMANDS.values(), ids=list(COMMANDS))
@pytest.mark.parametrize("both", [False, True], ids=["neither", "both"])
def test_exactly_one_value_source(
    argv: list[str], both: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither or both of the two options: exit 2 with one line naming them, value unread."""
    value = tmp_path / "value"
    value.write_text("fake-value-never-read\n")
    sources = ["--value-file", str(value), "--value-stdin"] if both else []
    with pytest.raises(SystemExit) as exited:
        main([*argv, *sources])
    captured = capsys.readouterr()
    assert exited.value.code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "give exactly one of --value-file F or --value-stdin" in captured.err
    assert "fake-value-never-read" not in captured.err
