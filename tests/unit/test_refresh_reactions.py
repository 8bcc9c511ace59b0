"""What follows each refresh event: the two audit rows, the ``refresh.*`` warnings (names and
fields as operators know them) and the announcement to the other replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.cluster import RefreshResult, RefreshStatus
from omni_secrets.domain.models import OmniSecretAccessEvent
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.messagebus import Dispatcher
from omni_secrets.service.refresh.events import (
    ClusterRefreshRequested,
    RefreshCatchUpFailed,
    RefreshNotShared,
    RefreshOutcomeNotRecorded,
    RefreshShared,
    RefreshViewFromMemory,
    ReplicaRefreshed,
)
from omni_secrets.service.refresh.reactions import refresh_reactions
from omni_secrets.testing import InMemoryDatabase, InMemoryUnitOfWorkFactory

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Rig:
    def __init__(self) -> None:
        self.db = InMemoryDatabase()
        self.auditor = Auditor(uow_factory=InMemoryUnitOfWorkFactory(self.db))
        self.published: list[str] = []

        async def publish(kind: str) -> None:
            self.published.append(kind)

        self.bus = Dispatcher([refresh_reactions(auditor=self.auditor, publish=publish)])

    async def rows(self) -> list[OmniSecretAccessEvent]:
        await self.auditor.stop()  # drains the buffer
        return list(self.db.committed.events)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    made.auditor.start()
    yield made
    await made.auditor.stop()


class TestRefreshReactions:
    async def test_a_request_and_each_replica_outcome_are_audited(self, rig: Rig) -> None:
        """``cache_refresh_requested`` then ``refresh``, with today's fields."""
        await rig.bus.emit(
            ClusterRefreshRequested(
                request_id="r-1",
                secret_types=(SecretType.API_KEY,),
                actor="ops",
                correlation_id="c-1",
                queued_at=AT,
                shared=True,
            )
        )
        await rig.bus.emit(
            ReplicaRefreshed(
                request_id="r-1",
                replica_id="a",
                actor="ops",
                correlation_id="c-1",
                status=RefreshStatus.FAILED,
                results=(RefreshResult(SecretType.API_KEY, False, None, "UNAVAILABLE"),),
                completed_at=AT,
                duration_ms=12,
            )
        )
        requested, refreshed = await rig.rows()
        assert (requested.action, requested.secret_type, requested.actor) == (
            "cache_refresh_requested",
            "api_key",
            "ops",
        )
        assert requested.result == "success"
        assert requested.correlation_id == "c-1"
        assert requested.details == {
            "requestId": "r-1",
            "secretTypes": ["api_key"],
            "cluster": True,
        }
        assert (refreshed.action, refreshed.secret_type, refreshed.result) == (
            "refresh",
            None,
            "failure",
        )
        assert refreshed.duration_ms == 12
        assert refreshed.details == {
            "requestId": "r-1",
            "replicaId": "a",
            "status": "failed",
            "results": {"api_key": "UNAVAILABLE"},
        }

    async def test_a_shared_request_is_announced(self, rig: Rig) -> None:
        """``refresh`` to the other replicas."""
        await rig.bus.emit(RefreshShared("r-1"))
        assert rig.published == ["refresh"]

    async def test_the_warnings_keep_their_names_and_fields(self, rig: Rig) -> None:
        """The four ``refresh.*`` warnings, each with its fields, as before."""
        expected: list[tuple[object, dict[str, Any]]] = [
            (
                RefreshNotShared("r-1", "DatabaseUnavailable"),
                {
                    "event": "refresh.not_shared",
                    "request_id": "r-1",
                    "error_type": "DatabaseUnavailable",
                    "outcome": "this replica only",
                },
            ),
            (
                RefreshOutcomeNotRecorded("r-1", "DatabaseUnavailable"),
                {
                    "event": "refresh.outcome_not_recorded",
                    "request_id": "r-1",
                    "error_type": "DatabaseUnavailable",
                },
            ),
            (
                RefreshCatchUpFailed("DatabaseUnavailable"),
                {"event": "refresh.catch_up_failed", "error_type": "DatabaseUnavailable"},
            ),
            (
                RefreshViewFromMemory("DatabaseUnavailable"),
                {"event": "refresh.view_from_memory", "error_type": "DatabaseUnavailable"},
            ),
        ]
        for event, line in expected:
            with capture_logs() as logs:
                await rig.bus.emit(event)
            assert logs == [{**line, "log_level": "warning"}]
