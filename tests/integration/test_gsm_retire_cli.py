"""``omni-secrets gsm versions retire`` over real gRPC to the emulator (contract section 15)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from omni_secrets.cli import main
from omni_secrets.emulator import GsmEmulator

PROJECT = "omni-retire"
SECRET_ID = "apex-omni-api-key"


@pytest.fixture
def emulator() -> Iterator[GsmEmulator]:
    server = GsmEmulator()
    server.start()
    server.seed(PROJECT, {SECRET_ID: ["fake-v1", "fake-v2", "fake-v3", "fake-v4"]})
    yield server
    server.stop()


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    emulator: GsmEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    """The console entry point (exit codes mapped as for an operator), output captured."""
    monkeypatch.setenv("GCP_PROJECT_ID", PROJECT)
    monkeypatch.setenv("OMNI_GSM_ENDPOINT", emulator.address)
    monkeypatch.delenv("OMNI_GSM_SECRET_PREFIX", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(["gsm", "versions", "retire", *args])
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    return invoke


def states(emulator: GsmEmulator) -> list[str]:
    return [emulator.version_state(PROJECT, SECRET_ID, n) for n in range(1, 5)]


def test_retire_disables_unaliased_versions_and_is_idempotent(
    emulator: GsmEmulator, run: Run
) -> None:
    emulator.set_aliases(PROJECT, SECRET_ID, {"current": 3, "previous": 2})
    code, out, err = run("--secret-type", "api_key", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "secretType": "api_key",
        "gsmSecretId": SECRET_ID,
        "aliases": {"current": "3", "previous": "2"},
        "disabled": ["1", "4"],
        "destroyed": [],
    }
    assert states(emulator) == ["DISABLED", "ENABLED", "ENABLED", "DISABLED"]
    code, out, _ = run("--secret-type", "api_key")
    assert code == 0 and "nothing to retire" in out


def test_retire_destroy_never_touches_aliased_versions(emulator: GsmEmulator, run: Run) -> None:
    emulator.set_aliases(PROJECT, SECRET_ID, {"current": 4})
    code, out, err = run("--secret-type", "api_key", "--destroy")
    assert code == 0, err
    assert "destroyed apex-omni-api-key versions 1, 2, 3 (kept current=4)" in out
    assert states(emulator) == ["DESTROYED", "DESTROYED", "DESTROYED", "ENABLED"]


def test_retire_refuses_without_current(emulator: GsmEmulator, run: Run) -> None:
    code, out, err = run("--secret-type", "api_key", "--destroy")
    assert code == 1 and "no 'current' alias" in err and out == ""
    assert states(emulator) == ["ENABLED"] * 4
    assert emulator.call_count("DestroySecretVersion") == 0


def test_bad_secret_type_is_usage_error(run: Run) -> None:
    code, _, err = run("--secret-type", "no_such_type")
    assert code == 2, err


def test_retire_destroy_with_a_ttl_schedules_once(emulator: GsmEmulator, run: Run) -> None:
    """Where the secret has a destroy TTL the versions wait DISABLED; a rerun does nothing."""
    from datetime import timedelta

    from google.cloud.secretmanager_v1.types import resources

    emulator.update_secret(
        resources.Secret(
            name=f"projects/{PROJECT}/secrets/{SECRET_ID}",
            version_aliases={"current": 4, "previous": 3},
            version_destroy_ttl=timedelta(days=7),
        ),
        ["version_aliases", "version_destroy_ttl"],
    )
    code, out, err = run("--secret-type", "api_key", "--destroy", "--json")
    assert code == 0, err
    assert json.loads(out)["destroyed"] == ["1", "2"]
    assert states(emulator) == ["DISABLED", "DISABLED", "ENABLED", "ENABLED"]
    code, out, err = run("--secret-type", "api_key", "--destroy", "--json")
    assert code == 0, err
    assert json.loads(out)["destroyed"] == []
    assert emulator.call_count("DestroySecretVersion") == 2
