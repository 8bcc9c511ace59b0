"""The auth policy against the real ``omni-secrets serve`` process (contract section 14).

The process runs with ``OMNI_AUTH_PROVIDER=google`` (its JWKS pointed at a local
:class:`FakeIdentityProvider`) and ``OMNI_AUTH_POLICY_FILE``. Covered here: ``SIGHUP`` reloads the
file (a grant added takes effect; a malformed file keeps the old policy and logs why; the
process survives both), startup refuses an invalid file with one line naming the file and the
entry, and the CLI's ``--id-token-audience`` / ``OMNI_ID_TOKEN_AUDIENCE`` fetches a Google ID
token with google-auth (a service account key file whose token endpoint is the fake provider).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_secrets.config import load_settings
from omni_secrets.emulator import GsmEmulator
from omni_secrets.testing.identity import FakeIdentityProvider, SigningKey
from tests.contract.conftest import CANARIES, FAKE_VALUES, PROJECT, prepare_database
from tests.contract.serving import CLI
from tests.ports import free_port

STATUS = "/ops/apex-omni/secrets/status"
WORKLOAD = "trading-engine@fake-project.iam.gserviceaccount.com"
NEWCOMER = "oncall-bot@fake-project.iam.gserviceaccount.com"
POLICY = f"""\
grants:
  - principal: email:{WORKLOAD}
    scopes: [omni-secrets:read]
