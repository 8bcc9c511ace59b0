"""The audit anchor job: the chain head to GSM at least every 60 s, and at once when poked.

Every replica runs it (:class:`~omni_secrets.service.audit_anchor.AuditAnchorWriter` keeps the
anchor from moving backwards). A break-glass or rotation event pokes it
(``service.audit_anchor.anchor_reactions``), so those are anchored within a GSM round trip. A
failed write is logged (``audit_anchor.write_failed``, once per reason until a write succeeds)
and retried at the next interval: the service keeps serving, and ``audit verify`` still
verifies the chain up to the last anchor written.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from omni_secrets.service.audit_anchor import AuditAnchorWriter

log = structlog.get_logger("omni_secrets.jobs.audit_anchor")

DEFAULT_INTERVAL_SECONDS = 60.0


class AuditAnchorJob:
    """Runs :meth:`AuditAnchorWriter.write` every interval and whenever :meth:`poke` is called.

    Args:
        writer: the anchor writer.
        interval_seconds: the longest time between two writes (contract: at most 60 s).
    """

    def __init__(
        self, writer: AuditAnchorWriter, *, interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    ) -> None:
        if not interval_seconds > 0:
            raise ValueError("interval_seconds must be positive")
        self._writer = writer
        self._interval = float(interval_seconds)
        self._wake: asyncio.Event | None = None
        self._failing: str | None = None

    def poke(self) -> None:
        """Write soon (after a break-glass or rotation event); never raises."""
        if self._wake is not None:
            self._wake.set()

    async def run_once(self) -> None:
        """One write; failures are logged, never raised."""
        try:
            anchor = await self._writer.write()
        except Exception as exc:  # GSM or the database: retried at the next interval
            reason = getattr(exc, "reason", None) or type(exc).__name__
            if reason != self._failing:
                log.warning(
                    "audit_anchor.write_failed",
                    secret_id=self._writer.secret_id,
                    error_type=type(exc).__name__,
                    reason=reason,
                )
            self._failing = reason
            return
        self._failing = None
        if anchor is not None:
            log.debug("audit_anchor.written", anchored_id=anchor.id)

    async def run_forever(self) -> None:
        """Write, then wait for the interval or a poke, until cancelled."""
        self._wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            await self.run_once()
