"""Google Secret Manager and its Pub/Sub feed as the service and the operator's CLI reach them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from omni_secrets.adapters import gsm as gsm_adapter
from omni_secrets.adapters.retry import RetryPolicy
from omni_secrets.config import Settings
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.gsm_events import RawGsmMessage
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.gsm_events.service import GsmEventService
from omni_secrets.service.gsm_versions import GsmVersions

if TYPE_CHECKING:
    # Annotations only: google-cloud-pubsub (with its OpenTelemetry and IAM types, about 40 ms
    # and 5 MB) loads in build_gsm_subscriber, i.e. only when OMNI_PUBSUB_SUBSCRIPTION is set.
    from omni_secrets.adapters import pubsub as pubsub_adapter


def build_secret_store(
    settings: Settings, *, metrics: OmniMetrics | None = None, clock: Clock | None = None
) -> SecretStore:
    """The GSM client for ``settings`` (Google with ADC, or the insecure ``OMNI_GSM_ENDPOINT``).

    Used by the app and by CLI commands that read GSM (``db seed``). Close it with ``aclose()``.
    """

    def on_call(record: gsm_adapter.GsmCallRecord) -> None:
        if metrics is not None:
            metrics.observe_gsm_call(record.method, record.code, record.duration_seconds)

    return gsm_adapter.GsmSecretManagerClient(
        project_id=settings.gsm.project_id,
        endpoint=settings.gsm_endpoint,
        timeout_seconds=settings.gsm_timeout_seconds,
        retry=RetryPolicy(),
        on_call=on_call,
        clock=clock,
    )


def build_gsm_versions(settings: Settings) -> tuple[GsmVersions, Callable[[], Awaitable[None]]]:
    """The operator's GSM version tool for ``settings`` and the coroutine that closes it.

    Used by ``omni-secrets gsm versions``; the service never writes to GSM.
    """
    client = gsm_adapter.GsmSecretManagerClient(
        project_id=settings.gsm.project_id,
        endpoint=settings.gsm_endpoint,
        timeout_seconds=settings.gsm_timeout_seconds,
        retry=RetryPolicy(),
    )
    return GsmVersions(Catalog(settings.gsm_secret_prefix), client, client), client.aclose


def build_gsm_subscriber(
    events: GsmEventService,
    metrics: OmniMetrics,
    factory: Callable[..., pubsub_adapter.PubSubEventSubscriber] | None,
) -> pubsub_adapter.PubSubEventSubscriber:
    """The Pub/Sub subscriber feeding ``events`` (built, not started: no connection yet).

    Args:
        events: the service that judges each message.
        metrics: shows ``omni_gsm_events_connected`` (0 from now until the stream opens).
        factory: builds the subscriber instead of the real one (tests), if given.
    """
    show_connected = metrics.track_gsm_events_connection(events.subscription)

    def on_connected(connected: bool) -> None:
        events.connected = connected
        show_connected(connected)

    async def handle(message: RawGsmMessage) -> bool:
        return (await events.handle(message)).ack

    if factory is None:
        from omni_secrets.adapters.pubsub import PubSubEventSubscriber

        factory = PubSubEventSubscriber
    return factory(subscription=events.subscription, handler=handle, on_connected=on_connected)
