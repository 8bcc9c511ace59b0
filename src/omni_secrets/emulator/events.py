"""GSM event notifications from the emulator: GSM's Pub/Sub message format, official client.

Real GSM publishes to a secret's topics on every change; :class:`PubSubEventPublisher` does the
same for the emulator (``omni-secrets emulator --pubsub-topic projects/P/topics/T``), so the chain
GSM → Pub/Sub → service runs end to end on Google's Pub/Sub emulator. Each message has the
attributes ``eventType``, ``secretId`` (``projects/P/secrets/ID``), ``versionId`` (version events)
and ``dataFormat`` = ``JSON_API_V1``; ``data`` is the JSON of the secret or version resource
(a ``SecretVersion`` has no payload field: no value is ever published).

Publishing does not hold up the RPC: the client batches in its own threads, and a failed publish
is logged (as GSM's own notifications are best-effort, so are these).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from google.api_core import exceptions as gexc

logger = logging.getLogger(__name__)

DATA_FORMAT = "JSON_API_V1"


class PubSubEventPublisher:
    """Publishes GSM-format event messages to ``topic``.

    Args:
        topic: ``projects/P/topics/T``; created when missing (emulator convenience).
        publisher: a ``pubsub_v1.PublisherClient`` (built when omitted).

    Raises:
        ValueError: ``PUBSUB_EMULATOR_HOST`` is unset and no publisher is given (the GSM
            emulator never publishes to Google's real Pub/Sub).
    """

    def __init__(self, topic: str, *, publisher: Any = None) -> None:
        import google.cloud.pubsub_v1 as pubsub_v1

        if publisher is None and not os.environ.get("PUBSUB_EMULATOR_HOST"):
            raise ValueError("--pubsub-topic needs PUBSUB_EMULATOR_HOST (the Pub/Sub emulator)")
        self.topic = topic
        self._publisher = publisher or pubsub_v1.PublisherClient()
        with contextlib.suppress(gexc.AlreadyExists):
            self._publisher.create_topic(request={"name": topic})
        self.published = 0

    def publish(self, event_type: str, resource: Any) -> None:
        """Publish ``event_type`` about ``resource`` (a ``Secret`` or ``SecretVersion``)."""
        name = str(resource.name)
        attributes = {"eventType": event_type, "dataFormat": DATA_FORMAT}
        if "/versions/" in name:
            attributes["secretId"] = name.split("/versions/", 1)[0]
            attributes["versionId"] = name
        else:
            attributes["secretId"] = name
        data = type(resource).to_json(resource).encode()
        future = self._publisher.publish(self.topic, data, **attributes)
        future.add_done_callback(_log_failure)
        self.published += 1

    def close(self) -> None:
        """Flush what is pending and stop the client's threads."""
        try:
            self._publisher.stop()
        except Exception:  # closing must not mask whatever ended the emulator
            logger.warning("emulator.pubsub_close_failed", exc_info=True)


def _log_failure(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        logger.warning("emulator.pubsub_publish_failed error=%s", type(exc).__name__)
