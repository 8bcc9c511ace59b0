"""Google's Pub/Sub emulator (Java) as a test fixture process: start, wait, always kill.

The emulator's launcher script starts a JVM child; it runs in its own session (process group) so
:meth:`PubSubEmulator.stop` can end the whole tree, and an ``atexit`` hook does the same if the
test session dies before the fixture's finaliser runs. Under ``CI=true`` a missing emulator
fails the run; elsewhere the tests that need it skip with a loud reason. The JVM is also told to
die with the process that started it (``PR_SET_PDEATHSIG``), for a session killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.ports import free_port

EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
START_TIMEOUT_SECONDS = 60.0


def emulator_missing_reason() -> str | None:
    """Why the emulator cannot run here, or None when it can."""
    if not EMULATOR.exists():
        return f"Google's Pub/Sub emulator is not installed at {EMULATOR}"
    if shutil.which("java") is None:
        return "java is not on PATH (the Pub/Sub emulator needs it)"
    return None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process dies, even by SIGKILL.

    The launcher execs the JVM, which keeps this setting; so a killed pytest (no finaliser, no
    atexit) cannot leave an emulator behind on the CI machine. Linux only; elsewhere a no-op.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


class PubSubEmulator:
    """One emulator process on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._data_dir = data_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = data_dir / "pubsub-emulator.log"

    def start(self) -> None:
        """Start and wait until the port answers (about 5 s here).

        Raises:
            RuntimeError: it exited or did not answer within the timeout (log tail attached).
        """
        self._data_dir.mkdir(parents=True, exist_ok=True)
        log = self._log.open("wb")
        self._proc = subprocess.Popen(
            [str(EMULATOR), "--host=127.0.0.1", f"--port={self.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self._data_dir,
            preexec_fn=_die_with_parent,
        )
        log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the Pub/Sub emulator exited: {self._tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                if "Server started" in self._tail():
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Pub/Sub emulator did not start in time: {self._tail()}")

    def stop(self) -> None:
        """Kill the whole process group (launcher and JVM); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The JVM may outlive the launcher: make sure nothing of the group is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""
