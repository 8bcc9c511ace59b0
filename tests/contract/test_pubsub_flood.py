"""Contract section 17: Pub/Sub events are hints. A flood of forged events on Google's Pub/Sub
emulator costs a handful of GSM calls, a handful of refreshes and audit rows, and shows nothing
GSM does not confirm (a forged ``SECRET_VERSION_ADD`` of version 999999999999999999 included,
also after a restart)."""

from __future__ import annotations

import asyncio
import json

from google.cloud import pubsub_v1

from omni_secrets.domain.catalog import SecretType
from tests.contract.conftest import OmniStack, StackFactory
from tests.contract.test_pubsub_e2e import SECRET, STATUS, counted, start
from tests.contract.test_pubsub_e2e import pubsub as pubsub
from tests.contract.test_rotation import audit_rows

FLOOD = 300
FORGED_VERSION = "999999999999999999"
HANDFUL = 6  # GSM reads per event type: about one a second while the flood is published


def forged(event_type: str, version: str, n: int) -> tuple[bytes, dict[str, str]]:
    name = f"{SECRET}/versions/{version}"
    attributes = {
        "eventType": event_type,
        "secretId": SECRET,
        "versionId": name,
        "dataFormat": "JSON_API_V1",
        "forgery": str(n),
    }
    return json.dumps({"name": name, "state": "ENABLED"}).encode(), attributes


class TestForgedFlood:
    async def test_900_forged_events_cost_a_handful_of_gsm_calls(
        self, omni_stack_factory: StackFactory, pubsub: dict[str, str]
    ) -> None:
        stack = await start(omni_stack_factory, pubsub)
        calls_before = dict(stack.emulator.calls)
        refreshes_before = len(audit_rows(stack, "cache_refresh_requested"))
        publisher = pubsub_v1.PublisherClient()
        futures = []
        for event_type, version in (
            ("SECRET_VERSION_DISABLE", "1"),
            ("SECRET_VERSION_ENABLE", "1"),
            ("SECRET_VERSION_ADD", FORGED_VERSION),
        ):
            for n in range(FLOOD):
                body, attributes = forged(event_type, version, n)
                futures.append(publisher.publish(pubsub["topic"], body, **attributes))
        for future in futures:
            future.result(timeout=30)

        async def handled(event_type: str) -> float:
            metrics = (await stack.client.get("/metrics")).text
            return sum(
                counted(metrics, event_type, result)
                for result in ("applied", "ignored", "unconfirmed", "duplicate")
            )

        deadline = asyncio.get_running_loop().time() + 120
        for event_type in ("SECRET_VERSION_DISABLE", "SECRET_VERSION_ENABLE", "SECRET_VERSION_ADD"):
            while await handled(event_type) < FLOOD:
                assert asyncio.get_running_loop().time() < deadline, f"{event_type} not handled"
                await asyncio.sleep(0.2)

        calls = {
            method: count - calls_before.get(method, 0)
            for method, count in stack.emulator.calls.items()
        }
        # Every confirmation is one coalesced ListSecretVersions of the one secret flooded.
        assert calls.get("GetSecretVersion", 0) == 0, calls
        assert 1 <= calls.get("ListSecretVersions", 0) <= 3 * HANDFUL, calls
        events = stack.services.gsm_events
        assert events is not None
        assert events.confirmations.calls <= 3 * HANDFUL
        # A forged ENABLE of a version served and not revoked has nothing to restore.
        assert events.refreshes.calls == 0
        refreshes = len(audit_rows(stack, "cache_refresh_requested")) - refreshes_before
        assert refreshes <= HANDFUL, refreshes
        metrics = (await stack.client.get("/metrics")).text
        assert counted(metrics, "SECRET_VERSION_DISABLE", "unconfirmed") == FLOOD
        assert counted(metrics, "SECRET_VERSION_ADD", "unconfirmed") == FLOOD
        assert counted(metrics, "SECRET_VERSION_ENABLE", "ignored") == FLOOD

        # Nothing forged shows: still served, no candidate, here and after a restart.
        assert stack.services.cache.get(SecretType.API_SECRET) is not None
        body = (await stack.request("GET", STATUS)).json()
        entry = next(s for s in body["secrets"] if s["secretType"] == "api_secret")
        assert entry["lastError"] is None and entry["cacheSource"] == "gsm"
        assert entry["rotation"]["candidateVersion"] is None
        restarted = await omni_stack_factory(database_url=stack.database_url, seed=False)
        body = (await restarted.request("GET", STATUS)).json()
        entry = next(s for s in body["secrets"] if s["secretType"] == "api_secret")
        assert entry["rotation"]["candidateVersion"] is None

    async def test_secret_rotate_writes_one_audit_row_per_secret_per_hour(
        self, omni_stack_factory: StackFactory, pubsub: dict[str, str]
    ) -> None:
        """50 SECRET_ROTATE: one applied, one audit row; then a second replica (fresh memory,
        same database and subscription) finds that row and acts on none of 10 more."""
        stack = await start(omni_stack_factory, pubsub)
        publisher = pubsub_v1.PublisherClient()
        attributes = {"eventType": "SECRET_ROTATE", "secretId": SECRET, "dataFormat": "JSON_API_V1"}
        body = json.dumps({"name": SECRET}).encode()

        def publish(count: int, offset: int) -> None:
            for future in [
                publisher.publish(pubsub["topic"], body, **attributes, n=str(offset + n))
                for n in range(count)
            ]:
                future.result(timeout=30)

        async def handled(stacks: list[OmniStack]) -> tuple[float, float]:
            applied = ignored = 0.0
            for each in stacks:
                metrics = (await each.client.get("/metrics")).text
                applied += counted(metrics, "SECRET_ROTATE", "applied")
                ignored += counted(metrics, "SECRET_ROTATE", "ignored")
            return applied, ignored

        async def wait_for(stacks: list[OmniStack], total: int) -> tuple[float, float]:
            deadline = asyncio.get_running_loop().time() + 60
            while sum(counts := await handled(stacks)) < total:
                assert asyncio.get_running_loop().time() < deadline, "SECRET_ROTATE not handled"
                await asyncio.sleep(0.2)
            return counts

        publish(50, 0)
        assert (await wait_for([stack], 50))[0] == 1

        async def one_row() -> bool:
            return len(rotate_rows(stack)) == 1

        deadline = asyncio.get_running_loop().time() + 10
        while not await one_row():  # the row is written by the background writer
            assert asyncio.get_running_loop().time() < deadline, rotate_rows(stack)
            await asyncio.sleep(0.1)
        second = await start(omni_stack_factory, pubsub, database_url=stack.database_url)
        publish(10, 50)
        assert (await wait_for([stack, second], 60))[0] == 1
        await asyncio.sleep(0.5)
        assert len(rotate_rows(stack)) == 1


def rotate_rows(stack: OmniStack) -> list[dict[str, object]]:
    return [r for r in audit_rows(stack, "rotation_alert") if r["secret_type"] == "api_secret"]
