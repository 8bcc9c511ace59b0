"""Status, cache refresh and the Omni consumer route through the real app (contract section 5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.contract.conftest import CANARIES, OmniStack, StackFactory

STATUS = "/ops/apex-omni/secrets/status"
REFRESH = "/internal/apex-omni/secrets/cache/refresh"


def assert_no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text


class TestStatus:
    async def test_ready_status_shape(self, omni_stack: OmniStack) -> None:
        """Status lists every catalog type served from GSM, with the contract's keys, no values."""
        response = await omni_stack.request("GET", STATUS, scopes=("omni-secrets:read",))
        assert response.status_code == 200
        body = response.json()
        assert_no_canary(response.text)
        assert body["environment"] == "test"
        assert body["gcpProjectId"] == "omni-test"
        assert body["cache"]["state"] == "ready"
        assert body["cache"]["ttlSeconds"] == 300
        assert body["cache"]["hydratedAt"].endswith("Z")
        types = [s["secretType"] for s in body["secrets"]]
        assert types == ["api_key", "api_secret", "api_passphrase", "zk_seeds", "zk_l2_key"]
        first = body["secrets"][0]
        assert set(first) == {
            "secretType",
            "gsmSecretId",
            "required",
            "cacheSource",
            "version",
            "activeVersion",
            "enabledVersions",
            "fetchedAt",
            "ageSeconds",
            "expiresAt",
            "stale",
            "lastError",
            "rotation",
            "breakGlass",
        }
        assert first["gsmSecretId"] == "apex-omni-api-key"
        assert first["cacheSource"] == "gsm"
        assert first["version"] == "1"
        assert first["activeVersion"] == "1"  # what is pinned, beside what is cached
        assert first["stale"] is False
        assert first["lastError"] is None
        assert first["breakGlass"] == {"active": False}
        rotation = first["rotation"]
        assert rotation["group"] == "api_credentials"
        assert rotation["status"] == "ok"
        assert rotation["previewOpen"] is False
        assert rotation["daysUntilDue"] == 365  # a started day counts (issue 26)
        assert rotation["candidateVersion"] is None
        # Section 15: start-up named `current` after the served version; one ENABLED version.
        assert rotation["aliasVersion"] == "1"
        assert rotation["previousVersion"] is None
        assert first["enabledVersions"] == 1
        # Section 12: one replica on SQLite, no GSM event subscription.
        assert body["replica"]["peers"] == 0
        assert body["replica"]["id"]
        assert body["events"] is None

    @pytest.mark.parametrize("scope", ["apex-omni:read", "omni-secrets:refresh"])
    async def test_wrong_scope_is_403(self, omni_stack: OmniStack, scope: str) -> None:
        """A valid token without omni-secrets:read gets 403."""
        response = await omni_stack.request("GET", STATUS, scopes=(scope,))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"

    async def test_no_token_is_401(self, omni_stack: OmniStack) -> None:
        """No token → 401 with the Bearer challenge."""
        response = await omni_stack.client.get(STATUS)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_outage_at_startup_starts_empty(self, omni_stack_factory: StackFactory) -> None:
        """GSM down at startup: the service starts, status says empty, readiness is 503."""
        stack = await omni_stack_factory(emulator_up=False)
        body = (await stack.request("GET", STATUS)).json()
        assert body["cache"]["state"] == "empty"
        assert all(s["cacheSource"] == "none" for s in body["secrets"])
        assert all(s["version"] is None and s["fetchedAt"] is None for s in body["secrets"])
        assert body["secrets"][0]["lastError"]["code"] == "UNAVAILABLE"
        ready = await stack.client.get("/readyz")
        assert ready.status_code == 503


