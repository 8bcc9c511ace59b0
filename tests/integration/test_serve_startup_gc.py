"""`serve` pauses the cyclic GC for its start-up and freezes what start-up built (issue 19).

Three full collections over the ~160k start-up objects cost about 0.15 s of a 0.9 s start; with
the collector paused until the app is built and then ``gc.freeze()``, none runs. Checked in a
fresh interpreter that runs the real ``serve`` command with uvicorn replaced by a probe: when
serving would begin, the collector must be enabled again, start-up's objects frozen, and no full
collection must have run since the command started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from omni_secrets.adapters.db import migrate
from tests.ports import free_port

_PROBE = """
import gc, json, sys
import uvicorn

full = []

def count_full(phase, info):
    if phase == "stop" and info["generation"] == 2:
        full.append(1)

gc.callbacks.append(count_full)

def probe_run(app, **_kw):
    state = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "full": len(full)}
    print("gc:", json.dumps(state))

def probe_server_run(self, sockets=None):  # serve binds first, then runs uvicorn.Server
    probe_run(self.config.app)

uvicorn.run = probe_run
uvicorn.Server.run = probe_server_run
from omni_secrets.cli import main
gc.collect()  # start the count from empty generations
full.clear()
main(["serve", "--port", sys.argv[1]])
"""


def test_serve_freezes_startup_objects_and_runs_no_full_collection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'omni.db'}"
    migrate.upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env.update(
        OMNI_ENVIRONMENT="development",
        GCP_PROJECT_ID="omni-dev",
        OMNI_AUTH_HS256_SECRET="fake-hs256-secret-for-gc-tests-0123456789",
        OMNI_DATABASE_URL=url,
    )
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("gc: "))
    state = json.loads(line.removeprefix("gc: "))
    assert state["enabled"] is True
    assert state["frozen"] > 50_000  # the modules, the app and its services
    assert state["full"] == 0
