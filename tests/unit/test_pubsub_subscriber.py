"""``PubSubEventSubscriber`` with a stand-in client: ack after acting, nack on failure,
reconnect with backoff after a stream error, clean stop. (The real client against Google's
emulator runs in ``tests/contract/test_pubsub_e2e.py``.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc

from omni_secrets.adapters.pubsub import PubSubEventSubscriber
from omni_secrets.domain.gsm_events import RawGsmMessage


class FakeMessage:
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.attributes = {"eventType": "SECRET_ROTATE"}
        self.data = b"{}"
        self.publish_time = datetime(2026, 11, 27, tzinfo=UTC)
        self.acked = threading.Event()
        self.nacked = threading.Event()

    def ack(self) -> None:
        self.acked.set()

    def nack(self) -> None:
        self.nacked.set()


class FakeClient:
    """Records subscriptions; the test delivers messages on a thread, as the real client does."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.closed = False

    def subscribe(self, subscription: str, callback: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.world.streams.append((callback, future, kwargs))
        return future

    def get_subscription(self, request: dict[str, str], **options: Any) -> object:
        assert options["retry"] is None  # one attempt per probe
        if self.world.unreachable:
            raise gexc.ServiceUnavailable("down")
        return object()

    def close(self) -> None:
        self.closed = True


class FakeWorld:
    def __init__(self) -> None:
        self.streams: list[tuple[Any, concurrent.futures.Future[Any], dict[str, Any]]] = []
        self.clients: list[FakeClient] = []
        self.unreachable = False

    def factory(self) -> FakeClient:
        client = FakeClient(self)
        self.clients.append(client)
        return client


async def until(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


class TestPubSubEventSubscriber:
    async def test_acks_after_acting_nacks_when_asked_or_failing(self) -> None:
        """True → ack, False → nack, a raising handler → nack; the stream keeps going."""
        world = FakeWorld()
        handled: list[RawGsmMessage] = []

        async def handler(message: RawGsmMessage) -> bool:
            handled.append(message)
            if message.message_id == "boom":
                raise RuntimeError("bug")
            return message.message_id == "ok"

        states: list[bool] = []
        subscriber = PubSubEventSubscriber(
            subscription="projects/p/subscriptions/s",
            handler=handler,
            on_connected=states.append,
            probe_interval_seconds=0.05,
            client_factory=world.factory,
        )
        subscriber.start()
        await until(lambda: world.streams)
        callback, _, kwargs = world.streams[0]
        assert kwargs["flow_control"].max_messages == 16
        messages = [FakeMessage(i) for i in ("ok", "retry", "boom")]
        for message in messages:
            await asyncio.to_thread(callback, message)
        assert messages[0].acked.is_set() and not messages[0].nacked.is_set()
        assert messages[1].nacked.is_set() and messages[2].nacked.is_set()
        assert [m.message_id for m in handled] == ["ok", "retry", "boom"]
        assert handled[0].attributes == {"eventType": "SECRET_ROTATE"}
        assert subscriber.connected
        await subscriber.stop()
        await until(lambda: world.clients[0].closed)  # closed on a daemon thread
        assert states[-1] is False

    async def test_a_failed_stream_reconnects_and_unreachable_means_disconnected(self) -> None:
        """A stream error → a new client and stream after the backoff; probes set connected."""
        world = FakeWorld()

        async def handler(message: RawGsmMessage) -> bool:
            return True

        subscriber = PubSubEventSubscriber(
            subscription="projects/p/subscriptions/s",
            handler=handler,
            probe_interval_seconds=0.05,
            initial_backoff_seconds=0.05,
            client_factory=world.factory,
        )
        subscriber.start()
        await until(lambda: subscriber.connected)
        world.unreachable = True
        await until(lambda: not subscriber.connected)
        world.unreachable = False
        world.streams[0][1].set_exception(gexc.NotFound("subscription deleted"))
        await until(lambda: len(world.streams) == 2)
        await until(lambda: world.clients[0].closed)
        await until(lambda: subscriber.connected)
        assert subscriber.streams_started == 2
        await subscriber.stop()
        assert world.streams[1][1].cancelled()