class TestRefresh:
    async def test_refresh_all(self, omni_stack: OmniStack) -> None:
        """POST {} → 202 queued for every type, then succeeded with versions."""
        response = await omni_stack.request(
            "POST", REFRESH, json={}, scopes=("omni-secrets:refresh",)
        )
        assert response.status_code == 202
        queued = response.json()
        assert queued["scope"] == "all"
        assert queued["status"] == "queued"
        assert len(queued["secretTypes"]) == 5
        result: dict[str, object] = {}

        async def done() -> bool:
            nonlocal result
            result = (await omni_stack.request("GET", f"{REFRESH}/{queued['requestId']}")).json()
            return result["status"] in ("succeeded", "failed", "partial")

        for _ in range(500):
            if await done():
                break
            await asyncio.sleep(0.01)
        assert result["status"] == "succeeded"
        assert result["completedAt"]
        assert {r["secretType"] for r in result["results"]} == set(queued["secretTypes"])  # type: ignore[index, union-attr]
        # One process on SQLite: the request is this replica's alone, recorded in the database.
        replica_id = omni_stack.services.replicas.replica_id  # type: ignore[union-attr]
        assert result["replicas"] == [
            {"replicaId": replica_id, "status": "succeeded", "results": result["results"]}
        ]

    async def test_refresh_targeted(self, omni_stack: OmniStack) -> None:
        """A targeted refresh names only its types."""
        response = await omni_stack.request("POST", REFRESH, json={"secretTypes": ["api_key"]})
        assert response.status_code == 202
        assert response.json()["scope"] == "targeted"
        assert response.json()["secretTypes"] == ["api_key"]

    async def test_unknown_type_is_422(self, omni_stack: OmniStack) -> None:
        """An unknown type → 422 and nothing queued."""
        response = await omni_stack.request("POST", REFRESH, json={"secretTypes": ["nope"]})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "VALIDATION_FAILED"

    async def test_unknown_request_is_404(self, omni_stack: OmniStack) -> None:
        """GET of an unknown request id → 404."""
        response = await omni_stack.request("GET", f"{REFRESH}/does-not-exist")
        assert response.status_code == 404


class TestConsumer:
    async def test_account_signed_with_served_credentials(self, omni_stack: OmniStack) -> None:
        """/apex-omni/account signs with the served key; the fake ApeX verifies the signature."""
        response = await omni_stack.request("GET", "/apex-omni/account", scopes=("apex-omni:read",))
        assert response.status_code == 200, response.text
        assert_no_canary(response.text)
        assert omni_stack.apex.signing_keys()[-1] == "fake-api-key-canary-7f3a"

    async def test_degraded_answers_503_without_gsm_call(
        self, omni_stack_factory: StackFactory
    ) -> None:
        """With GSM down at startup the consumer route answers 503 listing the missing types."""
        stack = await omni_stack_factory(emulator_up=False)
        response = await stack.request("GET", "/apex-omni/account")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "OMNI_SECRETS_UNAVAILABLE"
        assert error["details"]["missing"] == ["api_key", "api_secret", "api_passphrase"]

    async def test_self_test(self, omni_stack: OmniStack) -> None:
        """Self-test signs with the served credentials and reports ok."""
        response = await omni_stack.request(
            "POST", "/ops/apex-omni/secrets/self-test", scopes=("omni-secrets:rotate",)
        )
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is True
        assert body["httpStatus"] == 200
        assert body["apexCode"] is None


class TestReadinessProbeCache:
    async def test_readyz_checks_the_database_once_per_second(self, omni_stack: OmniStack) -> None:
        """A burst of probes costs one database round trip (SQLite's write lock), not one each."""
        readiness = omni_stack.services.secrets._readiness
        real_factory = readiness._uow_factory
        opened = 0

        def counting_factory() -> Any:
            nonlocal opened
            opened += 1
            return real_factory()

        readiness._uow_factory = counting_factory
        try:
            await asyncio.sleep(1.05)  # past any check made during start-up
            answers = [await omni_stack.client.get("/readyz") for _ in range(20)]
        finally:
            readiness._uow_factory = real_factory
        assert [a.status_code for a in answers] == [200] * 20
        assert opened == 1
