"""`omni-secrets break-glass keygen` (contract section 1), run through the console script."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest

from omni_secrets.cli import main
from omni_secrets.domain.breakglass import load_key_pair


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


class TestKeygen:
    def test_writes_a_0600_key_and_prints_the_public_key(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """keygen writes a mode-0600 private key and prints the matching public key and key id."""
        key_file = tmp_path / "breakglass.key"
        code, out, _ = run(["break-glass", "keygen", "--private-key-out", str(key_file)], capsys)
        assert code == 0
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        match = re.fullmatch(
            r"OMNI_BREAKGLASS_PUBLIC_KEY=([A-Za-z0-9+/]{43}=)\n# key id: ([0-9a-f]{16})\n", out
        )
        assert match is not None, out
        public_b64, printed_id = match.groups()
        assert printed_id == hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]

        private_text = key_file.read_text()
        assert private_text.endswith("\n")
        pair = load_key_pair(public_b64, private_text)
        assert pair.key_id == printed_id
        assert private_text.strip() not in out

    def test_mode_is_0600_even_under_a_permissive_umask(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The key file is 0600 whatever the umask (no group or world bits)."""
        key_file = tmp_path / "k"
        previous = os.umask(0o000)
        try:
            code, _, _ = run(["break-glass", "keygen", "--private-key-out", str(key_file)], capsys)
        finally:
            os.umask(previous)
        assert code == 0
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    def test_refuses_to_overwrite(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An existing file is left untouched and the command exits 2 with one clear line."""
        key_file = tmp_path / "existing.key"
        key_file.write_text("fake-existing-key\n")
        code, out, err = run(["break-glass", "keygen", "--private-key-out", str(key_file)], capsys)
        assert code == 2
        assert out == ""
        assert err == f"omni-secrets: {key_file} already exists; refusing to overwrite a key file\n"
        assert key_file.read_text() == "fake-existing-key\n"

    def test_refuses_a_symlink(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A symlink at the path (even a dangling one) is not followed."""
        target = tmp_path / "elsewhere"
        link = tmp_path / "link.key"
        link.symlink_to(target)
        code, _, err = run(["break-glass", "keygen", "--private-key-out", str(link)], capsys)
        assert code == 2
        assert "already exists" in err
        assert not target.exists()

    def test_missing_directory(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A path in a directory that does not exist exits 2 with one line, no traceback."""
        code, _, err = run(
            ["break-glass", "keygen", "--private-key-out", str(tmp_path / "no" / "k")], capsys
        )
        assert code == 2
        assert err.count("\n") == 1
        assert "cannot create" in err

    def test_requires_the_output_option(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --private-key-out the command is a usage error (exit 2)."""
        code, _, err = run(["break-glass", "keygen"], capsys)
        assert code == 2
        assert "--private-key-out" in err
