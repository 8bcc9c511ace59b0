"""Following GSM's ``current`` aliases through the real app (contract section 15).

The contract harness (real gRPC to the GSM emulator, a real database, a fake ApeX): aliases are
moved in the emulator directly, as ``gcloud`` would, then the reconcile (which runs the
follower after its refreshes) or a forced refresh makes the app look again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from omni_secrets.domain.catalog import SecretType
from tests.contract.conftest import PROJECT, OmniStack, StackFactory
from tests.contract.test_replicas import OVERRIDES, SUBSCRIPTION, deliver, gsm_message
from tests.contract.test_rotation import (
    NEW_API,
    STATUS,
    add_versions,
    assert_no_values,
    audit_rows,
    new_credentials,
)

API_TYPES = ("api_key", "api_secret", "api_passphrase")
API = [SecretType(t) for t in API_TYPES]


async def look_again(stack: OmniStack) -> None:
    """What a refresh and the next reconcile do: re-read the aliases, then follow them."""
    await stack.services.cache.refresh(API, force_new=True)
    await stack.services.alias_follower.follow()


async def status_of(stack: OmniStack) -> dict[str, dict[str, Any]]:
    response = await stack.request("GET", STATUS)
    assert response.status_code == 200
    return {s["secretType"]: s for s in response.json()["secrets"]}


def move(stack: OmniStack, secret_ids: list[str], version: int) -> None:
    for secret_id in secret_ids:
        stack.emulator.set_aliases(PROJECT, secret_id, {"current": version, "previous": 1})


class TestFollowingGsm:
    async def test_incomplete_group_drifts_then_is_adopted_whole(
        self, omni_stack: OmniStack
    ) -> None:
        """Two of three members moved in GSM: drift group_incomplete, v1 still served by all;
        the third moves: adopted (rotation_adopted by gsm), v2 served, drift null."""
        add_versions(omni_stack, NEW_API)
        omni_stack.apex.accept(new_credentials())
        ids = list(NEW_API)
        move(omni_stack, ids[:2], 2)
        await look_again(omni_stack)
        shown = await status_of(omni_stack)
        for name in API_TYPES:
            assert shown[name]["version"] == "1"
            assert shown[name]["activeVersion"] == "1"
            drift = shown[name]["rotation"]["drift"]
            assert set(drift) == {"since", "reason"} and drift["reason"] == "group_incomplete"
            assert drift["since"].endswith("Z")
        assert shown["zk_seeds"]["rotation"]["drift"] is None
        account = await omni_stack.request("GET", "/apex-omni/account")
        assert account.status_code == 200
        assert omni_stack.apex.signing_keys()[-1] != NEW_API["apex-omni-api-key"]

        move(omni_stack, ids, 2)
        await look_again(omni_stack)
        shown = await status_of(omni_stack)
        for name in API_TYPES:
            assert shown[name]["version"] == "2"
            assert shown[name]["activeVersion"] == "2"
            assert shown[name]["rotation"]["aliasVersion"] == "2"
            assert shown[name]["rotation"]["drift"] is None
        rows = audit_rows(omni_stack, "rotation_adopted")
        assert [(r["actor"], r["result"]) for r in rows] == [("gsm", "success")]
        assert rows[0]["details"]["activeVersions"] == dict.fromkeys(API_TYPES, "2")
        assert_no_values(json.dumps(rows, default=str))
        account = await omni_stack.request("GET", "/apex-omni/account")
        assert account.status_code == 200
        assert omni_stack.apex.signing_keys()[-1] == NEW_API["apex-omni-api-key"]

    async def test_a_set_apex_refuses_is_not_adopted(self, omni_stack: OmniStack) -> None:
        """Every member moved to credentials ApeX refuses: checks_failed, v1 served whole."""
        add_versions(omni_stack, NEW_API)  # the fake ApeX was never told to accept them
        move(omni_stack, list(NEW_API), 2)
        await look_again(omni_stack)
        shown = await status_of(omni_stack)
        for name in API_TYPES:
            assert shown[name]["version"] == "1"
            assert shown[name]["rotation"]["drift"]["reason"] == "checks_failed"
        assert audit_rows(omni_stack, "rotation_adopted") == []

    async def test_a_disabled_target_fails_that_type_closed_and_moves_nothing(
        self, omni_stack: OmniStack
    ) -> None:
        """current of one member names a DISABLED version: that type fails closed with
        VERSION_DISABLED (never a 500), no member's pin moves, the others keep serving v1."""
        add_versions(omni_stack, NEW_API)
        omni_stack.apex.accept(new_credentials())
        move(omni_stack, list(NEW_API), 2)
        omni_stack.emulator.disable(PROJECT, "apex-omni-api-secret", 2)
        await look_again(omni_stack)
        shown = await status_of(omni_stack)
        assert shown["api_secret"]["lastError"]["code"] == "VERSION_DISABLED"
        assert shown["api_secret"]["cacheSource"] == "none"
        for name in API_TYPES:
            assert shown[name]["activeVersion"] == "1"
            assert shown[name]["rotation"]["drift"]["reason"] == "not_enabled"
        for name in ("api_key", "api_passphrase"):
            assert shown[name]["version"] == "1"
        assert audit_rows(omni_stack, "rotation_adopted") == []


class TestSecretUpdateEvent:
    async def test_a_secret_update_event_adopts_at_once(
        self, omni_stack_factory: StackFactory
    ) -> None:
        """With events on and the reconcile far away, a SECRET_UPDATE of one member makes this
        replica re-read the group and adopt it at once (the message itself decides nothing)."""
        stack = await omni_stack_factory(overrides=OVERRIDES, OMNI_PUBSUB_SUBSCRIPTION=SUBSCRIPTION)
        add_versions(stack, NEW_API)
        stack.apex.accept(new_credentials())
        before = await deliver(stack, gsm_message("SECRET_UPDATE", None, "m-0"))
        assert before == "applied"
        assert audit_rows(stack, "rotation_adopted") == []  # nothing moved in GSM yet

        move(stack, list(NEW_API), 2)
        assert await deliver(stack, gsm_message("SECRET_UPDATE", None, "m-1")) == "applied"
        shown = await status_of(stack)
        for name in API_TYPES:
            assert shown[name]["version"] == "2"
            assert shown[name]["rotation"]["drift"] is None
        assert len(audit_rows(stack, "rotation_adopted")) == 1


@pytest.mark.parametrize("field", ["drift"])
async def test_status_schema_documents_drift(omni_stack: OmniStack, field: str) -> None:
    """The OpenAPI document describes rotation.drift as the route answers it."""
    document = (await omni_stack.client.get("/openapi.json")).json()
    rotation = document["components"]["schemas"]["RotationJson"]["properties"]
    assert field in rotation
