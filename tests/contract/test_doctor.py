"""``omni-secrets doctor`` through the installed command (contract section 16).

A dev-like setup per test: the GSM emulator (real gRPC) seeded like ``dev``, a database
migrated and seeded by the CLI (SQLite, and PostgreSQL), an integrity key and a break-glass
pair. Then each failure mode: an unmigrated database, a missing `current` alias, a wrong
break-glass pair, permissions not held, an integrity key that did not sign the head, an
unreachable GSM (a fail within the bound, one line per check, no retry log), and a
configuration that cannot be loaded (exit 3).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from omni_secrets.bootstrap.database import create_integrity_key_file, open_database
from omni_secrets.domain.break_glass import generate_private_key
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.emulator import GsmEmulator
from omni_secrets.emulator.seed import Seed
from tests.contract.test_dev_cli_end_to_end import CLI, clean_environment
from tests.ports import free_port

PROJECT = "omni-doctor-test"
FAKE_VALUES = {
    "api-key": "fake-doctor-api-key",
    "api-secret": "fake-doctor-api-secret",  # pragma: allowlist secret
    "api-passphrase": "fake-doctor-api-passphrase",
    "zk-seeds": "fake-doctor-zk-seeds",
    "zk-l2-key": "fake-doctor-zk-l2-key",
}
STATUSES = {"ok", "warn", "fail"}
FAKE_HS256 = "fake-doctor-hs256-secret-of-at-least-32-bytes"  # pragma: allowlist secret


@dataclass
class Doctor:
    code: int
    out: str
    err: str
    seconds: float

    def lines(self) -> dict[str, str]:
        """Check name -> status, from the text output."""
        found = {}
        for line in self.out.splitlines():
            status, rest = line.split(None, 1)
            assert status in STATUSES, line
            found[rest.split("  ", 1)[0]] = status
        return found

    def line(self, name: str) -> str:
        return next(x for x in self.out.splitlines() if x.split(None, 1)[1].startswith(name + " "))


@dataclass
class Setup:
    tmp: Path
    emulator: GsmEmulator
    env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args],
            env=self.env | extra,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def doctor(self, *args: str, **extra: str) -> Doctor:
        started = time.monotonic()
        done = self.cli("doctor", *args, **extra)
        return Doctor(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def prepare_database(self, *, audit_rows: int = 2) -> None:
        """Migrate and seed through the CLI, then append keyed audit rows as `serve` would."""
        for step in (("db", "upgrade"), ("db", "seed")):
            done = self.cli(*step)
            assert done.returncode == 0, done.stderr
        asyncio.run(self._append_audit_rows(audit_rows))

    async def _append_audit_rows(self, count: int) -> None:
        from omni_secrets.adapters.integrity_keys import load_keyring

        keyring = load_keyring((self.env["OMNI_INTEGRITY_KEY_FILE"],))
        async with open_database(self.env["OMNI_DATABASE_URL"], keyring=keyring) as factory:
            for _ in range(count):
                async with factory() as uow:
                    await uow.audit.append(
                        NewAccessEvent(
                            occurred_at=datetime.now(UTC),
                            secret_type="api_key",  # pragma: allowlist secret
                            action="status_view",
                            actor="fake-doctor-test",
                            result="success",
                        )
                    )
                    await uow.commit()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    emulator = GsmEmulator()
    address = emulator.start()
    secret_ids = {f"apex-omni-{name}": value for name, value in FAKE_VALUES.items()}
    emulator.apply_seed(
        Seed(
            project_id=PROJECT,
            secrets={secret_id: [value] for secret_id, value in secret_ids.items()},
            aliases={secret_id: {"current": 1} for secret_id in secret_ids},
        )
    )
    key_file = tmp_path / "integrity.key"
    create_integrity_key_file(key_file)
    private_b64, public_b64, _ = generate_private_key()
    private_file = tmp_path / "breakglass.key"
    private_file.write_text(private_b64 + "\n")
    private_file.chmod(0o600)
    env = clean_environment() | {
        "OMNI_ENVIRONMENT": "test",
        "GCP_PROJECT_ID": PROJECT,
        "OMNI_GSM_ENDPOINT": address,
        "OMNI_DATABASE_URL": f"sqlite:///{tmp_path / 'omni.db'}",
        "OMNI_AUTH_HS256_SECRET": FAKE_HS256,
        "OMNI_INTEGRITY_KEY_FILE": str(key_file),
        "OMNI_BREAKGLASS_PUBLIC_KEY": public_b64,
        "OMNI_BREAKGLASS_PRIVATE_KEY_FILE": str(private_file),
    }
    yield Setup(tmp_path, emulator, env)
    emulator.stop()


def _assert_healthy(result: Doctor) -> dict[str, str]:
    assert result.code == 0, result.out + result.err
    lines = result.lines()
    assert "fail" not in lines.values(), result.out
    for name in (
        "config required variables",
        "database reachable",
        "database migrated",
        "database seeded",
        "gsm apex-omni-api-key",
        "gsm apex-omni-zk-l2-key",
        "gsm permissions",
        "gsm schedule",
        "pubsub",
        "jwks",
        "break-glass",
        "integrity",
    ):
        assert name in lines, (name, result.out)
    assert lines["gsm apex-omni-api-key"] == "ok"
    assert lines["break-glass"] == "ok"
    assert lines["gsm schedule"] == "warn"  # the emulator's secrets have no topics
    assert "[fix: " in result.line("gsm schedule")
    for value in FAKE_VALUES.values():
        assert value not in result.out + result.err
    return lines


class TestHealthy:
    def test_sqlite_all_ok_and_json(self, setup: Setup) -> None:
        """A dev-like setup: exit 0, one line per check; --json has the documented shape."""
        setup.prepare_database()
        result = setup.doctor()
        lines = _assert_healthy(result)
        assert lines["integrity"] == "ok" and "verifies the audit head" in result.line("integrity")
        as_json = setup.doctor("--json")
        assert as_json.code == 0
        body: dict[str, Any] = json.loads(as_json.out)
        assert set(body) == {"checks", "ok"} and body["ok"] is True
        assert [set(c) for c in body["checks"]] == [
            {"name", "status", "detail", "fix"} for _ in body["checks"]
        ]
        assert [c["name"] for c in body["checks"]] == list(lines)

    @pytest.mark.postgres
    def test_postgresql_all_ok(self, setup: Setup, postgres_url: str) -> None:
        """The same on PostgreSQL; the owner role is allowed outside production (and said)."""
        setup.env["OMNI_DATABASE_URL"] = postgres_url
        setup.prepare_database()
        result = setup.doctor()
        lines = _assert_healthy(result)
        assert lines["database role"] == "ok"
        assert "allowed outside production" in result.line("database role")


class TestFailures:
    @pytest.mark.postgres
    def test_production_served_by_the_table_owner(self, setup: Setup, postgres_url: str) -> None:
        """In production, a URL whose role owns the audit table (here a superuser): the role
        check fails with the runtime-role fix (the other groups are left out)."""
        setup.env["OMNI_DATABASE_URL"] = postgres_url
        setup.prepare_database()
        result = setup.doctor(
            *("--skip", "config", "--skip", "gsm", "--skip", "integrity"),
            OMNI_ENVIRONMENT="production",
            GCP_PROJECT_ID="omni-doctor-prod",
        )
        assert result.code == 1, result.out
        assert result.lines()["database role"] == "fail"
        assert "db grants --role omni_runtime" in result.line("database role")
        assert not any(name.startswith(("config ", "gsm ")) for name in result.lines())

    def test_missing_sqlite_file_is_reported_not_created(self, setup: Setup) -> None:
        """No database file: fail with the fix, and doctor creates none."""
        result = setup.doctor()
        assert result.code == 1
        assert result.lines()["database reachable"] == "fail"
        assert "db upgrade" in result.line("database reachable")
        assert not (setup.tmp / "omni.db").exists()

    def test_unmigrated_database(self, setup: Setup) -> None:
        """An empty database: 'database migrated' fails with `omni-secrets db upgrade`."""
        sqlite3.connect(setup.tmp / "omni.db").close()
        result = setup.doctor()
        assert result.code == 1
        assert result.lines()["database migrated"] == "fail"
        assert "[fix: omni-secrets db upgrade" in result.line("database migrated")

    def test_missing_current_alias(self, setup: Setup) -> None:
        """A secret without `current`: its line fails naming the alias and how to set it."""
        setup.prepare_database()
        setup.emulator.set_aliases(PROJECT, "apex-omni-zk-seeds", {})
        result = setup.doctor()
        assert result.code == 1
        assert result.lines()["gsm apex-omni-zk-seeds"] == "fail"
        line = result.line("gsm apex-omni-zk-seeds")
        assert "no `current` alias" in line and "--update-version-aliases=current=" in line
        assert result.lines()["gsm apex-omni-api-key"] == "ok"

    def test_wrong_break_glass_pair(self, setup: Setup) -> None:
        """A public key that is not the private key's half: break-glass fails."""
        setup.prepare_database()
        _, other_public, _ = generate_private_key()
        result = setup.doctor(OMNI_BREAKGLASS_PUBLIC_KEY=other_public)
        assert result.code == 1
        assert result.lines()["break-glass"] == "fail"
        assert "[fix: " in result.line("break-glass")
        private = (setup.tmp / "breakglass.key").read_text().strip()
        assert private not in result.out + result.err

    def test_permissions_not_held(self, setup: Setup) -> None:
        """TestIamPermissions answers a subset: 'gsm permissions' fails naming what lacks."""
        setup.prepare_database()
        setup.emulator.granted_permissions = frozenset({"secretmanager.versions.access"})
        result = setup.doctor()
        assert result.code == 1
        assert result.lines()["gsm permissions"] == "fail"
        assert "secretmanager.versions.list" in result.line("gsm permissions")

    def test_integrity_key_that_did_not_sign_the_head(self, setup: Setup) -> None:
        """Another key than the one that signed the audit head: integrity fails."""
        setup.prepare_database()
        other = setup.tmp / "other.key"
        create_integrity_key_file(other)
        result = setup.doctor(OMNI_INTEGRITY_KEY_FILE=str(other))
        lines = result.lines()
        if "no audit events yet" in result.line("integrity"):
            pytest.fail("the seeded database has no audit head to check: " + result.out)
        assert lines["integrity"] == "fail", result.out
        assert result.code == 1

    def test_unreachable_gsm_fails_within_the_bound(self, setup: Setup) -> None:
        """A dead GSM endpoint: every GSM check fails, one line each, no retry log lines,
        well within the 5 s bound per check (they run concurrently)."""
        setup.prepare_database()
        dead = f"127.0.0.1:{free_port()}"
        result = setup.doctor(OMNI_GSM_ENDPOINT=dead)
        assert result.code == 1
        lines = result.lines()
        gsm = {name: status for name, status in lines.items() if name.startswith("gsm ")}
        assert set(gsm.values()) == {"fail"} and len(gsm) == 7, result.out
        assert result.seconds < 30, result.seconds
        assert "retry" not in (result.out + result.err).lower()
        assert result.err == ""

    def test_unloadable_configuration_is_exit_3(self, setup: Setup) -> None:
        """A malformed value: doctor cannot run: exit 3, one line on stderr, nothing else."""
        result = setup.doctor(OMNI_CACHE_TTL_SECONDS="fake-not-a-number")
        assert result.code == 3
        assert result.out == ""
        assert result.err.count("\n") == 1 and "OMNI_CACHE_TTL_SECONDS" in result.err

    def test_guard_violation_is_a_fail_line(self, setup: Setup) -> None:
        """A rule of the startup guard broken (no auth mode): its config line fails."""
        setup.prepare_database()
        env_without = setup.env.copy()
        del env_without["OMNI_AUTH_HS256_SECRET"]
        setup.env = env_without
        result = setup.doctor()
        assert result.code == 1
        assert result.lines()["config auth mode configured"] == "fail"

    def test_unknown_skip_group_is_exit_2(self, setup: Setup) -> None:
        """--skip takes the documented groups only."""
        result = setup.doctor("--skip", "fake-group")
        assert result.code == 2 and "fake-group" in result.err