"""
WITH_NEWCOMER = POLICY + f"  - principal: email:{NEWCOMER}\n    scopes: [omni-secrets:read]\n"


def child_env(values: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMNI_", "GCP_", "GOOGLE_", "GCE_")) or k == "OMNI_TEST_DATABASE_URL"
    }
    env.update(values)
    return env


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    idp: FakeIdentityProvider
    policy: Path
    stdout: list[str] = field(default_factory=list)

    def token(self, email: str) -> str:
        return self.idp.google_id_token(self.idp.keys[0], email=email, audience="omni-secrets")

    async def status_code(self, email: str) -> int:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.get(
                STATUS, headers={"Authorization": f"Bearer {self.token(email)}"}
            )
        return response.status_code

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.stdout) if line.startswith("{")]

    async def wait_for_event(self, name: str, after: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = [e for e in self.events()[after:] if e.get("event") == name]
            if found:
                return found[0]
            assert self.proc.poll() is None, f"serve exited with {self.proc.returncode}"
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {name!r} log line within {timeout} s")


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider([SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")])
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
async def served(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, idp: FakeIdentityProvider
) -> AsyncIterator[Served]:
    emulator = GsmEmulator()
    emulator.start()
    emulator.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
    policy = tmp_path / "auth-policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    url = f"sqlite:///{tmp_path}/omni.db"
    values = {
        "OMNI_ENVIRONMENT": "test",
        "GCP_PROJECT_ID": PROJECT,
        "OMNI_GSM_ENDPOINT": emulator.address,
        "OMNI_DATABASE_URL": url,
        "OMNI_AUTH_PROVIDER": "google",
        "OMNI_AUTH_JWKS_URL": idp.jwks_url,
        "OMNI_AUTH_POLICY_FILE": str(policy),
        "OMNI_LOG_FORMAT": "json",
    }
    await prepare_database(url, load_settings(**values), seed=True)
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=child_env(values),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}", proc, idp, policy)
    assert proc.stdout is not None
    reader = threading.Thread(
        target=lambda: served.stdout.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        await wait_until_up(served)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        err = await asyncio.to_thread(proc.stderr.read)  # type: ignore[union-attr]
        await asyncio.to_thread(proc.wait, 30)
        reader.join(timeout=10)
        emulator.stop()
        assert "Traceback" not in err
        for canary in CANARIES:
            assert all(canary not in line for line in served.stdout)


async def wait_until_up(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        for _ in range(300):
            assert served.proc.poll() is None, f"serve exited with {served.proc.returncode}"
            try:
                await client.get("/healthz")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("serve did not come up")


async def test_sighup_adds_a_grant_and_a_malformed_reload_keeps_the_old_policy(
    served: Served,
) -> None:
    """SIGHUP after adding a grant: the newcomer goes from 403 to 200. SIGHUP after breaking the
    file: the error is logged with the entry at fault, both grants still hold, and the process
    lives on."""
    assert await served.status_code(WORKLOAD) == 200
    assert await served.status_code(NEWCOMER) == 403

    served.policy.write_text(WITH_NEWCOMER, encoding="utf-8")
    mark = len(served.events())
    served.proc.send_signal(signal.SIGHUP)
    reloaded = await served.wait_for_event("auth_policy.reloaded", mark)
    assert reloaded["grants"] == 2
    assert await served.status_code(NEWCOMER) == 200

    served.policy.write_text(
        WITH_NEWCOMER + "  - principal: intruder@example.com\n    scopes: [omni-secrets:read]\n",
        encoding="utf-8",
    )
    mark = len(served.events())
    served.proc.send_signal(signal.SIGHUP)
    rejected = await served.wait_for_event("auth_policy.reload_rejected", mark)
    assert rejected["level"] == "error"
    assert "grants[2] ('intruder@example.com'): principal must be" in rejected["reason"]
    assert rejected["grants_in_force"] == 2
    assert await served.status_code(NEWCOMER) == 200
    assert await served.status_code(WORKLOAD) == 200
    assert await served.status_code("intruder@example.com") == 403

    served.policy.write_text("grants: [\n", encoding="utf-8")
    mark = len(served.events())
    served.proc.send_signal(signal.SIGHUP)
    rejected = await served.wait_for_event("auth_policy.reload_rejected", mark)
    assert "invalid YAML at line" in rejected["reason"]
    assert await served.status_code(NEWCOMER) == 200

    # A repeated key (section 17): PyYAML alone would keep the second principal, granting the
    # intruder what the first line gave the workload. Refused; the policy in force stays.
    served.policy.write_text(
        f"grants:\n  - principal: email:{WORKLOAD}\n    principal: email:intruder@example.com\n"
        "    scopes: [omni-secrets:read]\n",
        encoding="utf-8",
    )
    mark = len(served.events())
    served.proc.send_signal(signal.SIGHUP)
    rejected = await served.wait_for_event("auth_policy.reload_rejected", mark)
    assert "duplicate key 'principal'" in rejected["reason"]
    assert await served.status_code("intruder@example.com") == 403
    assert await served.status_code(NEWCOMER) == 200

    # Four SIGHUPs later the process is still the one that started, and still serving.
    assert served.proc.poll() is None
    assert [e["event"] for e in served.events()].count("Application startup complete.") == 1


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def no_metadata_server() -> dict[str, str]:
    # google-auth falls back to the GCE metadata server; point it at a closed loopback port so
    # "no credentials" is answered at once instead of after network timeouts.
    closed = f"127.0.0.1:{free_port()}"
    return {"GCE_METADATA_HOST": closed, "GCE_METADATA_IP": closed}


class TestCliIdToken:
    async def test_id_token_audience_flag_and_variable(
        self, served: Served, tmp_path: Path
    ) -> None:
        """With a service account key as ADC, ``--id-token-audience`` (or the variable) fetches
        a Google ID token for the audience; the service verifies it and the policy grants its
        email read. A service account the policy does not name gets FORBIDDEN (exit 1)."""
        key_file = served.idp.write_service_account_file(tmp_path / "sa.json", email=WORKLOAD)
        env = child_env({"GOOGLE_APPLICATION_CREDENTIALS": str(key_file), **no_metadata_server()})

        code, out, err = await run_cli(
            "status", "--url", served.url, "--id-token-audience", "omni-secrets", "--json", env=env
        )
        assert (code, err) == (0, "")
        assert json.loads(out)["cache"]["state"] == "ready"
        assert served.idp.token_requests == ["omni-secrets"]

        code, out, err = await run_cli(
            "status",
            "--url",
            served.url,
            "--json",
            env={**env, "OMNI_ID_TOKEN_AUDIENCE": "omni-secrets"},
        )
        assert (code, err) == (0, "")
        assert served.idp.token_requests == ["omni-secrets", "omni-secrets"]

        # A token for another audience is fetched fine and refused by the service.
        code, out, err = await run_cli(
            "status", "--url", served.url, "--id-token-audience", "other-service", env=env
        )
        assert code == 1
        assert err.startswith("omni-secrets: UNAUTHENTICATED: token audience not accepted")

        stranger_file = served.idp.write_service_account_file(
            tmp_path / "stranger.json", email="stranger@fake-project.iam.gserviceaccount.com"
        )
        stranger_env = {**env, "GOOGLE_APPLICATION_CREDENTIALS": str(stranger_file)}
        code, out, err = await run_cli(
            "status", "--url", served.url, "--id-token-audience", "omni-secrets", env=stranger_env
        )
        assert code == 1
        assert err.startswith("omni-secrets: FORBIDDEN: token lacks scope 'omni-secrets:read'")
        assert len(err.splitlines()) == 1

    async def test_without_credentials_and_bad_combinations(self, tmp_path: Path) -> None:
        """No ADC that can mint ID tokens → exit 2, one line saying what to do; both --token and
        --id-token-audience → exit 2; neither → exit 2 naming both ways. Nothing is sent."""
        env = child_env(no_metadata_server())
        url = f"http://127.0.0.1:{free_port()}"
        cases = [
            (
                ("status", "--url", url, "--id-token-audience", "omni-secrets"),
                "cannot get a Google ID token for audience 'omni-secrets': no Application Default "
                "Credentials that can mint ID tokens",
            ),
            (
                ("refresh", "--url", url, "--token", "x", "--id-token-audience", "omni-secrets"),
                "give either --token or --id-token-audience, not both",
            ),
            (
                ("break-glass", "revoke", "--url", url, "ovr-1"),
                "no bearer token: give --token TOKEN, or --id-token-audience AUD (or "
                "OMNI_ID_TOKEN_AUDIENCE)",
            ),
        ]
        for args, expected in cases:
            code, out, err = await run_cli(*args, env=env)
            assert code == 2, (args, err)
            assert out == ""
            assert err.startswith(f"omni-secrets: {expected}"), err
            assert len(err.splitlines()) == 1
            assert "Traceback" not in err

    async def test_broken_key_file_is_one_line(self, tmp_path: Path) -> None:
        """A key file that is not a service account key: one line, no traceback."""
        bad = tmp_path / "sa.json"
        bad.write_text('{"type": "service_account"}', encoding="utf-8")
        env = child_env({"GOOGLE_APPLICATION_CREDENTIALS": str(bad), **no_metadata_server()})
        code, _, err = await run_cli(
            "status", "--url", "http://127.0.0.1:9", "--id-token-audience", "aud", env=env
        )
        assert code in (2, 3)
        assert err.startswith("omni-secrets: cannot get a Google ID token for audience 'aud'")
        assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        pytest.param(
            "grants:\n  - principal: email:a@example.com\n    scopes: [omni-secrets:admin]\n",
            "grants[0] ('email:a@example.com'): unknown scope 'omni-secrets:admin'",
            id="unknown-scope",
        ),
        pytest.param(
            "grants:\n  - principal: a@example.com\n    scopes: [omni-secrets:read]\n",
            "grants[0] ('a@example.com'): principal must be sub:VALUE, email:VALUE or group:VALUE",
            id="no-prefix",
        ),
        pytest.param(
            "grants:\n"
            "  - {principal: 'group:ops', scopes: [omni-secrets:read]}\n"
            "  - {principal: 'group:ops', scopes: [omni-secrets:rotate]}\n",
            "grants[1]: duplicate principal 'group:ops'",
            id="duplicate",
        ),
        pytest.param("grants:\n  - {principal: sub:a\n", "invalid YAML at line", id="invalid-yaml"),
        pytest.param(
            "grants:\n  - principal: sub:a\n    scopes: [omni-secrets:read]\n"
            "    scopes: [omni-secrets:rotate]\n",
            "invalid YAML at line 4, column 5: duplicate key 'scopes'",
            id="duplicate-key",
        ),
    ],
)
async def test_serve_refuses_an_invalid_policy_file(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, text: str, entry: str
) -> None:
    """Startup refused: exit 2, one stderr line naming the variable, the file and the entry;
    nothing listens."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(text, encoding="utf-8")
    port = free_port()
    env = child_env(
        {
            "OMNI_ENVIRONMENT": "test",
            "GCP_PROJECT_ID": PROJECT,
            "OMNI_DATABASE_URL": f"sqlite:///{tmp_path}/omni.db",
            "OMNI_AUTH_PROVIDER": "google",
            "OMNI_AUTH_POLICY_FILE": str(policy),
        }
    )
    proc = await asyncio.create_subprocess_exec(
        CLI,
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("omni-secrets: configuration rejected: OMNI_AUTH_POLICY_FILE=")
    assert str(policy) in lines[0]
    assert entry in lines[0]
    assert "Uvicorn running" not in out.decode()
