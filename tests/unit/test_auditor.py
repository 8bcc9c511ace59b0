"""The batching audit writer (contract section 10) against the in-memory database fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from omni_secrets.domain.audit_chain import verify_chain
from omni_secrets.domain.errors import AuditUnavailable
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.service.auditor import BATCH_MAX, Auditor
from omni_secrets.testing import InMemoryUnitOfWorkFactory


def event(n: int, action: str = "status_view") -> NewAccessEvent:
    return NewAccessEvent(
        occurred_at=datetime(2026, 11, 27, tzinfo=UTC),
        action=action,  # type: ignore[arg-type]
        actor="tester",
        result="success",
        correlation_id=f"c-{n}",
    )


class Rig:
    def __init__(self, **options: float) -> None:
        self.db = InMemoryUnitOfWorkFactory()
        self.failures = 0
        self.lost = 0
        self.batches: list[int] = []
        self.auditor = Auditor(
            uow_factory=self.db,
            on_write_failure=self._failed,
            on_batch=self.batches.append,
            on_lost=self._lost,
            **options,  # type: ignore[arg-type]
        )

    def _failed(self) -> None:
        self.failures += 1

    def _lost(self, count: int) -> None:
        self.lost += count

    def written(self) -> list[str | None]:
        return [e.correlation_id for e in self.db.db.committed.events]

    async def until_written(self, count: int) -> None:
        for _ in range(2000):
            if len(self.written()) >= count:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"only {len(self.written())} of {count} events written")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    rig.auditor.start()
    yield rig
    await rig.auditor.stop()


class TestGroupCommit:
    async def test_many_events_few_transactions_in_order(self, rig: Rig) -> None:
        """1,200 events are written in order, gapless, in batches of at most BATCH_MAX."""
        commits_before = rig.db.db.commits
        for n in range(1200):
            await rig.auditor.submit(event(n))
        await rig.until_written(1200)
        assert rig.written() == [f"c-{n}" for n in range(1200)]
        assert [e.id for e in rig.db.db.committed.events] == list(range(1, 1201))
        assert verify_chain(rig.db.db.committed.events).ok
        assert max(rig.batches) <= BATCH_MAX and sum(rig.batches) == 1200
        assert rig.db.db.commits - commits_before == len(rig.batches) < 1200
        assert rig.failures == 0 and rig.auditor.pending == 0

    async def test_record_awaits_its_own_commit(self, rig: Rig) -> None:
        """record() returns the stored row, numbered after what was buffered before it."""
        for n in range(3):
            rig.auditor.record_later(event(n))
        stored = await rig.auditor.record(event(99, "break_glass_revoke"))
        assert stored.id == 4 and stored.correlation_id == "c-99"


class TestDatabaseDown:
    async def test_events_are_held_and_written_in_order_on_return(self, rig: Rig) -> None:
        """While the DB is down events wait in memory (not lost, not counted), then all land."""
        rig.db.db.unavailable = True
        for n in range(250):
            await rig.auditor.submit(event(n))
        await asyncio.sleep(0.2)
        assert rig.auditor.pending == 250 and rig.written() == []
        assert rig.failures == 0
        rig.db.db.unavailable = False
        await rig.until_written(250)
        assert rig.written() == [f"c-{n}" for n in range(250)]
        assert verify_chain(rig.db.db.committed.events).ok

    async def test_past_the_limit_events_are_lost_and_counted(self) -> None:
        """Only background events beyond max_pending are lost (counted); the held ones are
        written."""
        rig = Rig(max_pending=5)
        rig.auditor.start()
        rig.db.db.unavailable = True
        for n in range(8):
            rig.auditor.record_later(event(n))
        await asyncio.sleep(0.1)
        assert rig.failures == 3 and rig.lost == 3 and rig.auditor.pending == 5
        rig.db.db.unavailable = False
        await rig.until_written(5)
        assert rig.written() == [f"c-{n}" for n in range(5)]
        await rig.auditor.stop()

    async def test_fail_closed_record_fails_and_is_never_written_later(self, rig: Rig) -> None:
        """record() during an outage raises AuditUnavailable; its row never appears afterwards."""
        rig.db.db.unavailable = True
        await rig.auditor.submit(event(1))
        with pytest.raises(AuditUnavailable):
            await rig.auditor.record(event(2, "break_glass_revoke"))
        rig.db.db.unavailable = False
        await rig.auditor.submit(event(3))
        await rig.until_written(2)
        await asyncio.sleep(0.05)
        assert rig.written() == ["c-1", "c-3"]
        assert rig.failures == 1


class TestPoisonRow:
    async def test_a_refused_row_is_given_up_alone_and_the_rest_is_written(self) -> None:
        """A row the database refuses (not an outage) is lost alone; the others are written."""
        rig = Rig()
        real_factory = rig.db

        class RefusingAudit:
            def __init__(self, inner: Any) -> None:
                self._inner = inner

            async def append_many(self, batch: list[NewAccessEvent]) -> object:
                if any(e.correlation_id == "c-poison" for e in batch):
                    raise ValueError("refused by the database")
                return await self._inner.append_many(batch)

        class RefusingUnitOfWork:
            def __init__(self) -> None:
                self._inner = real_factory()

            async def __aenter__(self) -> RefusingUnitOfWork:
                await self._inner.__aenter__()
                return self

            async def __aexit__(self, *exc: object) -> None:
                await self._inner.__aexit__(*exc)

            @property
            def audit(self) -> RefusingAudit:
                return RefusingAudit(self._inner.audit)

            async def commit(self) -> None:
                await self._inner.commit()

        factory = RefusingUnitOfWork
        rig.auditor._uow_factory = factory  # type: ignore[assignment]
        rig.auditor.start()
        for n in range(3):
            rig.auditor.record_later(event(n))
        rig.auditor.record_later(event(0).model_copy(update={"correlation_id": "c-poison"}))
        for n in range(3, 6):
            rig.auditor.record_later(event(n))
        await rig.until_written(6)
        assert rig.written() == [f"c-{n}" for n in range(6)]
        assert rig.failures == 1
        await rig.auditor.stop()


class _StalledFactory:
    """A unit of work that never answers (a partitioned database) until ``released``."""

    def __init__(self, inner: InMemoryUnitOfWorkFactory) -> None:
        self.inner = inner
        self.released = asyncio.Event()

    def __call__(self) -> Any:
        factory = self

        class _Stalled:
            async def __aenter__(self) -> Any:
                await factory.released.wait()
                self._uow = factory.inner()
                return await self._uow.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                return await self._uow.__aexit__(*exc)

        return _Stalled()


class TestBackpressure:
    async def test_submit_refuses_at_once_when_full_and_loses_nothing(self) -> None:
        """A full buffer refuses the next audited event within a second, even while the writer
        waits on a database that never answers; what was accepted is written once it answers."""
        stalled = _StalledFactory(InMemoryUnitOfWorkFactory())
        failures: list[int] = []
        auditor = Auditor(
            uow_factory=stalled,
            on_write_failure=lambda: failures.append(1),
            max_pending=10,
            write_timeout_seconds=0.2,
        )
        auditor.start()
        for n in range(10):
            await auditor.submit(event(n))
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(AuditUnavailable):
            await auditor.submit(event(10))
        assert loop.time() - began < 1
        await asyncio.sleep(0.5)  # the stalled batch timed out (counted as a failed batch)
        stalled.released.set()
        for _ in range(400):
            if len(stalled.inner.db.committed.events) == 10:
                break
            await asyncio.sleep(0.01)
        written = [e.correlation_id for e in stalled.inner.db.committed.events]
        assert written == [f"c-{n}" for n in range(10)]
        assert auditor.lost == 0 and failures == []
        await auditor.stop()


class TestStop:
    async def test_stop_drains_pending_events(self) -> None:
        """stop() writes what is buffered before returning."""
        rig = Rig()
        rig.auditor.start()
        for n in range(700):
            rig.auditor.record_later(event(n))
        await rig.auditor.stop()
        assert len(rig.written()) == 700 and rig.failures == 0

    async def test_stop_gives_up_after_the_drain_bound(self) -> None:
        """With the DB down, stop() returns after drain_seconds and reports the rest as lost."""
        rig = Rig(drain_seconds=0.2)
        rig.auditor.start()
        rig.db.db.unavailable = True
        for n in range(4):
            rig.auditor.record_later(event(n))
        loop = asyncio.get_running_loop()
        began = loop.time()
        await rig.auditor.stop()
        assert loop.time() - began < 2
        assert rig.lost == 4 and rig.auditor.pending == 0
        assert rig.failures == 1  # paged once, not once per event
