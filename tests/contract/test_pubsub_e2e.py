"""End to end on Google's real Pub/Sub emulator: GSM emulator → Pub/Sub → service.

The GSM emulator publishes GSM-format notifications with the official Pub/Sub client; the
service consumes them with the official streaming-pull subscriber. Changes are made through
the official GSM client, as an operator would. Each test gets its own topic and subscription.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.cloud import pubsub_v1, secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from omni_secrets.domain.catalog import SecretType
from omni_secrets.emulator.events import PubSubEventPublisher
from tests.contract.conftest import PROJECT, OmniStack, StackFactory

STATUS = "/ops/apex-omni/secrets/status"
SECRET = f"projects/{PROJECT}/secrets/apex-omni-api-secret"
WITHIN_SECONDS = 5.0


@pytest.fixture
def pubsub(pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A fresh topic and subscription on the session's emulator (official client)."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    suffix = uuid.uuid4().hex[:10]
    topic = f"projects/{PROJECT}/topics/gsm-{suffix}"
    subscription = f"projects/{PROJECT}/subscriptions/omni-{suffix}"
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    publisher.create_topic(request={"name": topic})
    subscriber.create_subscription(request={"name": subscription, "topic": topic})
    try:
        yield {"topic": topic, "subscription": subscription}
    finally:
        subscriber.close()


def gsm_client(stack: OmniStack) -> Any:
    channel = grpc.insecure_channel(stack.emulator.address)
    return secretmanager_v1.SecretManagerServiceClient(
        transport=SecretManagerServiceGrpcTransport(channel=channel)
    )


async def start(factory: StackFactory, pubsub: dict[str, str], **env: str) -> OmniStack:
    publisher = PubSubEventPublisher(pubsub["topic"])
    stack = await factory(
        emulator_events=publisher.publish,
        OMNI_PUBSUB_SUBSCRIPTION=pubsub["subscription"],
        **env,
    )
    events = stack.services.gsm_events
    assert events is not None
    await stack.wait_for(lambda: events.connected, timeout=WITHIN_SECONDS, what="subscriber")
    return stack


def counted(metrics: str, event_type: str, result: str) -> float:
    prefix = f'omni_gsm_events_total{{event_type="{event_type}",result="{result}"}} '
    line = next(line for line in metrics.splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))


class TestPubSubEndToEnd:
    async def test_disable_through_gsm_stops_serving_and_enable_restores(
        self, omni_stack_factory: StackFactory, pubsub: dict[str, str]
    ) -> None:
        """Disable of the active version via the GSM client: not served within seconds."""
        stack = await start(omni_stack_factory, pubsub)
        assert stack.services.cache.get(SecretType.API_SECRET) is not None
        client = gsm_client(stack)
        client.disable_secret_version(request={"name": f"{SECRET}/versions/1"})
        await stack.wait_for(
            lambda: stack.services.cache.get(SecretType.API_SECRET) is None,
            timeout=WITHIN_SECONDS,
            what="revocation",
        )
        body = (await stack.request("GET", STATUS)).json()
        entry = next(s for s in body["secrets"] if s["secretType"] == "api_secret")
        assert entry["lastError"]["code"] == "VERSION_DISABLED"
        assert "apex-omni-api-secret version 1" in entry["lastError"]["message"]  # issue 26
        assert body["events"]["subscription"] == pubsub["subscription"]
        assert body["events"]["connected"] is True
        assert body["events"]["lastEventAt"] is not None

        client.enable_secret_version(request={"name": f"{SECRET}/versions/1"})
        await stack.wait_for(
            lambda: stack.services.cache.get(SecretType.API_SECRET) is not None,
            timeout=WITHIN_SECONDS,
            what="served again",
        )
        client.add_secret_version(
            request={"parent": SECRET, "payload": {"data": b"fake-api-secret-v2"}}
        )
        signals = stack.services.signals
        assert signals is not None
        await stack.wait_for(
            lambda: signals.candidate_version(SecretType.API_SECRET) == "2",
            timeout=WITHIN_SECONDS,
            what="candidate",
        )
        client.transport.close()

    async def test_bad_messages_are_acked_counted_and_change_nothing(
        self, omni_stack_factory: StackFactory, pubsub: dict[str, str]
    ) -> None:
        """Each kind of bad message is counted; serving is unchanged; the feed keeps working."""
        stack = await start(omni_stack_factory, pubsub)
        publisher = pubsub_v1.PublisherClient()
        version = f"{SECRET}/versions/1"
        good = {"secretId": SECRET, "versionId": version, "dataFormat": "JSON_API_V1"}
        data = json.dumps({"name": version}).encode()
        foreign = "projects/someone-else/secrets/apex-omni-api-secret"
        unknown = f"projects/{PROJECT}/secrets/not-in-the-catalog"
        bad: list[tuple[bytes, dict[str, str]]] = [
            (data, {"secretId": SECRET, "dataFormat": "JSON_API_V1"}),  # no eventType
            (data, {**good, "eventType": "SECRET_VERSION_DISABLE", "dataFormat": "PROTO"}),
            (
                data,
                {
                    **good,
                    "eventType": "SECRET_VERSION_DISABLE",
                    "secretId": foreign,
                    "versionId": f"{foreign}/versions/1",
                },
            ),
            (
                json.dumps({"name": f"{unknown}/versions/1"}).encode(),
                {
                    **good,
                    "eventType": "SECRET_VERSION_DISABLE",
                    "secretId": unknown,
                    "versionId": f"{unknown}/versions/1",
                },
            ),
            (b"\x00garbage{", {**good, "eventType": "SECRET_VERSION_DISABLE"}),
            (data, {**good, "eventType": "SECRET_VERSION_DISABLE", "versionId": "nonsense"}),
            (data, {**good, "eventType": "SOMETHING_NEW"}),
        ]
        for body, attributes in bad:
            publisher.publish(pubsub["topic"], body, **attributes).result(timeout=10)

        async def all_counted() -> bool:
            metrics = (await stack.client.get("/metrics")).text
            rejected = counted(metrics, "SECRET_VERSION_DISABLE", "rejected")
            ignored = counted(metrics, "SECRET_VERSION_DISABLE", "ignored")
            return (
                rejected >= 4
                and ignored >= 1
                and counted(metrics, "OTHER", "rejected") >= 1
                and counted(metrics, "OTHER", "ignored") >= 1
            )

        deadline = asyncio.get_running_loop().time() + WITHIN_SECONDS
        while not await all_counted():
            assert asyncio.get_running_loop().time() < deadline, "bad messages not all counted"
            await asyncio.sleep(0.1)
        assert stack.services.cache.get(SecretType.API_SECRET) is not None
        body = (await stack.request("GET", STATUS)).json()
        assert body["cache"]["state"] == "ready"
        assert all(s["lastError"] is None for s in body["secrets"])

        # The subscriber survived all of it: a real event still lands.
        stack.emulator.disable(PROJECT, "apex-omni-api-secret", 1)
        await stack.wait_for(
            lambda: stack.services.cache.get(SecretType.API_SECRET) is None,
            timeout=WITHIN_SECONDS,
            what="revocation after bad messages",
        )

    async def test_pubsub_outage_never_affects_serving(
        self, omni_stack_factory: StackFactory, pubsub: dict[str, str]
    ) -> None:
        """A subscription that cannot be consumed: connected false, everything still served."""
        missing = pubsub["subscription"] + "-missing"
        stack = await omni_stack_factory(OMNI_PUBSUB_SUBSCRIPTION=missing)
        body = (await stack.request("GET", STATUS)).json()
        assert body["events"]["connected"] is False
        assert body["events"]["subscription"] == missing
        assert body["cache"]["state"] == "ready"
        account = await stack.request("GET", "/apex-omni/account", scopes=("apex-omni:read",))
        assert account.status_code == 200
        metrics = (await stack.client.get("/metrics")).text
        assert f'omni_gsm_events_connected{{subscription="{missing}"}} 0.0' in metrics

    async def test_events_are_null_when_no_subscription_is_configured(
        self, omni_stack_factory: StackFactory
    ) -> None:
        """OMNI_PUBSUB_SUBSCRIPTION unset: no subscriber, status events null."""
        stack = await omni_stack_factory()
        body = (await stack.request("GET", STATUS)).json()
        assert body["events"] is None
        assert body["replica"]["peers"] == 0
        assert stack.services.gsm_events is None
        assert "omni_gsm_events_connected{" not in (await stack.client.get("/metrics")).text


class TestPubSubUnreachable:
    async def test_nothing_listening_is_disconnected_and_serving(
        self, omni_stack_factory: StackFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Pub/Sub not answering at all: connected false, serving unaffected."""
        from tests.ports import free_port

        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
        stack = await omni_stack_factory(
            OMNI_PUBSUB_SUBSCRIPTION=f"projects/{PROJECT}/subscriptions/omni-nowhere"
        )
        events = stack.services.gsm_events
        assert events is not None
        await asyncio.sleep(0.5)
        body = (await stack.request("GET", STATUS)).json()
        assert body["events"]["connected"] is False
        assert body["cache"]["state"] == "ready"
        account = await stack.request("GET", "/apex-omni/account", scopes=("apex-omni:read",))
        assert account.status_code == 200
