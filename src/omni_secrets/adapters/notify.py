"""Cross-replica change notifications: PostgreSQL LISTEN/NOTIFY, or nothing in one process.

:class:`PostgresNotifier` publishes with ``SELECT pg_notify('omni_secrets', kind)`` on a short
connection of the app's engine, after the change was committed (a failed publish is logged and
dropped: the periodic reconcile is the fallback). Its listener holds one dedicated psycopg 3
connection in autocommit with ``LISTEN omni_secrets``; each notification triggers a
:class:`Coalescer`, so a burst of notifications leads to one reconcile (plus at most one more for
those that arrive while it runs). Kinds in ``URGENT_KINDS`` (a cluster refresh, a GSM revocation)
start the reconcile at once instead of after the debounce. When the connection drops, the
listener reconnects with exponential backoff and, once listening again, reconciles once for
whatever it missed meanwhile.

:class:`LocalNotifier` is for SQLite (one process): the process that made a change already
applied it, so there is nobody to tell.

Notification payloads carry the change kind only, never ids or values.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import psycopg
import structlog
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from omni_secrets.domain.changes import URGENT_KINDS, OnChange

log = structlog.get_logger("omni_secrets.notify")

CHANNEL = "omni_secrets"
DEFAULT_DEBOUNCE_SECONDS = 0.05
DEFAULT_PUBLISH_TIMEOUT_SECONDS = 2.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5
DEFAULT_INITIAL_BACKOFF_SECONDS = 0.2
DEFAULT_MAX_BACKOFF_SECONDS = 10.0


def postgres_conninfo(url: str | URL) -> str:
    """The libpq connection string psycopg needs for the SQLAlchemy ``url`` (password kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Coalescer:
    """Runs ``callback`` after :meth:`trigger`; triggers that pile up collapse into one run.

    At most one run is in flight. Triggers before a run starts (including those within the
    ``debounce_seconds`` window after the first) are served by it; triggers during a run cause
    exactly one more run after it. A failing callback is logged and does not stop the runner.

    Args:
        callback: the work to run (a reconcile).
        debounce_seconds: how long to wait after the first trigger before running.
    """

    def __init__(self, callback: OnChange, *, debounce_seconds: float = 0.0) -> None:
        self._callback = callback
        self._debounce = debounce_seconds
        self._pending = asyncio.Event()
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def trigger(self, *, urgent: bool = False) -> None:
        """Ask for a run (cheap, synchronous, never raises); ``urgent`` cuts the debounce short."""
        self._pending.set()
        if urgent:
            self._urgent.set()

    def start(self) -> None:
        """Start the runner task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notify-coalescer")

    async def stop(self) -> None:
        """Cancel the runner and wait for it (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            if self._debounce > 0 and not self._urgent.is_set():
                # asyncio.wait, not asyncio.timeout: a stop() racing the debounce's end must never
                # be swallowed as a timeout (3.11), or stop() would wait for ever.
                urgent = asyncio.ensure_future(self._urgent.wait())
                try:
                    await asyncio.wait((urgent,), timeout=self._debounce)
                finally:
                    urgent.cancel()
            self._pending.clear()
            self._urgent.clear()
            try:
                await self._callback()
            except Exception as exc:  # the runner must outlive any one failed reconcile
                log.warning("notify.reconcile_failed", error_type=type(exc).__name__)


class LocalNotifier:
    """The notifier of a single process (SQLite): nothing to publish, nothing to hear."""

    async def publish(self, kind: str) -> None:
        """Do nothing: this process already applied its own change."""

    async def start(self, on_change: OnChange) -> None:
        """Do nothing: no other process shares the database."""

    async def stop(self) -> None:
        """Do nothing."""


class PostgresNotifier:
    """LISTEN/NOTIFY on PostgreSQL (see the module docstring).

    Args:
        engine: the app's engine; :meth:`publish` borrows a short connection from it.
        conninfo: libpq connection string of the same database for the listener
            (:func:`postgres_conninfo`).
        channel: the notification channel.
        debounce_seconds: how long a first notification waits for the rest of its burst.
        publish_timeout_seconds: a publish taking longer is abandoned (and logged).
        connect_timeout_seconds: the listener's connect timeout.
        initial_backoff_seconds: first wait before reconnecting; doubles up to
            ``max_backoff_seconds`` while reconnecting keeps failing.
        max_backoff_seconds: the longest wait between reconnect attempts.
        sleep: how the listener waits between attempts (tests may shorten it).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        conninfo: str,
        *,
        channel: str = CHANNEL,
        debounce_seconds: float = DEFAULT_DEBOUNCE_SECONDS,
        publish_timeout_seconds: float = DEFAULT_PUBLISH_TIMEOUT_SECONDS,
        connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        initial_backoff_seconds: float = DEFAULT_INITIAL_BACKOFF_SECONDS,
        max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._engine = engine
        self._conninfo = conninfo
        self._channel = channel
        self._debounce = debounce_seconds
        self._publish_timeout = publish_timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._initial_backoff = initial_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._sleep = sleep
        self._coalescer: Coalescer | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._listening = asyncio.Event()
        self._connections = 0

    @property
    def backend_pid(self) -> int | None:
        """The listener connection's server process id while it is listening, else None."""
        conn = self._conn
        if conn is None or not self._listening.is_set():
            return None
        return conn.info.backend_pid

    @property
    def connections(self) -> int:
        """How many times the listener has started listening (1 + successful reconnects)."""
        return self._connections

    async def wait_listening(self, within_seconds: float) -> bool:
        """Wait up to ``within_seconds`` until the listener is listening; whether it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_seconds):
                await self._listening.wait()
        return self._listening.is_set()

    async def publish(self, kind: str) -> None:
        """``pg_notify`` the channel with ``kind`` on its own short connection; never raises."""
        try:
            async with asyncio.timeout(self._publish_timeout):
                async with self._engine.connect() as conn:
                    await conn.execute(
                        text("SELECT pg_notify(:channel, :kind)"),
                        {"channel": self._channel, "kind": kind},
                    )
                    await conn.commit()
        except Exception as exc:  # the change is committed; reconcile is the fallback
            log.warning("notify.publish_failed", kind=kind, error_type=type(exc).__name__)

    async def start(self, on_change: OnChange) -> None:
        """Start the listener and wait (up to the connect timeout) until it listens.

        A database that cannot be reached does not fail startup: the listener keeps retrying
        in the background and the periodic reconcile covers the gap.
        """
        if self._task is not None:
            return
        self._coalescer = Coalescer(on_change, debounce_seconds=self._debounce)
        self._coalescer.start()
        self._task = asyncio.create_task(self._listen_forever(), name="notify-listener")
        if not await self.wait_listening(float(self._connect_timeout)):
            log.warning("notify.listener_not_ready", outcome="retrying in the background")

    async def stop(self) -> None:
        """Cancel the listener (closing its connection) and the coalescer; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._coalescer is not None:
            await self._coalescer.stop()
            self._coalescer = None

    async def _listen_forever(self) -> None:
        backoff = self._initial_backoff
        while True:
            try:
                await self._listen_once()
                backoff = self._initial_backoff  # it was listening: the next drop starts over
            except Exception as exc:
                # Only the exception's type: libpq messages can echo connection parameters.
                log.warning(
                    "notify.listener_lost",
                    error_type=type(exc).__name__,
                    retry_in_seconds=backoff,
                )
            await self._sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _listen_once(self) -> None:
        """Connect, LISTEN and deliver notifications until the connection fails."""
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
        )
        self._conn = conn
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._connections += 1
            self._listening.set()
            if self._connections > 1:
                # Notifications sent while this replica was not listening are lost: catch up.
                self._trigger()
                log.info("notify.listener_reconnected")
            async for notification in conn.notifies():
                self._trigger(urgent=notification.payload in URGENT_KINDS)
        finally:
            self._listening.clear()
            self._conn = None
            await conn.close()

    def _trigger(self, *, urgent: bool = False) -> None:
        if self._coalescer is not None:
            self._coalescer.trigger(urgent=urgent)
