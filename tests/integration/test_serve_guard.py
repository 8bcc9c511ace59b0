"""The environment guard through the real ``omni-secrets serve`` process (contract section 2)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"
FAKE_HS256 = "fake-hs256-secret-for-guard-tests"


def serve_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env.update(
        OMNI_ENVIRONMENT="development",
        GCP_PROJECT_ID="omni-dev",
        OMNI_AUTH_HS256_SECRET=FAKE_HS256,
        OMNI_DATABASE_URL="sqlite:///:memory:",
    )
    env.update(values)
    return {k: v for k, v in env.items() if v != ""}


def run_refused(port: int, cwd: Path | None = None, **values: str) -> str:
    """Run serve expecting a refusal; return its stderr after checking nothing listened."""
    proc = subprocess.run(
        [CLI, "serve", "--port", str(port)],
        env=serve_env(**values),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return lines[0]


class TestServeGuard:
    def test_staging_on_production_project_refused(self) -> None:
        """staging + acme-prod exits non-zero before listening, naming both."""
        line = run_refused(free_port(), OMNI_ENVIRONMENT="staging", GCP_PROJECT_ID="acme-prod")
        assert "staging" in line
        assert "acme-prod" in line

    def test_production_on_non_production_project_refused(self) -> None:
        """production + a non-production project is refused."""
        line = run_refused(
            free_port(),
            OMNI_ENVIRONMENT="production",
            GCP_PROJECT_ID="acme-staging",
            OMNI_AUTH_HS256_SECRET="",
            OMNI_AUTH_JWKS_URL="https://idp.example.test/jwks.json",
        )
        assert "acme-staging" in line

    def test_production_with_emulator_endpoint_refused(self) -> None:
        """production + OMNI_GSM_ENDPOINT is refused."""
        line = run_refused(
            free_port(),
            OMNI_ENVIRONMENT="production",
            GCP_PROJECT_ID="acme-prod",
            OMNI_AUTH_HS256_SECRET="",
            OMNI_AUTH_JWKS_URL="https://idp.example.test/jwks.json",
            OMNI_GSM_ENDPOINT="127.0.0.1:8085",
        )
        assert "OMNI_GSM_ENDPOINT" in line

    def test_production_with_hs256_refused(self) -> None:
        """production + OMNI_AUTH_HS256_SECRET is refused without printing the secret."""
        line = run_refused(
            free_port(),
            OMNI_ENVIRONMENT="production",
            GCP_PROJECT_ID="acme-prod",
            OMNI_AUTH_JWKS_URL="https://idp.example.test/jwks.json",
        )
        assert "OMNI_AUTH_HS256_SECRET" in line
        assert FAKE_HS256 not in line

    @pytest.mark.parametrize("problem", ["missing", "short", "unreadable", "not-base64"])
    def test_production_integrity_key_problems_refused(self, tmp_path: Path, problem: str) -> None:
        """production with no, a short, an unreadable or a garbled key file: one line, no serve."""
        path = tmp_path / "integrity.key"
        if problem == "short":
            path.write_text("ZmFrZS1zaG9ydC1rZXk=\n")  # base64 of 14 bytes
        elif problem == "unreadable":
            path = tmp_path / "does-not-exist.key"
        elif problem == "not-base64":
            path.write_text("fake key that is not base64!\n")
        values = {
            "OMNI_ENVIRONMENT": "production",
            "GCP_PROJECT_ID": "acme-prod",
            "OMNI_AUTH_HS256_SECRET": "",
            "OMNI_AUTH_JWKS_URL": "https://idp.example.test/jwks.json",
            "OMNI_AUTH_ISSUER": "https://idp.example.test",
            "OMNI_DATABASE_URL": "postgresql+psycopg://omni@127.0.0.1:9/omni",
        }
        if problem != "missing":
            values["OMNI_INTEGRITY_KEY_FILE"] = str(path)
        line = run_refused(free_port(), **values)
        assert "OMNI_INTEGRITY_KEY_FILE" in line

    def test_cache_ttl_out_of_range_refused(self) -> None:
        """An out-of-range OMNI_CACHE_TTL_SECONDS is refused, naming the variable and value."""
        line = run_refused(free_port(), OMNI_CACHE_TTL_SECONDS="1")
        assert "OMNI_CACHE_TTL_SECONDS" in line

    def test_staging_on_project_number_refused(self) -> None:
        """A project number in staging is refused unless listed as non-production."""
        line = run_refused(free_port(), OMNI_ENVIRONMENT="staging", GCP_PROJECT_ID="123456789012")
        assert "OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS" in line

    def test_every_broken_rule_in_one_line(self) -> None:
        """A malformed value and five production rules: all named on the one stderr line."""
        line = run_refused(
            free_port(),
            OMNI_ENVIRONMENT="production",
            GCP_PROJECT_ID="acme-prod",
            OMNI_CACHE_TTL_SECONDS="1",
            OMNI_AUTH_HS256_SECRET="short-fake",
            OMNI_AUTH_JWKS_URL="http://idp.example.test/jwks.json",
            OMNI_APEX_BASE_URL="http://apex.example.test",
            OMNI_PAGERDUTY_EVENTS_URL="http://pd.example.test/v2/enqueue",
        )
        for variable in (
            "OMNI_CACHE_TTL_SECONDS",
            "OMNI_AUTH_HS256_SECRET",
            "OMNI_AUTH_JWKS_URL",
            "OMNI_APEX_BASE_URL",
            "OMNI_PAGERDUTY_EVENTS_URL",
            "OMNI_AUTH_ISSUER",
            "OMNI_DATABASE_URL",
        ):
            assert variable in line
        assert "short-fake" not in line

    def test_never_migrated_database_refused(self, tmp_path: Path) -> None:
        """A database that answers but has no schema: one line saying so, nothing served."""
        line = run_refused(free_port(), OMNI_DATABASE_URL=f"sqlite:///{tmp_path}/empty.db")
        assert "never been migrated" in line
        assert "omni-secrets db upgrade" in line

    def test_a_refused_start_creates_no_database_file(self, tmp_path: Path) -> None:
        """Issue 26: a refused serve left an empty ./omni-secrets.db that later commands took for
        the real one. Neither the default URL nor a named file is created by a refusal."""
        line = run_refused(free_port(), cwd=tmp_path, OMNI_DATABASE_URL="")
        assert "never been migrated" in line
        named = tmp_path / "named.db"
        run_refused(free_port(), cwd=tmp_path, OMNI_DATABASE_URL=f"sqlite:///{named}")
        run_refused(  # a configuration error
            free_port(), cwd=tmp_path, OMNI_DATABASE_URL=f"sqlite:///{named}",
            OMNI_CACHE_TTL_SECONDS="0",
        )  # fmt: skip
        assert sorted(p.name for p in tmp_path.iterdir()) == []

    def test_a_refused_dev_creates_no_database_file(self, tmp_path: Path) -> None:
        """`dev` refused for a configuration error leaves no database in its data dir."""
        proc = subprocess.run(
            [CLI, "dev", "--port", str(free_port()), "--data-dir", str(tmp_path / "dev")],
            env=serve_env(OMNI_DATABASE_URL="", OMNI_CACHE_TTL_SECONDS="0"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "OMNI_CACHE_TTL_SECONDS" in proc.stderr
        assert not list(tmp_path.rglob("*.db"))

    def test_unreachable_database_still_starts(self) -> None:
        """An unreachable database is not refused (the service heals when it returns): only a
        database that answers without a schema is."""
        assert_serves(free_port(), "postgresql+psycopg://nobody@127.0.0.1:1/none")

    def test_valid_development_config_starts(self, tmp_path: Path) -> None:
        """A valid development configuration on a migrated database serves /healthz with 200."""
        url = f"sqlite:///{tmp_path}/omni.db"
        subprocess.run(
            [CLI, "db", "upgrade"], env=serve_env(OMNI_DATABASE_URL=url), check=True, timeout=120
        )
        assert_serves(free_port(), url)


def assert_serves(port: int, database_url: str) -> None:
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=serve_env(OMNI_DATABASE_URL=database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"serve did not come up: {output}")
                time.sleep(0.2)
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
