"""Contract section 18, a database that stops answering (a partition, not a refusal): the real
``omni-secrets serve`` on PostgreSQL behind :class:`~omni_secrets.testing.fault_proxy.FaultProxy`.

``/readyz`` answers 503 with the reason within 2 s, an audited request is refused within 1 s once
the audit buffer is full (nothing answered without its row), and SIGTERM ends the process within
15 s while the partition lasts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from omni_secrets.adapters import integrity_keys
from omni_secrets.api.auth import mint_hs256_token
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.emulator import GsmEmulator
from omni_secrets.service.auditor import MAX_PENDING
from omni_secrets.testing.fault_proxy import FaultProxy, ThreadedFaultProxy
from tests.contract.conftest import HS256_SECRET, StackFactory
from tests.contract.test_audit_pipeline import (
    Served,
    database,  # noqa: F401  (fixture)
    emulator,  # noqa: F401  (fixture)
    migrate_and_seed,
    serve_env,
    status_views,
)

pytestmark = pytest.mark.postgres
STATUS = "/ops/apex-omni/secrets/status"


def token() -> str:
    return mint_hs256_token(
        secret=HS256_SECRET,
        scopes=("omni-secrets:read",),
        subject="partition",
        audience="omni-secrets",
        now=datetime.now(UTC),
        ttl=timedelta(hours=1),
    )


@pytest.fixture
def proxied(database: str) -> Iterator[tuple[ThreadedFaultProxy, str]]:  # noqa: F811
    url = make_url(database)
    with ThreadedFaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy, proxy.rewrite(database)


def timed_get(url: str, **kwargs: object) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = httpx.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - began


def test_readyz_says_503_in_time_and_sigterm_exits_during_a_partition(
    proxied: tuple[ThreadedFaultProxy, str],
    database: str,  # noqa: F811
    emulator: GsmEmulator,  # noqa: F811
    tmp_path: object,
) -> None:
    proxy, via_proxy = proxied
    key_file = Path(str(tmp_path)) / "integrity.key"
    integrity_keys.create_key_file(key_file)
    env = serve_env(via_proxy, emulator, str(key_file))
    migrate_and_seed(env)
    served = Served(env)
    try:
        served.wait_ready()
        headers = {"Authorization": f"Bearer {token()}"}
        answered, _ = timed_get(f"{served.url}{STATUS}", headers=headers)
        assert answered.status_code == 200
        request_id = answered.headers["x-request-id"]
        for _ in range(100):  # its row is written before the partition starts
            if request_id in status_views(database):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the status_view row was not written")

        proxy.set_mode("hang")
        readiness: list[tuple[int, float, str]] = []
        ends = time.monotonic() + 6
        while time.monotonic() < ends:
            response, took = timed_get(f"{served.url}/readyz")
            readiness.append((response.status_code, took, response.text))
        assert max(took for _, took, _ in readiness) < 2, readiness
        assert readiness[-1][0] == 503, readiness
        assert "database" in readiness[-1][2]
        # A request answered during the partition is held in the buffer, not lost...
        try:
            during, _ = timed_get(f"{served.url}{STATUS}", headers=headers)
        except httpx.ReadTimeout:
            pytest.fail("".join(served.lines[-30:]))
        assert during.status_code == 200

        try:
            code, took = served.terminate()
        except Exception:
            pytest.fail("".join(served.lines[-40:]))
        pathlib_log = Path(str(tmp_path)) / "serve.log"
        pathlib_log.write_text("".join(served.lines))
        assert took < 15, (took, str(pathlib_log))
        slowest = max(t for _, t, _ in readiness)
        print(f"partition: slowest /readyz {slowest:.2f} s, SIGTERM {took:.2f} s")
        # ...and when the process had to stop before the database answered, it says so once.
        drained = [line for line in served.lines if "audit.drain_incomplete" in line]
        assert len(drained) == 1, "".join(served.lines[-20:])
        assert code == 0
        assert '"lost":1' in drained[0].replace(" ", "")
    finally:
        proxy.set_mode("up")
        served.kill()


@pytest.fixture
async def async_proxy(database: str) -> AsyncIterator[FaultProxy]:  # noqa: F811
    url = make_url(database)
    async with FaultProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy
        proxy.mode = "up"


async def test_a_full_audit_buffer_refuses_at_once_and_loses_nothing(
    async_proxy: FaultProxy,
    omni_stack_factory: StackFactory,
    database: str,  # noqa: F811
) -> None:
    """During a partition the buffer fills; the next audited request is refused within 1 s
    (503 AUDIT_UNAVAILABLE) instead of waiting and losing its row; every accepted event is
    written once the database answers again."""
    stack = await omni_stack_factory(database_url=async_proxy.rewrite(database))
    auditor = stack.app.state.services.auditor
    async_proxy.mode = "hang"
    filler = NewAccessEvent(
        occurred_at=datetime.now(UTC),
        action="status_view",
        actor="filler",
        result="success",
        correlation_id="fake-filler",
    )
    while auditor.pending < MAX_PENDING:
        auditor.record_later(filler)
    began = time.monotonic()
    refused = await stack.request("GET", STATUS)
    took = time.monotonic() - began
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "AUDIT_UNAVAILABLE"
    assert took < 1, took
    print(f"partition: full buffer refused in {took * 1000:.0f} ms")
    assert auditor.lost == 0
    metrics = (await stack.client.get("/metrics")).text
    assert "omni_audit_events_lost_total 0.0" in metrics
    async_proxy.mode = "up"
    for _ in range(600):
        if auditor.pending == 0:
            break
        await asyncio.sleep(0.05)
    assert auditor.pending == 0 and auditor.lost == 0
    answered = await stack.request("GET", STATUS)
    assert answered.status_code == 200
