"""`gsm versions list|disable|destroy` through the installed command, over real gRPC to the
emulator (contract section 16: aliases and the served version listed; an aliased version is not
disabled or destroyed without --force; a bad version argument is exit 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from omni_secrets.emulator import GsmEmulator
from tests.contract.serving import cli

PROJECT = "omni-versions"
SECRET_ID = "apex-omni-api-key"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[GsmEmulator]:
    server = GsmEmulator()
    server.start()
    server.seed(PROJECT, {SECRET_ID: ["fake-v1", "fake-v2", "fake-v3"]})
    server.set_aliases(PROJECT, SECRET_ID, {"current": 3, "previous": 2})
    monkeypatch.setenv("GCP_PROJECT_ID", PROJECT)
    monkeypatch.setenv("OMNI_GSM_ENDPOINT", server.address)
    monkeypatch.delenv("OMNI_GSM_SECRET_PREFIX", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    yield server
    server.stop()


def states(emulator: GsmEmulator) -> list[str]:
    return [emulator.version_state(PROJECT, SECRET_ID, n) for n in range(1, 4)]


class TestList:
    async def test_json_gives_each_version_its_aliases(self, emulator: GsmEmulator) -> None:
        code, out, err = await cli("gsm", "versions", "list", "--secret-type", "api_key", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["gsmSecretId"] == SECRET_ID
        assert doc["servedVersion"] == "3"
        assert [{k: v[k] for k in ("version", "state", "aliases")} for v in doc["versions"]] == [
            {"version": "3", "state": "ENABLED", "aliases": ["current"]},
            {"version": "2", "state": "ENABLED", "aliases": ["previous"]},
            {"version": "1", "state": "ENABLED", "aliases": []},
        ]
        assert all(set(v) == {"version", "state", "createTime", "aliases"} for v in doc["versions"])
        assert all(v["createTime"].endswith("Z") for v in doc["versions"])

    async def test_text_marks_aliases_and_the_served_version(self, emulator: GsmEmulator) -> None:
        code, out, err = await cli("gsm", "versions", "list", "--secret-type", "api_key")
        assert code == 0, err
        rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isdigit()}
        assert rows["3"][1] == "ENABLED" and rows["3"][3:] == ["current", "served"]
        assert rows["2"][3:] == ["previous"]
        assert rows["1"][3:] == ["-"]
        assert all(len(line) <= 80 for line in out.splitlines())
        assert "…" not in out

    async def test_without_current_says_what_is_served(self, emulator: GsmEmulator) -> None:
        emulator.set_aliases(PROJECT, SECRET_ID, {})
        code, out, err = await cli("gsm", "versions", "list", "--secret-type", "api_key")
        assert code == 0, err
        rows = [line for line in out.splitlines() if line[:1].isdigit()]
        assert len(rows) == 3 and not [row for row in rows if row.rstrip().endswith("served")]
        assert "no 'current' alias" in out
        code, out, _ = await cli("gsm", "versions", "list", "--secret-type", "api_key", "--json")
        assert json.loads(out)["servedVersion"] is None


class TestAliasedVersionsAreKept:
    @pytest.mark.parametrize(
        ("verb", "version", "alias"),
        [
            ("disable", "3", "'current'"),
            ("disable", "2", "'previous'"),
            ("destroy", "3", "'current'"),
            ("destroy", "2", "'previous'"),
        ],
    )
    async def test_refused_without_force_nothing_changed(
        self, emulator: GsmEmulator, verb: str, version: str, alias: str
    ) -> None:
        code, out, err = await cli("gsm", "versions", verb, "--secret-type", "api_key", version)
        assert code == 1, (out, err)
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert f"{SECRET_ID} version {version} is named by the alias {alias}" in err
        assert "--force" in err
        assert states(emulator) == ["ENABLED", "ENABLED", "ENABLED"]
        assert emulator.call_count("DisableSecretVersion") == 0
        assert emulator.call_count("DestroySecretVersion") == 0

    async def test_served_version_named_as_served(self, emulator: GsmEmulator) -> None:
        _, _, err = await cli("gsm", "versions", "disable", "--secret-type", "api_key", "3")
        assert "the version the service serves" in err

    async def test_force_disables_an_aliased_version(self, emulator: GsmEmulator) -> None:
        code, out, err = await cli(
            "gsm", "versions", "disable", "--secret-type", "api_key", "2", "--force", "--json"
        )
        assert code == 0, err
        assert json.loads(out)["state"] == "DISABLED"
        assert states(emulator) == ["ENABLED", "DISABLED", "ENABLED"]

    async def test_unaliased_versions_need_no_force(self, emulator: GsmEmulator) -> None:
        code, out, err = await cli("gsm", "versions", "disable", "--secret-type", "api_key", "1")
        assert code == 0, err
        assert out.strip() == f"disabled {SECRET_ID} version 1 (DISABLED)"
        code, out, err = await cli("gsm", "versions", "destroy", "--secret-type", "api_key", "1")
        assert code == 0, err
        assert out.strip() == f"destroyed {SECRET_ID} version 1 (DESTROYED)"
        assert states(emulator) == ["DESTROYED", "ENABLED", "ENABLED"]

    @pytest.mark.parametrize(
        ("verb", "bad"),
        [("disable", "abc"), ("destroy", "abc"), ("destroy", "-1"), ("enable", "0")],
    )
    async def test_a_bad_version_is_exit_2_before_any_call(
        self, emulator: GsmEmulator, verb: str, bad: str
    ) -> None:
        code, out, err = await cli("gsm", "versions", verb, "--secret-type", "api_key", "--", bad)
        assert code == 2, (out, err)
        assert "a version number such as 4 is expected" in err
        assert "Traceback" not in err
        assert emulator.call_count("GetSecret") == 0
        assert states(emulator) == ["ENABLED", "ENABLED", "ENABLED"]
