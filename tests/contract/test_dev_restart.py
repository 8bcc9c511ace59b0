"""``omni-secrets dev`` across restarts: the emulator's state lives in the data dir, a restart
after the README's rotation rehearsal is ready, a data dir that disagrees with itself says so in
one line, and ``dev --reset`` wipes only a dev data dir (contract section 16).

Through the installed command: real ``dev`` processes on free ports in a temp dir, the CLI run
in ``bash`` after ``source <data-dir>/env``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.test_dev_cli_end_to_end import CLI, NEW_VALUES, Result, clean_environment
from tests.ports import free_port


class Dev:
    """One ``omni-secrets dev`` process at a time, in ``cwd`` (data dir ``cwd/.omni-dev``)."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.data_dir = cwd / ".omni-dev"
        self.env = clean_environment()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        port = free_port()
        self.proc = subprocess.Popen(
            [CLI, "dev", "--port", str(port)],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"dev exited {self.proc.returncode}: {self.proc.communicate()[1]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("dev did not become ready within 90 s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def run(self, command: str, *, stdin: str | None = None, source: bool = True) -> Result:
        prefix = f"source {shlex.quote(str(self.data_dir / 'env'))} && " if source else ""
        done = subprocess.run(
            ["bash", "-c", f"{prefix}{shlex.quote(CLI)} {command}"],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    process = Dev(tmp_path_factory.mktemp("restart"))
    yield process
    process.stop()


def _rehearse_rotation(dev: Dev) -> None:
    """The README's rehearsal: a new version of each api_credentials member, preview, commit."""
    for secret_type, value in NEW_VALUES.items():
        added = dev.run(f"gsm versions add --secret-type {secret_type} --value-stdin", stdin=value)
        assert added.code == 0, added.err
    preview = dev.run("rotation preview --secret-type api_key --json")
    assert preview.code == 0, preview.err
    committed = dev.run(f"rotation commit {preview.json()['previewId']} --json")
    assert committed.code == 0, committed.err


class TestRestart:
    def test_a_restart_after_the_rotation_rehearsal_is_ready(self, dev: Dev) -> None:
        """Versions, aliases and pins survive: the restarted dev serves version 2, ready."""
        dev.start()
        _rehearse_rotation(dev)
        dev.stop()
        state_file = dev.data_dir / "gsm-emulator.json"
        assert oct(state_file.stat().st_mode & 0o777) == "0o600"
        document = json.loads(state_file.read_text())
        assert document["format"] == "omni-secrets-gsm-emulator-state"

        dev.start()  # fails the test unless /readyz answers 200
        status = dev.run("status --json")
        assert status.code == 0, status.err
        served = {s["secretType"]: s for s in status.json()["secrets"]}
        for secret_type in NEW_VALUES:
            assert served[secret_type]["version"] == "2"
            assert served[secret_type]["activeVersion"] == "2"
        listed = dev.run("gsm versions list --secret-type api_key --json")
        assert listed.code == 0, listed.err
        assert {v["version"]: v["state"] for v in listed.json()["versions"]} == {
            "2": "ENABLED",
            "1": "ENABLED",
        }
        dev.stop()

    def test_a_data_dir_that_disagrees_says_so_in_one_line(self, dev: Dev) -> None:
        """The database pins version 2, the emulator state is gone (an older data dir): exit 1,
        one line naming the pin and `omni-secrets dev --reset`, nothing served."""
        (dev.data_dir / "gsm-emulator.json").unlink()
        port = free_port()
        done = subprocess.run(
            [CLI, "dev", "--port", str(port)],
            cwd=dev.cwd,
            env=dev.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert "version 2" in done.stderr and "omni-secrets dev --reset" in done.stderr
        assert "apex-omni-api-" in done.stderr
        assert "serving on" not in done.stdout


class TestReset:
    def test_declined_then_confirmed(self, dev: Dev) -> None:
        """Without --yes it asks; 'n' removes nothing (exit 1); --yes wipes the data dir."""
        assert (dev.data_dir / "omni-secrets.db").exists()
        declined = dev.run("dev --reset", stdin="n\n", source=False)
        assert declined.code == 1
        assert "Wipe" in declined.out and "nothing removed" in declined.err
        assert (dev.data_dir / "omni-secrets.db").exists()
        wiped = dev.run("dev --reset --yes", source=False)
        assert wiped.code == 0, wiped.err
        assert not dev.data_dir.exists()
        again = dev.run("dev --reset --yes", source=False)
        assert again.code == 0 and "nothing to reset" in again.out

    def test_a_confirmation_on_stdin_wipes(self, tmp_path: Path) -> None:
        """'y' at the prompt wipes a dev data dir."""
        data_dir = tmp_path / "dd"
        data_dir.mkdir()
        (data_dir / "env").write_text("# Written by `omni-secrets dev` for the service\n")
        (data_dir / "token.secret").write_text("fake-token-secret\n")
        done = subprocess.run(
            [CLI, "dev", "--reset", "--data-dir", str(data_dir)],
            input="y\n",
            capture_output=True,
            text=True,
            env=clean_environment(),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert not data_dir.exists()

    @pytest.mark.parametrize(
        "files",
        [
            {"notes.txt": "fake notes", "env": "# Written by `omni-secrets dev`\n"},
            {"omni-secrets.db": "", "env": "export HOME=/fake\n"},
        ],
        ids=["foreign-file", "no-dev-env-file"],
    )
    def test_refuses_what_is_not_a_dev_data_dir(
        self, tmp_path: Path, files: dict[str, str]
    ) -> None:
        """A directory with a file dev did not write, or no dev env file: exit 2, one line,
        every file still there (even with --yes)."""
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        done = subprocess.run(
            [CLI, "dev", "--reset", "--yes", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env=clean_environment(),
            timeout=60,
        )
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "refusing to reset" in done.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def test_reset_refuses_while_a_dev_serves_the_data_dir(tmp_path: Path) -> None:
    """Something answers on the env file's OMNI_URL (a dev still running): exit 1, one line,
    nothing removed, even with --yes."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (tmp_path / "env").write_text(
            "# Written by `omni-secrets dev` for the service it is running\n"
            f"export OMNI_URL=http://127.0.0.1:{port}\n"
        )
        (tmp_path / "token.secret").write_text("fake-token-secret\n")
        done = subprocess.run(
            [CLI, "dev", "--reset", "--yes", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env=clean_environment(),
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env", "token.secret"]
