"""``GsmEventFeed``: the state of the GSM event subscription, as status shows it.

Built before any service, so the secret service (which shows it) and the GSM event service and
subscriber (which update it) each receive it ready-made: none of them is bound late to another.
"""

from __future__ import annotations

from datetime import datetime

from omni_secrets.service.views import EventsView


class GsmEventFeed:
    """The subscription's name, whether it is connected, and when the last message arrived.

    Args:
        subscription: the Pub/Sub subscription (``OMNI_PUBSUB_SUBSCRIPTION``); None: GSM
            events are off, and status shows ``events`` as null.
    """

    def __init__(self, subscription: str | None) -> None:
        self.subscription = subscription
        self.connected = False
        self.last_event_at: datetime | None = None

    def view(self) -> EventsView | None:
        if self.subscription is None:
            return None
        return EventsView(self.subscription, self.connected, self.last_event_at)
