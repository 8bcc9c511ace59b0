"""Audit appends on PostgreSQL through the batching writer, keyed chain on (contract section 10).

Three measurements on one throwaway database each, in one run:

- baseline: 8 concurrent writers, one transaction (and one chain lock) per row — what every
  append cost before the batching writer;
- one process: 8 producer tasks submitting to one :class:`~omni_secrets.service.auditor.Auditor`
  (group commit: many rows per transaction under one lock);
- two processes: two such writers (8 producers each) on the same database at the same time.

Each run then checks that the ids are 1..N without a gap and that the keyed chain verifies with
the integrity key. The database comes from ``OMNI_BENCH_DATABASE_URL`` or
``OMNI_TEST_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); the
benchmark creates and drops its own databases there. Targets: one process >= 5,000 appends/s,
two processes >= 2,000/s together.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PRODUCERS = 8
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class AuditThroughput:
    baseline_per_second: float
    one_process_per_second: float
    two_processes_per_second: float
    one_process_events: int
    two_process_events: int
    gapless_and_intact: bool
    detail: str

    @property
    def ratio_vs_baseline(self) -> float:
        return self.one_process_per_second / self.baseline_per_second


def _server_url() -> str:
    return os.environ.get("OMNI_BENCH_DATABASE_URL") or os.environ.get(
        "OMNI_TEST_DATABASE_URL", DEFAULT_URL
    )


class _Databases:
    def __init__(self) -> None:
        self._base = make_url(_server_url())
        self._admin = create_engine(self._base, isolation_level="AUTOCOMMIT")
        self._names: list[str] = []

    def create(self) -> str:
        from omni_secrets.adapters.db import migrate

        name = f"omni_bench_{uuid.uuid4().hex[:10]}"
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self._names.append(name)
        url = self._base.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        return url

    def close(self) -> None:
        with self._admin.connect() as conn:
            for name in self._names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


def _event(producer: int, n: int) -> object:
    from omni_secrets.domain.models import NewAccessEvent

    return NewAccessEvent(
        occurred_at=datetime.now(UTC),
        action="status_view",
        actor=f"bench-{producer}",
        result="success",
        correlation_id=f"p{producer}-{n}",
        details={"cacheState": "ready"},
    )


def _keyring(key_file: str) -> object:
    from omni_secrets.adapters import integrity_keys

    return integrity_keys.load_keyring([key_file])


async def _batched(url: str, key_file: str, per_producer: int, start_at: float | None) -> float:
    """8 producers on one batching writer; seconds from the first submit to the last commit."""
    from omni_secrets.adapters.db.engine import create_engine as create_async_engine
    from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
    from omni_secrets.domain.errors import AuditUnavailable
    from omni_secrets.service.auditor import Auditor

    engine = create_async_engine(url)
    auditor = Auditor(
        uow_factory=sql_unit_of_work_factory(engine, keyring=_keyring(key_file))  # type: ignore[arg-type]
    )
    try:
        async with sql_unit_of_work_factory(engine)() as uow:  # warm the pool
            await uow.audit.recent(1)
        auditor.start()
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.time()))
        began = time.perf_counter()

        async def producer(index: int) -> None:
            for n in range(per_producer):
                while True:
                    try:
                        await auditor.submit(_event(index, n))  # type: ignore[arg-type]
                        break
                    except AuditUnavailable:
                        # The buffer is full: a request would be refused (503) and retried;
                        # the producers outrun the writer on purpose, so wait for room.
                        await asyncio.sleep(0.001)

        await asyncio.gather(*(producer(i) for i in range(PRODUCERS)))
        await auditor.stop()  # returns once everything submitted is committed (drain)
        elapsed = time.perf_counter() - began
        if auditor.lost or auditor.written != PRODUCERS * per_producer:
            raise RuntimeError(f"{auditor.lost} events lost")
        return elapsed
    finally:
        await auditor.stop()
        await engine.dispose()


async def _per_row(url: str, key_file: str, per_writer: int) -> float:
    """The baseline: 8 writers, one transaction and one chain lock per row."""
    from omni_secrets.adapters.db.engine import create_engine as create_async_engine
    from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory

    keyring = _keyring(key_file)
    engines = [create_async_engine(url, pool_size=1, max_overflow=0) for _ in range(PRODUCERS)]
    try:
        factories = [sql_unit_of_work_factory(e, keyring=keyring) for e in engines]  # type: ignore[arg-type]
        for factory in factories:
            async with factory() as uow:
                await uow.audit.recent(1)
        began = time.perf_counter()

        async def writer(index: int) -> None:
            for n in range(per_writer):
                async with factories[index]() as uow:
                    await uow.audit.append(_event(index, n))  # type: ignore[arg-type]
                    await uow.commit()

        await asyncio.gather(*(writer(i) for i in range(PRODUCERS)))
        return time.perf_counter() - began
    finally:
        for engine in engines:
            await engine.dispose()


async def _check(url: str, key_file: str, expected: int) -> tuple[bool, str]:
    from omni_secrets.adapters.db.engine import create_engine as create_async_engine
    from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
    from omni_secrets.domain.audit_chain import ChainVerifier

    keyring = _keyring(key_file)
    engine = create_async_engine(url)
    verifier = ChainVerifier(keyring)  # type: ignore[arg-type]
    try:
        after = 0
        while True:
            async with sql_unit_of_work_factory(engine)() as uow:
                page = await uow.audit.page(after, 5000)
            if not page:
                break
            for row in page:
                verifier.feed(row)
            after = page[-1].id
    finally:
        await engine.dispose()
    verdict = verifier.verdict
    ok = verdict.ok and verdict.checked == expected and verdict.keyed == expected
    return ok, f"{verdict.checked} rows, {verdict.keyed} keyed, first bad {verdict.first_bad_id}"


def _key_file(directory: str) -> str:
    path = Path(directory) / "integrity.key"
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    return str(path)


def _two_processes(url: str, key_file: str, per_producer: int) -> float:
    start_at = time.time() + 4.0  # both workers connect first, then start together
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.audit_appends",
                "--worker",
                url,
                key_file,
                str(per_producer),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    ends = []
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        if worker.returncode != 0:
            raise RuntimeError("a benchmark worker failed")
        ends.append(json.loads(out.strip().splitlines()[-1])["end"])
    return max(ends) - start_at


def run(*, quick: bool = False) -> AuditThroughput:
    per_producer = 1000 if quick else 5000
    baseline_rows = 100 if quick else 250
    databases = _Databases()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            key_file = _key_file(tmp)
            base_url = databases.create()
            baseline = (
                PRODUCERS * baseline_rows / asyncio.run(_per_row(base_url, key_file, baseline_rows))
            )
            one_url = databases.create()
            one_total = PRODUCERS * per_producer
            one = one_total / asyncio.run(_batched(one_url, key_file, per_producer, None))
            ok_one, detail_one = asyncio.run(_check(one_url, key_file, one_total))
            two_url = databases.create()
            two_total = 2 * PRODUCERS * per_producer
            two = two_total / _two_processes(two_url, key_file, per_producer)
            ok_two, detail_two = asyncio.run(_check(two_url, key_file, two_total))
    finally:
        databases.close()
    return AuditThroughput(
        baseline_per_second=baseline,
        one_process_per_second=one,
        two_processes_per_second=two,
        one_process_events=one_total,
        two_process_events=two_total,
        gapless_and_intact=ok_one and ok_two,
        detail=f"one process: {detail_one}; two processes: {detail_two}",
    )


def _worker(url: str, key_file: str, per_producer: int, start_at: float) -> None:
    asyncio.run(_batched(url, key_file, per_producer, start_at))
    print(json.dumps({"end": time.time()}))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        result = run(quick="--quick" in sys.argv)
        print(result)
