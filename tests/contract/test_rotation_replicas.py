"""Two replicas (two ``create_app`` instances with their own engines) on ONE PostgreSQL database.

Each test gets a throwaway database. Each replica has its own GSM emulator seeded identically, so
candidate versions are added to both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from omni_secrets.bootstrap import Overrides
from omni_secrets.testing import RecordingAlertSink
from tests.contract.conftest import OmniStack, StackFactory
from tests.contract.test_rotation import (
    NEW_API,
    PREVIEW,
    add_versions,
    cancel_path,
    commit_path,
    new_credentials,
)
from tests.contract.test_rotation_monitor import age_group
from tests.integration.db.conftest import PostgresDatabases

pytestmark = pytest.mark.postgres
ROTATE = ("omni-secrets:rotate",)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test only."""
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases.create()
    finally:
        databases.close()


async def two_replicas(
    factory: StackFactory, url: str, sinks: tuple[RecordingAlertSink, RecordingAlertSink] | None
) -> tuple[OmniStack, OmniStack]:
    stacks = []
    for index in range(2):
        overrides = Overrides(alert_sinks=[sinks[index]]) if sinks else None
        stack = await factory(database_url=url, overrides=overrides)
        add_versions(stack, NEW_API)
        stack.apex.accept(new_credentials())
        stacks.append(stack)
    return stacks[0], stacks[1]


class TestReplicas:
    async def test_concurrent_previews_one_wins(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """Concurrent previews of one group on two replicas: exactly one 200 and one 409."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url, None)
        for _ in range(5):
            responses = await asyncio.gather(
                a.request("POST", PREVIEW, json={"secretType": "api_key"}, scopes=ROTATE),
                b.request("POST", PREVIEW, json={"secretType": "api_secret"}, scopes=ROTATE),
            )
            assert sorted(r.status_code for r in responses) == [200, 409]
            winner = next(r for r in responses if r.status_code == 200).json()
            loser = next(r for r in responses if r.status_code == 409).json()
            assert loser["error"]["code"] == "ROTATION_IN_PROGRESS"
            assert loser["error"]["details"]["previewId"] == winner["previewId"]
            # Either replica can cancel what the other opened: the lock lives in the database.
            cancelled = await b.request("DELETE", cancel_path(winner["previewId"]), scopes=ROTATE)
            assert cancelled.status_code == 204

    async def test_commit_reaches_the_other_replica(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """A commit on A is served by A at once and by B after its reconcile."""
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url, None)
        opened = await a.request("POST", PREVIEW, json={"secretType": "api_key"}, scopes=ROTATE)
        assert opened.json()["ready"] is True
        committed = await b.request("POST", commit_path(opened.json()["previewId"]), scopes=ROTATE)
        assert committed.status_code == 200
        await a.services.secrets.reconcile()
        await b.services.secrets.reconcile()
        for stack in (a, b):
            account = await stack.request("GET", "/apex-omni/account")
            assert account.status_code == 200
            assert stack.apex.signing_keys()[-1] == NEW_API["apex-omni-api-key"]

    async def test_one_monitor_leads(
        self, fresh_postgres_url: str, omni_stack_factory: StackFactory
    ) -> None:
        """Both replicas set gauges, only the advisory-lock holder alerts; it hands over on exit."""
        sinks = (RecordingAlertSink(), RecordingAlertSink())
        a, b = await two_replicas(omni_stack_factory, fresh_postgres_url, sinks)
        await age_group(a, "api_credentials", 400)
        rounds = [await a.services.rotation_monitor.run_once()]
        rounds.append(await b.services.rotation_monitor.run_once())
        assert sorted(r.leader for r in rounds) == [False, True]
        for stack in (a, b):
            value = stack.services.metrics.registry.get_sample_value(
                "omni_secret_rotation_overdue", {"secret_type": "api_key"}
            )
            assert value == 1
        leader = 0 if rounds[0].leader else 1
        await (a, b)[leader].wait_for(lambda: bool(sinks[leader].delivered))
        assert [e.alert.name for e in sinks[leader].delivered] == ["rotation_overdue"]
        assert sinks[1 - leader].delivered == []

        # The leader stops (its session lock is released); the other takes over and re-asserts.
        await (a, b)[leader].services.rotation_monitor.stop()
        follower = (a, b)[1 - leader]
        taken = await follower.services.rotation_monitor.run_once()
        assert taken.leader is True
        await follower.wait_for(lambda: bool(sinks[1 - leader].delivered))
        assert [e.alert.name for e in sinks[1 - leader].delivered] == ["rotation_overdue"]
