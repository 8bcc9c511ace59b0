"""The audit trail as its readers outside the service layer see it (a port, not the writer).

Observers of the cache and of the services queue audit rows they do not wait for; they need
only this, not the :class:`~omni_secrets.service.auditor.Auditor` that implements it.
"""

from __future__ import annotations

from typing import Protocol

from omni_secrets.domain.models import NewAccessEvent


class BackgroundAudit(Protocol):
    """Queues audit rows for the background writer (best effort, never blocks)."""

    def record_later(self, event: NewAccessEvent) -> None:
        """Queue ``event``; a failed write is counted and alerted by the writer, not raised."""
        ...
