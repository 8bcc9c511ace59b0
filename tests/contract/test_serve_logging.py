"""The real ``omni-secrets serve`` process logs JSON lines only, uvicorn's own lines included."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_secrets.api.auth import mint_hs256_token
from omni_secrets.config import load_settings
from omni_secrets.emulator import GsmEmulator
from tests.contract.conftest import CANARIES, FAKE_VALUES, HS256_SECRET, PROJECT, prepare_database
from tests.ports import free_port

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"


async def wait_until_up(client: httpx.AsyncClient, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}")
        try:
            await client.get("/healthz", headers={"X-Request-ID": "probe"})
            return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    pytest.fail("serve did not come up")


class TestServeLogging:
    async def test_json_lines_uvicorn_included_one_request_line_each(
        self, tmp_path: Path, clean_env: pytest.MonkeyPatch
    ) -> None:
        """Every stdout line is JSON; uvicorn logs through structlog; one http.request per call."""
        emulator = GsmEmulator()
        emulator.start()
        try:
            emulator.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
            url = f"sqlite:///{tmp_path}/omni.db"
            env_values = {
                "OMNI_ENVIRONMENT": "test",
                "GCP_PROJECT_ID": PROJECT,
                "OMNI_GSM_ENDPOINT": emulator.address,
                "OMNI_DATABASE_URL": url,
                "OMNI_AUTH_HS256_SECRET": HS256_SECRET,
                "OMNI_LOG_FORMAT": "json",
            }
            await prepare_database(url, load_settings(**env_values), seed=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
            env.update(env_values)
            port = free_port()
            proc = subprocess.Popen(
                [CLI, "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            token = mint_hs256_token(
                secret=HS256_SECRET,
                scopes=("omni-secrets:read",),
                subject="log-test",
                audience="omni-secrets",
                now=datetime.now(UTC),
                ttl=timedelta(minutes=5),
            )
            calls: dict[str, tuple[str, dict[str, str]]] = {
                "req-status": (
                    "/ops/apex-omni/secrets/status",
                    {"Authorization": f"Bearer {token}"},
                ),
                "req-metrics": ("/metrics", {}),
                "req-readyz": ("/readyz", {}),
                "req-missing": ("/no/such/route", {}),
                "req-unauth": ("/ops/apex-omni/secrets/status", {}),
            }
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    await wait_until_up(client, proc)
                    statuses = {}
                    for request_id, (path, headers) in calls.items():
                        response = await client.get(
                            path, headers={**headers, "X-Request-ID": request_id}
                        )
                        statuses[request_id] = response.status_code
                        assert response.headers["x-request-id"] == request_id
            finally:
                proc.terminate()
                out, err = await asyncio.to_thread(proc.communicate, timeout=30)
        finally:
            emulator.stop()

        assert statuses == {
            "req-status": 200,
            "req-metrics": 200,
            "req-readyz": 200,
            "req-missing": 404,
            "req-unauth": 401,
        }
        assert "Traceback" not in err
        lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines() if line]
        events = [line["event"] for line in lines]
        uvicorn_lines = [
            line for line in lines if str(line.get("logger", "")).startswith("uvicorn")
        ]
        assert any(e.startswith("Uvicorn running on http://127.0.0.1:") for e in events)
        assert "Application startup complete." in events
        assert "Finished server process" in " ".join(events)
        assert uvicorn_lines and all("timestamp" in line for line in uvicorn_lines)
        requests = [line for line in lines if line["event"] == "http.request"]
        assert all(line.get("request_id") for line in requests)
        for request_id in calls:
            mine = [line for line in requests if line["request_id"] == request_id]
            assert len(mine) == 1, request_id
            assert mine[0]["status"] == statuses[request_id]
        assert {line["route"] for line in requests if line["request_id"] == "req-missing"} == {
            "unmatched"
        }
        for canary in CANARIES:
            assert canary not in out
            assert canary not in err
