"""`omni-secrets emulator` as its own process, driven by another process through its control URL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from omni_secrets.adapters.gsm import GsmSecretManagerClient
from omni_secrets.domain.errors import SecretStoreError
from tests.ports import free_port

from .conftest import FAST_RETRY

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"
PROJECT = "omni-dev"
KEY = "apex-omni-api-key"
INJECT = """
import sys, httpx
url, body = sys.argv[1], sys.argv[2]
response = httpx.post(url + "/faults", content=body, timeout=10)
response.raise_for_status()
"""


@dataclass
class EmulatorProcess:
    proc: subprocess.Popen[str]
    grpc: str
    control: str


def cli_env() -> dict[str, str]:
    return {**os.environ, "GRPC_VERBOSITY": "ERROR"}


def inject_from_another_process(control: str, body: dict[str, object]) -> None:
    subprocess.run(
        [sys.executable, "-c", INJECT, control, json.dumps(body)], check=True, timeout=60
    )


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """The CLI emulator on free ports with a seed file; its printed addresses parsed."""
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps({"projectId": PROJECT, "secrets": {KEY: ["fake-key-v1", "fake-key-v2"]}})
    )
    proc = subprocess.Popen(
        [CLI, "emulator", "--port", "0", "--seed-file", str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    watchdog = threading.Timer(60, proc.kill)  # a hung start must not hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
    finally:
        watchdog.cancel()
    assert lines[0].startswith("grpc: "), lines
    assert lines[1].startswith("control: http://127.0.0.1:"), lines
    assert lines[2] == f"seeded 2 versions of 1 secrets into project {PROJECT}"
    running = EmulatorProcess(proc, lines[0].removeprefix("grpc: "), lines[1].split(" ", 1)[1])
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


class TestEmulatorProcess:
    async def test_faults_from_another_process_reach_the_client(
        self, emulator_process: EmulatorProcess
    ) -> None:
        """A second process arms faults over HTTP; the adapter in this one retries, then fails."""
        client = GsmSecretManagerClient(
            project_id=PROJECT,
            endpoint=emulator_process.grpc,
            timeout_seconds=5.0,
            retry=FAST_RETRY,
        )
        try:
            assert (await client.access(KEY)).value.reveal() == "fake-key-v2"
            inject_from_another_process(
                emulator_process.control,
                {"method": "AccessSecretVersion", "code": "UNAVAILABLE", "count": 2},
            )
            assert (await client.access(KEY, "1")).value.reveal() == "fake-key-v1"
            calls = httpx.get(f"{emulator_process.control}/calls", timeout=10).json()["calls"]
            assert calls["AccessSecretVersion"] == 4  # 1 before, then 2 failures + 1 success
            inject_from_another_process(
                emulator_process.control,
                {"method": "*", "code": "PERMISSION_DENIED", "count": 1},
            )
            with pytest.raises(SecretStoreError) as raised:
                await client.access(KEY)
            assert (raised.value.reason, raised.value.transient) == ("PERMISSION_DENIED", False)
        finally:
            await client.aclose()

    def test_sigterm_stops_it_cleanly(self, emulator_process: EmulatorProcess) -> None:
        """SIGTERM ends the emulator with exit code 0 and nothing on stderr."""
        emulator_process.proc.send_signal(signal.SIGTERM)
        assert emulator_process.proc.wait(timeout=30) == 0
        assert emulator_process.proc.stderr is not None
        assert emulator_process.proc.stderr.read() == ""

    @pytest.mark.parametrize(
        ("content", "needle"),
        [
            ("{not json", "not valid JSON"),
            ('{"projectId": "omni-dev", "secrets": {"bad id": ["x"]}}', "bad id"),
            ('{"projectId": "", "secrets": {}}', "projectId"),
            ('{"projectId": "omni-dev", "secrets": {"k": "fake-not-a-list"}}', "list of strings"),
        ],
    )
    def test_bad_seed_file_exits_2_with_one_line(
        self, tmp_path: Path, content: str, needle: str
    ) -> None:
        """A malformed seed file exits 2 with one clear stderr line and listens on nothing."""
        seed = tmp_path / "seed.json"
        seed.write_text(content)
        port = free_port()
        done = subprocess.run(
            [CLI, "emulator", "--port", str(port), "--seed-file", str(seed)],
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(),
            check=False,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert needle in lines[0]
        assert "Traceback" not in done.stderr
        assert done.stdout == ""

    def test_port_in_use_is_one_line(self) -> None:
        """A gRPC port already taken exits non-zero with one line naming the address."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            done = subprocess.run(
                [CLI, "emulator", "--port", str(port)],
                capture_output=True,
                text=True,
                timeout=60,
                env=cli_env(),
                check=False,
            )
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"omni-secrets: cannot listen on 127.0.0.1:{port}: ")

    @pytest.mark.parametrize(
        ("topic", "emulator_host", "needle"),
        [
            ("projects/omni-dev/topics/gsm-events", None, "needs PUBSUB_EMULATOR_HOST"),
            ("not-a-topic", "127.0.0.1:1", "is not projects/PROJECT/topics/TOPIC"),
        ],
    )
    def test_pubsub_topic_refusals_are_one_line(
        self, topic: str, emulator_host: str | None, needle: str
    ) -> None:
        """--pubsub-topic without the Pub/Sub emulator, or malformed: exit 2, one line."""
        env = {k: v for k, v in cli_env().items() if k != "PUBSUB_EMULATOR_HOST"}
        if emulator_host is not None:
            env["PUBSUB_EMULATOR_HOST"] = emulator_host
        done = subprocess.run(
            [CLI, "emulator", "--port", str(free_port()), "--pubsub-topic", topic],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert needle in lines[0]
        assert "Traceback" not in done.stderr
