"""The notification adapter's pieces that need no database: coalescing and the connection string."""

from __future__ import annotations

import asyncio

from omni_secrets.adapters.notify import Coalescer, LocalNotifier, postgres_conninfo


async def settle() -> None:
    """Let every ready task run until the event loop is idle again."""
    for _ in range(20):
        await asyncio.sleep(0)


class TestCoalescer:
    async def test_burst_runs_once(self) -> None:
        """Ten triggers before the runner wakes lead to exactly one run."""
        runs: list[int] = []

        async def reconcile() -> None:
            runs.append(len(runs))

        coalescer = Coalescer(reconcile)
        coalescer.start()
        try:
            for _ in range(10):
                coalescer.trigger()
            await settle()
            assert runs == [0]
        finally:
            await coalescer.stop()

    async def test_triggers_during_a_run_cause_one_more(self) -> None:
        """A burst arriving while a run is in flight is served by exactly one further run."""
        runs = 0
        gate = asyncio.Event()

        async def reconcile() -> None:
            nonlocal runs
            runs += 1
            if runs == 1:
                await gate.wait()

        coalescer = Coalescer(reconcile)
        coalescer.start()
        try:
            coalescer.trigger()
            await settle()
            assert runs == 1
            for _ in range(5):
                coalescer.trigger()
            gate.set()
            await settle()
            assert runs == 2
        finally:
            await coalescer.stop()

    async def test_failed_run_keeps_the_runner(self) -> None:
        """A reconcile that raises is logged; the next trigger still runs."""
        runs = 0

        async def reconcile() -> None:
            nonlocal runs
            runs += 1
            if runs == 1:
                raise RuntimeError("database away")

        coalescer = Coalescer(reconcile)
        coalescer.start()
        try:
            coalescer.trigger()
            await settle()
            coalescer.trigger()
            await settle()
            assert runs == 2
        finally:
            await coalescer.stop()


class TestPostgresConninfo:
    def test_keeps_password_and_drops_driver(self) -> None:
        """The SQLAlchemy driver suffix goes; user, password, host and database stay."""
        url = "postgresql+psycopg://omni:fake-pw@db.example:5433/omni"
        assert postgres_conninfo(url) == "postgresql://omni:fake-pw@db.example:5433/omni"


class TestLocalNotifier:
    async def test_publish_calls_nobody(self) -> None:
        """In one process publishing never reaches the listener callback."""
        calls: list[str] = []

        async def on_change() -> None:
            calls.append("reconcile")

        notifier = LocalNotifier()
        await notifier.start(on_change)
        await notifier.publish("break_glass")
        await settle()
        await notifier.stop()
        assert calls == []


class TestUrgentTrigger:
    async def test_urgent_cuts_the_debounce_short(self) -> None:
        """An urgent trigger runs at once; a plain one waits out the debounce."""
        runs: list[float] = []
        loop = asyncio.get_running_loop()

        async def reconcile() -> None:
            runs.append(loop.time())

        coalescer = Coalescer(reconcile, debounce_seconds=30.0)
        coalescer.start()
        try:
            coalescer.trigger()
            await settle()
            assert runs == []  # still debouncing
            started = loop.time()
            coalescer.trigger(urgent=True)
            for _ in range(50):
                if runs:
                    break
                await asyncio.sleep(0.01)
            assert len(runs) == 1
            assert runs[0] - started < 1.0
        finally:
            await coalescer.stop()
