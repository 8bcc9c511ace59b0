"""``seed_catalog``: idempotent catalog seeding, with and without GSM."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from omni_secrets.catalog_seed import GsmLookup, seed_catalog
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import (
    LATEST,
    AccessedSecret,
    SecretInfo,
    VersionInfo,
    VersionState,
)
from omni_secrets.testing import InMemoryUnitOfWorkFactory

CREATED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


class StubVersionStore:
    """Answers list_versions from a table; secrets missing from it fail as UNAVAILABLE."""

    def __init__(
        self,
        versions: dict[str, list[VersionInfo]],
        aliases: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.versions = versions
        self.aliases = aliases or {}
        self.asked: list[str] = []

    async def get_secret(self, secret_id: str) -> SecretInfo:
        self.asked.append(secret_id)  # the seed's first question about a secret
        if secret_id not in self.versions:
            raise SecretStoreError("fake outage", reason="UNAVAILABLE", transient=True)
        return SecretInfo(secret_id, '"fake-etag"', self.aliases.get(secret_id, {}))

    async def access(self, secret_id: str, version: str = LATEST) -> AccessedSecret:
        raise AssertionError("the seed never reads payloads")

    async def list_versions(self, secret_id: str) -> Sequence[VersionInfo]:
        if secret_id not in self.versions:
            raise SecretStoreError("fake outage", reason="UNAVAILABLE", transient=True)
        return self.versions[secret_id]

    async def get_version(self, secret_id: str, version: str) -> VersionInfo:
        raise AssertionError("the seed never reads one version")


def versions(*states: VersionState) -> list[VersionInfo]:
    """Versions 1..n created a day apart, newest first (as GSM lists them)."""
    made = [
        VersionInfo(version=str(n + 1), state=state, create_time=CREATED + timedelta(days=n))
        for n, state in enumerate(states)
    ]
    return list(reversed(made))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def uow_factory(clock: ManualClock) -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory(clock=clock)


class TestSeedCatalog:
    async def test_pins_newest_enabled_version_and_its_create_time(
        self, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock
    ) -> None:
        """Reachable GSM: the newest ENABLED version is pinned and dates the last rotation."""
        enabled, disabled = VersionState.ENABLED, VersionState.DISABLED
        store = StubVersionStore(
            {
                "apex-omni-api-key": versions(enabled, enabled, disabled),
                "apex-omni-api-secret": versions(enabled),
                "apex-omni-api-passphrase": versions(disabled),
                "apex-omni-zk-seeds": versions(enabled, enabled),
            }
        )
        report = await seed_catalog(
            uow_factory,
            Catalog(),
            project_id="omni-test",
            store=store,
            clock=clock,
            rotation_period_days=365,
        )
        by_type = {o.secret_type: o for o in report.outcomes}
        rows = uow_factory.db.committed.metadata

        key = by_type[SecretType.API_KEY]
        assert (key.gsm, key.active_version) == (GsmLookup.PINNED, "2")
        assert key.last_rotated_at == CREATED + timedelta(days=1)
        assert key.rotation_due_at == CREATED + timedelta(days=366)
        assert rows["api_key"].active_version == "2"
        assert by_type[SecretType.API_PASSPHRASE].gsm is GsmLookup.NO_ENABLED_VERSION
        assert rows["api_passphrase"].last_rotated_at == clock.now()
        l2 = by_type[SecretType.ZK_L2_KEY]
        assert (l2.gsm, l2.detail, l2.active_version) == (
            GsmLookup.UNREACHABLE,
            "UNAVAILABLE",
            None,
        )
        assert rows["zk_l2_key"].rotation_due_at == clock.now() + timedelta(days=365)
        assert rows["zk_l2_key"].gsm_project_id == "omni-test"
        assert report.inserted == 5

    async def test_adopts_current_never_newest_enabled(
        self, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock
    ) -> None:
        """Versions 1, 2 with `current`=1 and 3 added but never committed: 1 is pinned (and
        dates the rotation); a `current` naming a disabled version is pinned all the same."""
        enabled, disabled = VersionState.ENABLED, VersionState.DISABLED
        store = StubVersionStore(
            {
                "apex-omni-api-key": versions(enabled, enabled, enabled),
                "apex-omni-api-secret": versions(disabled, enabled),
            },
            aliases={
                "apex-omni-api-key": {"current": "1", "previous": "2"},
                "apex-omni-api-secret": {"current": "1"},
            },
        )
        report = await seed_catalog(
            uow_factory,
            Catalog(),
            project_id="omni-test",
            store=store,
            clock=clock,
            rotation_period_days=365,
        )
        by_type = {o.secret_type: o for o in report.outcomes}
        key = by_type[SecretType.API_KEY]
        assert (key.gsm, key.active_version) == (GsmLookup.CURRENT_ALIAS, "1")
        assert key.last_rotated_at == CREATED
        assert uow_factory.db.committed.metadata["api_key"].active_version == "1"
        secret = by_type[SecretType.API_SECRET]
        assert (secret.gsm, secret.active_version) == (GsmLookup.CURRENT_ALIAS, "1")

    async def test_without_a_store_seeds_unpinned_now(
        self, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock
    ) -> None:
        """No store: every type is seeded unpinned, rotated now, and reported as not consulted."""
        report = await seed_catalog(
            uow_factory,
            Catalog(),
            project_id="omni-test",
            store=None,
            clock=clock,
            rotation_period_days=30,
        )
        assert {o.gsm for o in report.outcomes} == {GsmLookup.NOT_CONSULTED}
        assert [o.secret_type for o in report.outcomes] == list(SecretType)
        for row in uow_factory.db.committed.metadata.values():
            assert row.active_version is None
            assert row.last_rotated_at == clock.now()
            assert row.rotation_due_at == clock.now() + timedelta(days=30)

    async def test_second_run_keeps_rows_and_skips_gsm(
        self, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock
    ) -> None:
        """Existing rows are kept as they are, and GSM is not asked about them again."""
        await seed_catalog(
            uow_factory,
            Catalog(),
            project_id="omni-test",
            store=None,
            clock=clock,
            rotation_period_days=365,
        )
        before = dict(uow_factory.db.committed.metadata)
        clock.advance(86_400)
        store = StubVersionStore({})
        report = await seed_catalog(
            uow_factory,
            Catalog(),
            project_id="other",
            store=store,
            clock=clock,
            rotation_period_days=10,
        )
        assert uow_factory.db.committed.metadata == before
        assert store.asked == []
        assert (report.inserted, report.kept) == (0, 5)
        assert {o.gsm for o in report.outcomes} == {GsmLookup.EXISTING}

    async def test_uses_the_catalog_prefix(
        self, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock
    ) -> None:
        """GSM is asked about the prefixed secret ids, and the rows record them."""
        store = StubVersionStore({})
        await seed_catalog(
            uow_factory,
            Catalog("desk7-"),
            project_id="omni-test",
            store=store,
            clock=clock,
            rotation_period_days=365,
        )
        assert sorted(store.asked) == sorted(
            "desk7-" + t.value.replace("_", "-") for t in SecretType
        )
        assert uow_factory.db.committed.metadata["zk_seeds"].gsm_secret_id == "desk7-zk-seeds"
