"""Break-glass across real ``omni-secrets serve`` processes: ``kill -9`` durability, key checks.

The database is a migrated and seeded SQLite file, GSM is the emulator (in this process, over
real gRPC), the key pair is on disk, and the operator pushes with the real CLI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_secrets.api.auth import mint_hs256_token
from omni_secrets.config import load_settings
from omni_secrets.domain.break_glass import generate_private_key
from omni_secrets.emulator import GsmEmulator
from tests.contract.conftest import FAKE_VALUES, HS256_SECRET, PROJECT, prepare_database
from tests.ports import free_port

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"
STATUS = "/ops/apex-omni/secrets/status"
OVERRIDE_VALUE = "fake-restart-override-secret-2c7e"


def token(*scopes: str) -> str:
    return mint_hs256_token(
        secret=HS256_SECRET,
        scopes=scopes,
        subject="oncall",
        audience="omni-secrets",
        now=datetime.now(UTC),
        ttl=timedelta(minutes=5),
    )


class ServeProcess:
    """``omni-secrets serve`` as a child process with its output kept in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [CLI, "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not come up (exit {self.proc.poll()})")
            time.sleep(0.1)

    def status(self, secret_type: str) -> dict[str, Any]:
        response = httpx.get(
            self.url + STATUS,
            headers={"Authorization": f"Bearer {token('omni-secrets:read')}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return next(s for s in response.json()["secrets"] if s["secretType"] == secret_type)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        self._log.close()


@pytest.fixture
def emulator() -> Iterator[GsmEmulator]:
    """The GSM emulator, seeded with the contract's fake values."""
    running = GsmEmulator()
    running.start()
    running.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, emulator: GsmEmulator
) -> dict[str, str]:
    """Env for ``serve``: a seeded SQLite file, the running emulator, a key pair on disk."""
    private_b64, public_b64, _ = generate_private_key()
    key_file = tmp_path / "breakglass.key"
    key_file.write_text(private_b64 + "\n")
    key_file.chmod(0o600)
    values = {
        "OMNI_ENVIRONMENT": "test",
        "GCP_PROJECT_ID": PROJECT,
        "OMNI_GSM_ENDPOINT": emulator.address,
        "OMNI_GSM_TIMEOUT_SECONDS": "1",
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path}/omni.db",
        "OMNI_AUTH_HS256_SECRET": HS256_SECRET,
        "OMNI_BREAKGLASS_PUBLIC_KEY": public_b64,
        "OMNI_BREAKGLASS_PRIVATE_KEY_FILE": str(key_file),
        "OMNI_LOG_FORMAT": "json",
    }
    settings = load_settings(**values)
    asyncio.run(prepare_database(values["OMNI_DATABASE_URL"], settings, seed=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env.update(values)
    return env


def push(url: str, environment: dict[str, str], value_file: Path) -> dict[str, str]:
    """Run ``break-glass push`` for api_secret (15 minutes); the printed id and expiry."""
    value_file.write_text(OVERRIDE_VALUE + "\n")
    done = subprocess.run(
        [
            CLI,
            "break-glass",
            "push",
            "--url",
            url,
            "--token",
            token("omni-secrets:break-glass"),
            "--secret-type",
            "api_secret",
            "--value-file",
            str(value_file),
            "--ttl",
            "15m",
            "--reason",
            "GSM outage drill",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


class TestRestartDurability:
    def test_override_survives_kill_9(self, environment: dict[str, str], tmp_path: Path) -> None:
        """After kill -9 and a restart the override is still served, with the same expiry."""
        first = ServeProcess(environment, tmp_path / "serve.log")
        second: ServeProcess | None = None
        try:
            first.wait_ready()
            pushed = push(first.url, environment, tmp_path / "value")
            before = first.status("api_secret")
            assert before["cacheSource"] == "break_glass"
            assert before["expiresAt"] == pushed["expiresAt"]

            first.kill()
            assert first.proc.returncode == -signal.SIGKILL
            second = ServeProcess(environment, tmp_path / "serve.log")
            second.wait_ready()
            after = second.status("api_secret")
            assert after["cacheSource"] == "break_glass"
            assert after["expiresAt"] == pushed["expiresAt"]
            assert after["breakGlass"]["overrideId"] == pushed["overrideId"]
            assert after["breakGlass"]["expiresAt"] == pushed["expiresAt"]
            assert second.status("api_key")["cacheSource"] == "gsm"
        finally:
            first.kill()
            if second is not None:
                second.kill()
        output = (tmp_path / "serve.log").read_bytes()
        assert OVERRIDE_VALUE.encode() not in output
        assert OVERRIDE_VALUE.encode() not in (tmp_path / "omni.db").read_bytes()

    def test_override_served_while_gsm_is_down_after_restart(
        self, environment: dict[str, str], emulator: GsmEmulator, tmp_path: Path
    ) -> None:
        """Restarted while GSM is unreachable: the stored override is still served."""
        first = ServeProcess(environment, tmp_path / "serve.log")
        second: ServeProcess | None = None
        try:
            first.wait_ready()
            pushed = push(first.url, environment, tmp_path / "value")
            first.kill()
            emulator.stop()
            second = ServeProcess(environment, tmp_path / "serve.log")
            second.wait_ready()
            after = second.status("api_secret")
            assert (after["cacheSource"], after["expiresAt"]) == (
                "break_glass",
                pushed["expiresAt"],
            )
            assert second.status("api_key")["cacheSource"] == "none"
        finally:
            first.kill()
            if second is not None:
                second.kill()


class TestStartupKeyCheck:
    @pytest.mark.parametrize("problem", ["mismatch", "missing_file", "garbage"])
    def test_bad_key_pair_refuses_to_start(
        self, environment: dict[str, str], tmp_path: Path, problem: str
    ) -> None:
        """A mismatched, missing or malformed private key: exit non-zero, one line, no listener."""
        env = dict(environment)
        key_file = Path(env["OMNI_BREAKGLASS_PRIVATE_KEY_FILE"])
        if problem == "mismatch":
            env["OMNI_BREAKGLASS_PUBLIC_KEY"] = generate_private_key()[1]
        elif problem == "missing_file":
            env["OMNI_BREAKGLASS_PRIVATE_KEY_FILE"] = str(tmp_path / "nowhere.key")
        else:
            key_file.write_bytes(b"\xff\xfe not a key\n")
        port = free_port()
        proc = subprocess.run(
            [CLI, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert "OMNI_BREAKGLASS_PRIVATE_KEY_FILE" in lines[0]
        assert "Traceback" not in proc.stderr
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
        if problem == "mismatch":
            assert key_file.read_text().strip() not in proc.stderr
