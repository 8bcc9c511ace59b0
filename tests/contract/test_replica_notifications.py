"""Cross-replica notifications: two app instances on ONE throwaway PostgreSQL database.

The periodic reconcile is set to an hour, so only a LISTEN/NOTIFY round trip can explain a
replica catching up within seconds. Catch-up is polled against a deadline, never slept for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from omni_secrets.adapters.db.engine import create_engine
from omni_secrets.adapters.notify import PostgresNotifier, postgres_conninfo
from omni_secrets.bootstrap import Overrides
from omni_secrets.domain.catalog import SecretType
from tests.contract.conftest import BreakGlassKeys, OmniStack, StackFactory
from tests.contract.test_breakglass_api import BREAK_GLASS, OVERRIDE_SECRET, SCOPE, sealed_request
from tests.contract.test_rotation import (
    NEW_API,
    PREVIEW,
    add_versions,
    commit_path,
    new_credentials,
)
from tests.integration.db.conftest import PostgresDatabases

pytestmark = pytest.mark.postgres
ROTATE = ("omni-secrets:rotate",)
CATCH_UP_SECONDS = 3.0
NO_PERIODIC_RECONCILE = Overrides(reconcile_interval_seconds=3600)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test only."""
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases.create()
    finally:
        databases.close()


async def two_replicas(
    factory: StackFactory, url: str, keys: BreakGlassKeys
) -> tuple[OmniStack, OmniStack]:
    stacks = []
    for _ in range(2):
        stack = await factory(database_url=url, overrides=NO_PERIODIC_RECONCILE, **keys.env())
        add_versions(stack, NEW_API)
        stack.apex.accept(new_credentials())
        stacks.append(stack)
    return stacks[0], stacks[1]


def notifier_of(stack: OmniStack) -> PostgresNotifier:
    notifier = stack.services.notifier
    assert isinstance(notifier, PostgresNotifier)
    return notifier


async def caught_up(stack: OmniStack, predicate: Callable[[], bool], what: str) -> float:
    """Seconds until ``predicate`` holds on ``stack`` (fails past :data:`CATCH_UP_SECONDS`)."""
    started = time.perf_counter()
    await stack.wait_for(predicate, timeout=CATCH_UP_SECONDS, what=what)
    return time.perf_counter() - started


def served_override(stack: OmniStack, secret_type: SecretType) -> str | None:
    entry = stack.services.cache.get(secret_type)
    return entry.override_id if entry else None


async def activate(stack: OmniStack, keys: BreakGlassKeys) -> str:
    response = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=sealed_request(keys))
    assert response.status_code == 201, response.text
    override_id: str = response.json()["overrideId"]
    return override_id


class TestReplicaNotifications:
    async def test_break_glass_reaches_the_other_replica_at_once(
        self,
        fresh_postgres_url: str,  # first: the database outlives both replicas
        omni_stack_factory: StackFactory,
        break_glass_keys: BreakGlassKeys,
    ) -> None:
        """An override activated on A is served by B within seconds; its revoke ends it there."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url, break_glass_keys)
        override_id = await activate(a, break_glass_keys)
        installed = await caught_up(
            b, lambda: served_override(b, SecretType.API_SECRET) == override_id, "install on B"
        )
        entry = b.services.cache.get(SecretType.API_SECRET)
        assert entry is not None
        assert entry.value.reveal() == OVERRIDE_SECRET

        revoked = await a.request("DELETE", f"{BREAK_GLASS}/{override_id}", scopes=SCOPE)
        assert revoked.status_code == 204
        removed = await caught_up(
            b, lambda: served_override(b, SecretType.API_SECRET) is None, "removal on B"
        )
        print(f"catch-up on B: activate {installed * 1000:.0f} ms, revoke {removed * 1000:.0f} ms")

    async def test_rotation_commit_reaches_the_other_replica_at_once(
        self,
        fresh_postgres_url: str,  # first: the database outlives both replicas
        omni_stack_factory: StackFactory,
        break_glass_keys: BreakGlassKeys,
    ) -> None:
        """A rotation committed on A makes B serve the new version within seconds."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url, break_glass_keys)

        def b_serves_new_key() -> bool:
            entry = b.services.cache.get(SecretType.API_KEY)
            return entry is not None and entry.value.reveal() == NEW_API["apex-omni-api-key"]

        opened = await a.request("POST", PREVIEW, json={"secretType": "api_key"}, scopes=ROTATE)
        assert opened.json()["ready"] is True, opened.text
        assert not b_serves_new_key()
        committed = await a.request("POST", commit_path(opened.json()["previewId"]), scopes=ROTATE)
        assert committed.status_code == 200, committed.text
        seconds = await caught_up(b, b_serves_new_key, "new api_key on B")
        print(f"catch-up on B: rotation commit {seconds * 1000:.0f} ms")

    async def test_listener_survives_a_terminated_connection(
        self,
        fresh_postgres_url: str,  # first: the database outlives both replicas
        omni_stack_factory: StackFactory,
        break_glass_keys: BreakGlassKeys,
    ) -> None:
        """B's listener connection is killed server-side; it reconnects and still delivers."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url, break_glass_keys)
        listener = notifier_of(b)
        pid = listener.backend_pid
        assert pid is not None
        with psycopg.connect(postgres_conninfo(fresh_postgres_url), autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert killed == (True,)
        await b.wait_for(
            lambda: listener.connections == 2 and listener.backend_pid not in (None, pid),
            timeout=CATCH_UP_SECONDS,
            what="listener reconnect",
        )

        override_id = await activate(a, break_glass_keys)
        await caught_up(
            b, lambda: served_override(b, SecretType.API_SECRET) == override_id, "install on B"
        )

    async def test_publish_without_database_is_swallowed(self) -> None:
        """A publish that cannot reach the database returns quietly (reconcile is the fallback)."""
        url = "postgresql+psycopg://postgres@127.0.0.1:1/unreachable"
        engine = create_engine(url)
        try:
            notifier = PostgresNotifier(engine, postgres_conninfo(url), publish_timeout_seconds=2)
            await asyncio.wait_for(notifier.publish("rotation"), timeout=CATCH_UP_SECONDS)
        finally:
            await engine.dispose()
