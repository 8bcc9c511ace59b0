"""``PubSubEventSubscriber``: GSM event notifications from Pub/Sub, with the official client.

``google-cloud-pubsub`` streams messages (streaming pull) on its own threads; each message is
copied into a :class:`~omni_secrets.domain.gsm_events.RawGsmMessage` and handed to the async
handler on the app's event loop; the message is acked after the handler acted (or dismissed it),
nacked when the handler asks for a redelivery or does not answer in time. Flow control bounds the
messages in flight. ``PUBSUB_EMULATOR_HOST`` is honoured by the client itself; in production it
uses Application Default Credentials (Workload Identity).

Connection state: the client retries a broken stream internally and never says so, so a probe
(``GetSubscription`` every few seconds, one attempt, 3 s deadline) tells whether Pub/Sub answers;
a message received also proves it. ``connected`` is true only while a stream is open (its future
not done) and the last probe was answered; when Pub/Sub answers again after a failed probe the
stream is replaced at once rather than left to the client's own reconnect backoff. Leases are
10 s (contract section 18): a message held by a replica that died goes to a live one within
about 10 s. When the stream ends with an error (subscription deleted, permission revoked), the
subscriber starts a new one after an exponential backoff, for ever. :meth:`stop` cancels the
stream, lets handlers in flight finish and closes the client.

Permissions: ``pubsub.subscriptions.consume`` on the subscription (``roles/pubsub.subscriber``);
the probe also uses ``pubsub.subscriptions.get`` (``roles/pubsub.viewer``) — without it
``connected`` only reflects whether the stream is up and messages arrive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
import structlog
from google.api_core import exceptions as gexc

from omni_secrets.domain.gsm_events import RawGsmMessage

log = structlog.get_logger("omni_secrets.pubsub")

Handler = Callable[[RawGsmMessage], Coroutine[Any, Any, bool]]
"""Acts on a message; True to ack, False to have it redelivered."""

DEFAULT_MAX_MESSAGES = 16
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_HANDLE_TIMEOUT_SECONDS = 30.0
DEFAULT_PROBE_INTERVAL_SECONDS = 5.0
DEFAULT_PROBE_TIMEOUT_SECONDS = 3.0
DEFAULT_INITIAL_BACKOFF_SECONDS = 1.0
DEFAULT_MAX_BACKOFF_SECONDS = 60.0
LEASE_EXTENSION_SECONDS = 10
"""The ack deadline of every lease (Pub/Sub's minimum): how long a dead replica's messages wait
before they are redelivered to a live one."""
_STOP_TIMEOUT_SECONDS = 5.0
_UNREACHABLE = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError, gexc.NotFound)


class PubSubEventSubscriber:
    """Streams ``subscription`` into ``handler`` until stopped (see the module docstring).

    Args:
        subscription: ``projects/P/subscriptions/S``.
        handler: the async handler (runs on the loop that called :meth:`start`).
        on_connected: called with the connection state whenever it may have changed.
        max_messages: flow control: messages leased at once.
        max_bytes: flow control: bytes leased at once.
        handle_timeout_seconds: a handler not done by then is abandoned and the message nacked.
        probe_interval_seconds: how often to check that Pub/Sub answers.
        initial_backoff_seconds: first wait before a new stream after one failed; doubles.
        max_backoff_seconds: the longest wait between streams.
        client_factory: builds the ``SubscriberClient`` (tests may wrap it).
    """

    def __init__(
        self,
        *,
        subscription: str,
        handler: Handler,
        on_connected: Callable[[bool], None] = lambda _connected: None,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        handle_timeout_seconds: float = DEFAULT_HANDLE_TIMEOUT_SECONDS,
        probe_interval_seconds: float = DEFAULT_PROBE_INTERVAL_SECONDS,
        initial_backoff_seconds: float = DEFAULT_INITIAL_BACKOFF_SECONDS,
        max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
        client_factory: Callable[[], Any] = pubsub_v1.SubscriberClient,
    ) -> None:
        self._subscription = subscription
        self._handler = handler
        self._on_connected = on_connected
        self._flow = pubsub_v1.types.FlowControl(
            max_messages=max_messages,
            max_bytes=max_bytes,
            # Contract section 18 (dead peers): every replica shares one subscription, so a
            # message leased by a replica that dies is redelivered only when its lease lapses.
            # Leases of LEASE_EXTENSION_SECONDS (Pub/Sub's minimum) put the redelivery to a live
            # replica within ~10 s instead of the client's default 60 s stream ack deadline
            # (renewed for up to an hour); a live replica keeps extending what it holds.
            min_duration_per_lease_extension=LEASE_EXTENSION_SECONDS,
            max_duration_per_lease_extension=LEASE_EXTENSION_SECONDS,
            max_lease_duration=handle_timeout_seconds + 2 * LEASE_EXTENSION_SECONDS,
        )
        self._handle_timeout = handle_timeout_seconds
        self._probe_interval = probe_interval_seconds
        self._initial_backoff = initial_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._client_factory = client_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._future: concurrent.futures.Future[Any] | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._connected = False
        self._probe_denied = False
        self.streams_started = 0

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Start streaming in the background (returns at once; never fails on Pub/Sub)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._task = self._loop.create_task(self._supervise(), name="gsm-events-subscriber")

    async def stop(self) -> None:
        """Cancel the stream, let handlers in flight finish, close the client; idempotent."""
        self._stopping = True
        self._stopped.set()
        future = self._future
        if future is not None:
            # Cancelling closes the stream and joins its threads (up to a second): off the loop.
            await asyncio.to_thread(future.cancel)
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait((task,), timeout=_STOP_TIMEOUT_SECONDS)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._set_connected(False)

    # -- the stream ------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._initial_backoff
        while not self._stopping:
            client = None
            try:
                client = await loop.run_in_executor(None, self._client_factory)
                future = client.subscribe(
                    self._subscription,
                    callback=self._on_message,
                    flow_control=self._flow,
                    await_callbacks_on_shutdown=True,
                )
                self._future = future
                self.streams_started += 1
                log.info("pubsub.streaming", subscription=self._subscription)
                healthy = await self._watch(client, future)
                if healthy:
                    backoff = self._initial_backoff
            except Exception as exc:
                log.warning("pubsub.stream_failed", error_type=type(exc).__name__)
            finally:
                self._set_connected(False)
                self._future = None
                if client is not None:
                    # Closing the channel can take seconds while gRPC is still reconnecting to an
                    # unreachable Pub/Sub: never hold up a reconnect or the process's shutdown.
                    threading.Thread(
                        target=_close_quietly, args=(client,), name="pubsub-close", daemon=True
                    ).start()
            if self._stopping:
                break
            log.info("pubsub.reconnecting", retry_in_seconds=backoff)
            # stop() must not wait out a long backoff (asyncio.wait never swallows a cancel).
            stopped = asyncio.ensure_future(self._stopped.wait())
            try:
                await asyncio.wait((stopped,), timeout=backoff)
            finally:
                stopped.cancel()
            backoff = min(backoff * 2, self._max_backoff)

    async def _watch(self, client: Any, future: concurrent.futures.Future[Any]) -> bool:
        """Probe while the stream runs; return whether it was ever healthy. Raises its error.

        Connected means this stream is open *and* Pub/Sub answered the last probe: a future
        that is done (failed or cancelled) is never connected. When Pub/Sub answers again after
        a probe failed (a partition healed), the stream is replaced at once: the client's own
        reconnection of a broken stream backs off for up to a minute, and a revocation must
        not wait for it.
        """
        wrapped = asyncio.wrap_future(future)
        healthy = False
        unreachable = False
        while True:
            answered = False if wrapped.done() else await self._probe(client, wrapped)
            if answered and unreachable and not self._stopping:
                log.info("pubsub.stream_replaced", reason="reachable_again")
                await _cancel_stream(future)
                # Pub/Sub answers again, so closing is quick: let the old stream end before the
                # new one opens, or messages may still be handed to it (bounded all the same).
                closing = asyncio.ensure_future(asyncio.to_thread(_close_quietly, client))
                await asyncio.wait({closing}, timeout=_STOP_TIMEOUT_SECONDS)
                return True
            # Without the probe permission there is no "answered again" to act on.
            unreachable = unreachable or (not answered and not self._probe_denied)
            healthy = answered or healthy
            done, _ = await asyncio.wait({wrapped}, timeout=self._probe_interval)
            if done:
                break
        if self._stopping:
            with contextlib.suppress(BaseException):
                await wrapped  # cancelled by stop(): handlers in flight have finished
            return healthy
        exc = wrapped.exception() if not wrapped.cancelled() else None
        if exc is not None:
            raise exc
        return healthy

    async def _probe(self, client: Any, stream: asyncio.Future[Any]) -> bool:
        if self._probe_denied:
            return self._connected
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None,
                lambda: client.get_subscription(
                    request={"subscription": self._subscription},
                    retry=None,  # one attempt: the default retries UNAVAILABLE for a minute
                    timeout=DEFAULT_PROBE_TIMEOUT_SECONDS,
                ),
            )
        except gexc.PermissionDenied:
            self._probe_denied = True
            log.warning("pubsub.probe_denied", hint="grant pubsub.subscriptions.get for status")
            self._set_connected(not stream.done())
            return True
        except _UNREACHABLE as exc:
            self._set_connected(False)
            log.warning("pubsub.unreachable", error_type=type(exc).__name__)
            return False
        except Exception as exc:
            self._set_connected(False)
            log.warning("pubsub.probe_failed", error_type=type(exc).__name__)
            return False
        self._set_connected(not stream.done())  # an answer is not a stream
        return True

    # -- messages (on the client's threads) ------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        loop = self._loop
        ack = False
        try:
            raw = RawGsmMessage(
                message_id=str(message.message_id),
                attributes={str(k): str(v) for k, v in message.attributes.items()},
                data=bytes(message.data),
                published_at=_aware(message.publish_time),
            )
            if loop is None or loop.is_closed():
                raise RuntimeError("event loop gone")
            loop.call_soon_threadsafe(self._set_connected, True)
            pending = asyncio.run_coroutine_threadsafe(self._handler(raw), loop)
            ack = bool(pending.result(timeout=self._handle_timeout))
        except Exception as exc:
            log.warning("pubsub.message_not_handled", error_type=type(exc).__name__)
        if ack:
            message.ack()
        else:
            message.nack()

    def _set_connected(self, connected: bool) -> None:
        if connected != self._connected:
            log.info("pubsub.connected" if connected else "pubsub.disconnected")
        self._connected = connected
        self._on_connected(connected)


def _aware(moment: Any) -> datetime | None:
    return moment if isinstance(moment, datetime) and moment.tzinfo is not None else None


async def _cancel_stream(future: concurrent.futures.Future[Any]) -> None:
    """Cancel a stream off the loop (it joins the client's threads), waiting a bounded time."""
    cancelling = asyncio.ensure_future(asyncio.to_thread(future.cancel))
    await asyncio.wait({cancelling}, timeout=_STOP_TIMEOUT_SECONDS)


def _close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.close()
