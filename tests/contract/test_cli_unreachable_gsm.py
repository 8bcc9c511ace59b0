"""An unreachable GSM endpoint: CLI commands say so once, without the adapter's retry log lines
(issue 26, "also from the same run"). Through the installed command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.contract.test_dev_cli_end_to_end import CLI, clean_environment
from tests.ports import free_port

FAKE_HS256 = "fake-unreachable-hs256-secret-32-bytes-long"  # pragma: allowlist secret


def _env(tmp_path: Path) -> dict[str, str]:
    return clean_environment() | {
        "OMNI_ENVIRONMENT": "test",
        "GCP_PROJECT_ID": "omni-unreachable-test",
        "OMNI_GSM_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'omni.db'}",
        "OMNI_AUTH_HS256_SECRET": FAKE_HS256,
    }


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_gsm_versions_list_fails_in_one_line(tmp_path: Path) -> None:
    """exit 3, nothing on stdout, exactly one line on stderr, no `gsm.retry_scheduled`."""
    done = _run(_env(tmp_path), "gsm", "versions", "list", "--secret-type", "api_key")
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "UNAVAILABLE" in done.stderr and "retry" not in done.stderr


def test_db_seed_reports_without_retry_lines(tmp_path: Path) -> None:
    """db seed with GSM down: its report, one line per type, and no retry log lines."""
    env = _env(tmp_path)
    assert _run(env, "db", "upgrade").returncode == 0
    done = _run(env, "db", "seed")
    assert done.returncode == 0, done.stderr
    assert "retry" not in done.stdout + done.stderr
    assert done.stdout.count("GSM unreachable") == 5
    assert done.stderr == ""
