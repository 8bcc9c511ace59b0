"""Commit as a compare-and-set in GSM, and rollback (contract section 15), through the real app.

The stack is the contract harness (real gRPC to the GSM emulator, a real database, a fake ApeX);
the emulator's aliases are read back directly. The commit journal and kill -9 recovery are
tested in ``tests/integration/test_commit_recovery.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.contract.conftest import PROJECT, OmniStack, StackFactory, seeded_credentials
from tests.contract.serving import cli, over_tcp
from tests.contract.test_rotation import (
    NEW_API,
    ROTATE,
    STATUS,
    assert_no_values,
    audit_rows,
    commit_path,
    ready_api_preview,
)

ROLLBACK = "/ops/apex-omni/secrets/rotations/rollback"
API_TYPES = ("api_key", "api_secret", "api_passphrase")


def aliases(stack: OmniStack) -> dict[str, dict[str, int]]:
    return {secret_id: stack.emulator.aliases(PROJECT, secret_id) for secret_id in NEW_API}


async def rotation_of(stack: OmniStack) -> dict[str, dict[str, Any]]:
    status = (await stack.request("GET", STATUS)).json()
    return {s["secretType"]: {"version": s["version"], **s["rotation"]} for s in status["secrets"]}


async def commit(stack: OmniStack) -> dict[str, Any]:
    body = await ready_api_preview(stack)
    response = await stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def check_commit_then_rollback(stack: OmniStack) -> None:
    before = await rotation_of(stack)
    await commit(stack)
    assert aliases(stack) == {i: {"current": 2, "previous": 1} for i in NEW_API}
    response = await stack.request(
        "POST", ROLLBACK, json={"secretType": "api_passphrase"}, scopes=ROTATE
    )
    assert response.status_code == 200, response.text
    assert_no_values(response.text)
    body = response.json()
    assert body["members"] == [{"secretType": t, "activeVersion": "1"} for t in API_TYPES]
    assert aliases(stack) == {i: {"current": 1, "previous": 2} for i in NEW_API}
    after = await rotation_of(stack)
    for name in API_TYPES:
        assert after[name]["version"] == "1"
        assert after[name]["dueAt"] == before[name]["dueAt"]
        assert after[name]["lastRotatedAt"] == before[name]["lastRotatedAt"]
    assert body["dueAt"] == min(before[name]["dueAt"] for name in API_TYPES)
    rows = audit_rows(stack, "rotation_rollback")
    assert [r["result"] for r in rows] == ["success"]
    assert_no_values(json.dumps(rows, default=str))
    account = await stack.request("GET", "/apex-omni/account")
    assert account.status_code == 200
    assert stack.apex.signing_keys()[-1] != NEW_API["apex-omni-api-key"]


class TestCompareAndSetCommit:
    async def test_commit_moves_the_aliases(self, omni_stack: OmniStack) -> None:
        await commit(omni_stack)
        assert aliases(omni_stack) == {i: {"current": 2, "previous": 1} for i in NEW_API}
        row = audit_rows(omni_stack, "rotation_commit")[0]
        assert set(row["details"]["datesBefore"]) == set(API_TYPES)

    async def test_candidate_disabled_after_preview_is_409(self, omni_stack: OmniStack) -> None:
        body = await ready_api_preview(omni_stack)
        omni_stack.emulator.disable(PROJECT, "apex-omni-api-secret", 2)
        response = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "CANDIDATE_CHANGED"
        # Start-up named `current` on every secret; nothing moved it since.
        assert aliases(omni_stack) == {i: {"current": 1} for i in NEW_API}
        assert all(r["version"] == "1" for r in (await rotation_of(omni_stack)).values())

    async def test_current_moved_elsewhere_is_409(self, omni_stack: OmniStack) -> None:
        """Someone (gcloud, Terraform) named another version `current` after the preview."""
        body = await ready_api_preview(omni_stack)
        omni_stack.emulator.set_aliases(PROJECT, "apex-omni-api-key", {"current": 2})
        response = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "GSM_CHANGED"
        assert aliases(omni_stack) == {
            "apex-omni-api-key": {"current": 2},
            "apex-omni-api-secret": {"current": 1},
            "apex-omni-api-passphrase": {"current": 1},
        }
        assert all(r["version"] == "1" for r in (await rotation_of(omni_stack)).values())

    async def test_openapi_documents_the_conflicts(self, omni_stack: OmniStack) -> None:
        document = (await omni_stack.client.get("/openapi.json")).json()
        assert "409" in document["paths"][ROLLBACK]["post"]["responses"]
        commit_doc = document["paths"]["/ops/apex-omni/secrets/rotations/{previewId}/commit"]
        assert "409" in commit_doc["post"]["responses"]


class TestRollback:
    async def test_commit_then_rollback(self, omni_stack: OmniStack) -> None:
        omni_stack.apex.accept(seeded_credentials())
        await check_commit_then_rollback(omni_stack)

    async def test_without_previous_is_409_and_changes_nothing(self, omni_stack: OmniStack) -> None:
        before = await rotation_of(omni_stack)
        response = await omni_stack.request(
            "POST", ROLLBACK, json={"secretType": "zk_seeds"}, scopes=ROTATE
        )
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "ROLLBACK_NOT_POSSIBLE"
        assert await rotation_of(omni_stack) == before
        # Start-up named `current` on every secret; nothing moved it since.
        assert aliases(omni_stack) == {i: {"current": 1} for i in NEW_API}

    async def test_previous_disabled_is_409(self, omni_stack: OmniStack) -> None:
        await commit(omni_stack)
        omni_stack.emulator.disable(PROJECT, "apex-omni-api-key", 1)
        response = await omni_stack.request(
            "POST", ROLLBACK, json={"secretType": "api_key"}, scopes=ROTATE
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "ROLLBACK_NOT_POSSIBLE"
        assert aliases(omni_stack) == {i: {"current": 2, "previous": 1} for i in NEW_API}
        assert all(
            r["version"] == "2"
            for t, r in (await rotation_of(omni_stack)).items()
            if t in API_TYPES
        )

    async def test_needs_the_rotate_scope(self, omni_stack: OmniStack) -> None:
        response = await omni_stack.request(
            "POST", ROLLBACK, json={"secretType": "api_key"}, scopes=("omni-secrets:read",)
        )
        assert response.status_code == 403

    async def test_unknown_type_is_422(self, omni_stack: OmniStack) -> None:
        response = await omni_stack.request(
            "POST", ROLLBACK, json={"secretType": "nope"}, scopes=ROTATE
        )
        assert response.status_code == 422

    async def test_cli(self, omni_stack: OmniStack) -> None:
        """`rotation rollback` exits 1 on 409 and 0 after a commit, --json prints the body."""
        stack = omni_stack
        stack.apex.accept(seeded_credentials())
        async with over_tcp(stack.app) as url:
            token = stack.token(*ROTATE)
            args = ("rotation", "rollback", "--url", url, "--token", token)
            code, _, err = await cli(*args, "--secret-type", "api_key")
            assert code == 1, err
            assert "ROLLBACK_NOT_POSSIBLE" in err
            await commit(stack)
            code, out, err = await cli(*args, "--secret-type", "api_key", "--json")
            assert code == 0, err
            assert json.loads(out)["members"][0] == {"secretType": "api_key", "activeVersion": "1"}
            code, _, err = await cli(*args, "--secret-type", "nope")
            assert code == 2, err


@pytest.mark.postgres
class TestOnPostgres:
    async def test_commit_then_rollback(
        self, omni_stack_factory: StackFactory, postgres_url: str
    ) -> None:
        stack = await omni_stack_factory(database_url=postgres_url)
        stack.apex.accept(seeded_credentials())
        await check_commit_then_rollback(stack)
