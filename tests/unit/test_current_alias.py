"""GSM's ``current`` alias on the serving side (contract section 15), with the fake store.

The pinned fetch adopts ``current`` (never "newest ENABLED" while it exists), fails a type closed
when ``current`` names a version that is not ENABLED, and records the aliases at each refresh;
``CurrentAliasService`` names ``current`` where it is missing, by compare-and-set, retried after
the next refresh when GSM refuses; its reactions audit ``current_alias_named``.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.domain.observations import ServiceEvent
from omni_secrets.service.aliases import CurrentAliasService
from omni_secrets.service.aliases.events import CurrentAliasNamed, CurrentAliasNotNamed
from omni_secrets.service.aliases.reactions import alias_reactions
from omni_secrets.service.messagebus import Dispatcher, RecordingBus
from omni_secrets.service.serving.pinned_versions import VERSION_DISABLED, PinnedVersions
from omni_secrets.testing import FakeSecretStore, InMemoryUnitOfWorkFactory

KEY = "apex-omni-api-key"


class _Quiet:
    def on_event(self, event: ServiceEvent) -> None:
        pass


class _Audit:
    def __init__(self) -> None:
        self.rows: list[NewAccessEvent] = []

    def record_later(self, event: NewAccessEvent) -> None:
        self.rows.append(event)


class Rig:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.store = FakeSecretStore(clock=self.clock)
        for entry in Catalog():
            self.store.seed({entry.gsm_secret_id: ["fake-v1", "fake-v2"]})
        self.uow_factory = InMemoryUnitOfWorkFactory(clock=self.clock)
        self.pins = PinnedVersions(
            catalog=Catalog(), store=self.store, uow_factory=self.uow_factory, observer=_Quiet()
        )
        self.audit = _Audit()
        self.bus = RecordingBus(then=Dispatcher([alias_reactions(auditor=self.audit)]))
        self.naming = CurrentAliasService(
            catalog=Catalog(), store=self.store, pins=self.pins, clock=self.clock, bus=self.bus
        )

    async def seed(self, *, ask_gsm: bool) -> None:
        await seed_catalog(
            self.uow_factory,
            Catalog(),
            project_id="fake-project",
            store=self.store if ask_gsm else None,
            clock=self.clock,
            rotation_period_days=90,
        )

    async def fetch_all(self) -> None:
        for entry in Catalog():
            await self.pins.fetch(entry.secret_type)


@pytest.fixture
def rig() -> Rig:
    return Rig()


class TestAdoptCurrent:
    @pytest.mark.parametrize("ask_gsm", [True, False])
    async def test_fresh_database_serves_current_not_the_uncommitted_candidate(
        self, rig: Rig, ask_gsm: bool
    ) -> None:
        """Versions 1, 2 with `current`=1, 3 added but never committed: seeded with GSM or
        without it (pinned at the first fetch), the type serves and pins 1, not 3."""
        rig.store.set_aliases(KEY, {"current": "1"})
        rig.store.add_version(KEY, "fake-v3")
        await rig.seed(ask_gsm=ask_gsm)
        accessed = await rig.pins.fetch(SecretType.API_KEY)
        assert accessed.version == "1"
        meta = rig.pins.get(SecretType.API_KEY)
        assert meta is not None and meta.active_version == "1"

    async def test_without_current_the_newest_enabled_is_pinned(self, rig: Rig) -> None:
        """No alias at all: the old rule still applies (and start-up names it `current`)."""
        await rig.seed(ask_gsm=False)
        assert (await rig.pins.fetch(SecretType.API_KEY)).version == "2"


class TestCurrentNotEnabled:
    @pytest.mark.parametrize("ask_gsm", [True, False])
    async def test_current_naming_a_disabled_version_fails_closed(
        self, rig: Rig, ask_gsm: bool
    ) -> None:
        """Pinned or not: `current` naming a DISABLED version is VERSION_DISABLED, permanent."""
        rig.store.set_aliases(KEY, {"current": "1"})
        await rig.seed(ask_gsm=ask_gsm)
        rig.store.disable(KEY, "1")
        with pytest.raises(SecretStoreError) as caught:
            await rig.pins.fetch(SecretType.API_KEY)
        assert (caught.value.reason, caught.value.transient) == (VERSION_DISABLED, False)
        assert "apex-omni-api-key version 1 is DISABLED" in str(caught.value)

    async def test_a_moved_current_naming_a_destroyed_version_fails_closed(self, rig: Rig) -> None:
        """Pinned 2, `current` moved (by someone else) to 1, then 1 destroyed: fail closed."""
        await rig.seed(ask_gsm=True)
        rig.store.set_aliases(KEY, {"current": "1"})
        rig.store.destroy(KEY, "1")
        with pytest.raises(SecretStoreError) as caught:
            await rig.pins.fetch(SecretType.API_KEY)
        assert caught.value.reason == VERSION_DISABLED

    @pytest.mark.parametrize(
        ("target", "code"), [("7", "VERSION_NOT_FOUND"), ("fake-not-a-number", "ALIAS_INVALID")]
    )
    async def test_current_naming_no_version_fails_closed_with_its_code(
        self, rig: Rig, target: str, code: str
    ) -> None:
        """`current` naming a version GSM does not list, or no number at all: a named,
        permanent error for that type (never a crash), whether pinned or not."""
        await rig.seed(ask_gsm=True)
        rig.store._meta[KEY].aliases = {"current": target}  # GSM itself would refuse both
        with pytest.raises(SecretStoreError) as caught:
            await rig.pins.fetch(SecretType.API_KEY)
        assert (caught.value.reason, caught.value.transient) == (code, False)
        assert (await rig.pins.fetch(SecretType.API_SECRET)).version == "2"

    async def test_enabled_current_serves(self, rig: Rig) -> None:
        """The same fetch serves when `current` names an ENABLED version."""
        rig.store.set_aliases(KEY, {"current": "2"})
        await rig.seed(ask_gsm=True)
        assert (await rig.pins.fetch(SecretType.API_KEY)).version == "2"


class TestAliasView:
    async def test_each_refresh_reads_aliases_and_enabled_versions(self, rig: Rig) -> None:
        """One get_secret and one list_versions per fetch; the view is replaced each time."""
        rig.store.set_aliases(KEY, {"current": "2", "previous": "1"})
        await rig.seed(ask_gsm=True)
        before = rig.store.call_count("get_secret")
        await rig.pins.fetch(SecretType.API_KEY)
        assert rig.store.call_count("get_secret") == before + 1
        view = rig.pins.aliases(SecretType.API_KEY)
        assert view is not None
        assert (view.current, view.previous, view.enabled_versions) == ("2", "1", 2)
        rig.store.add_version(KEY, "fake-v3")
        await rig.pins.fetch(SecretType.API_KEY)
        view = rig.pins.aliases(SecretType.API_KEY)
        assert view is not None and view.enabled_versions == 3

    async def test_pinned_type_serves_when_the_alias_read_fails(self, rig: Rig) -> None:
        """A failed get_secret is logged; the pinned version is served, the last view kept."""
        rig.store.set_aliases(KEY, {"current": "2"})
        await rig.seed(ask_gsm=True)
        await rig.pins.fetch(SecretType.API_KEY)
        rig.store.fail_next("get_secret", "PERMISSION_DENIED")
        with capture_logs() as logs:
            assert (await rig.pins.fetch(SecretType.API_KEY)).version == "2"
        assert any(line["event"] == "aliases.read_failed" for line in logs)
        view = rig.pins.aliases(SecretType.API_KEY)
        assert view is not None and view.current == "2"

    async def test_unpinned_type_fails_when_the_alias_read_fails(self, rig: Rig) -> None:
        """Unpinned, nothing else says which version to pin: the failure is the fetch's."""
        await rig.seed(ask_gsm=False)
        rig.store.fail_next("get_secret", "UNAVAILABLE")
        with pytest.raises(SecretStoreError) as caught:
            await rig.pins.fetch(SecretType.API_KEY)
        assert caught.value.reason == "UNAVAILABLE"
        meta = rig.pins.get(SecretType.API_KEY)
        assert meta is not None and meta.active_version is None


class TestNameMissing:
    async def test_names_the_served_version_and_audits_it(self, rig: Rig) -> None:
        """No `current`: it is named after the pinned version (other aliases kept), audited
        as current_alias_named by `system`; a second round changes nothing."""
        rig.store.set_aliases(KEY, {"keep": "1"})
        await rig.seed(ask_gsm=True)
        await rig.fetch_all()
        await rig.naming.name_missing()
        assert (await rig.store.get_secret(KEY)).aliases == {"keep": "1", "current": "2"}
        named = [e for e in rig.bus.of_type(CurrentAliasNamed) if e.gsm_secret_id == KEY]
        assert [e.version for e in named] == ["2"]
        assert len(rig.bus.of_type(CurrentAliasNamed)) == len(Catalog().types)
        row = next(r for r in rig.audit.rows if r.secret_type == "api_key")
        assert (row.action, row.actor, row.result) == ("current_alias_named", "system", "success")
        assert row.details == {"gsmSecretId": KEY, "alias": "current", "version": "2"}
        view = rig.pins.aliases(SecretType.API_KEY)
        assert view is not None and view.current == "2"
        updates = rig.store.call_count("update_aliases")
        await rig.naming.name_missing()
        assert rig.store.call_count("update_aliases") == updates

    async def test_an_existing_current_is_never_moved(self, rig: Rig) -> None:
        """`current` already set (even to another version than the pin): nothing is written."""
        await rig.seed(ask_gsm=True)
        rig.store.set_aliases(KEY, {"current": "2"})
        await rig.fetch_all()
        before = rig.store.call_count("update_aliases")
        await rig.naming.name_missing()
        assert rig.store.call_count("update_aliases") == before + len(Catalog().types) - 1

    async def test_a_refused_move_is_logged_and_retried_after_the_next_refresh(
        self, rig: Rig
    ) -> None:
        """GSM changed since the read: FAILED_PRECONDITION logged, not fatal, not retried on
        the same read; after the next refresh it is named, keeping the other's alias."""
        await rig.seed(ask_gsm=True)
        await rig.fetch_all()
        rig.store.set_aliases(KEY, {"other": "1"})  # someone else, after our read
        with capture_logs() as logs:
            await rig.naming.name_missing()
        refused = rig.bus.of_type(CurrentAliasNotNamed)
        assert [(e.gsm_secret_id, e.reason) for e in refused] == [(KEY, "FAILED_PRECONDITION")]
        assert any(line["event"] == "alias.current_not_named" for line in logs)
        calls = rig.store.call_count("update_aliases")
        await rig.naming.name_missing()
        assert rig.store.call_count("update_aliases") == calls
        await rig.pins.fetch(SecretType.API_KEY)
        await rig.naming.name_missing()
        assert (await rig.store.get_secret(KEY)).aliases == {"other": "1", "current": "2"}

    async def test_a_pinned_version_that_is_not_enabled_is_not_named(self, rig: Rig) -> None:
        """The pin names a version GSM has disabled since: it is not named `current`."""
        await rig.seed(ask_gsm=True)
        rig.store.disable(KEY, "2")
        with pytest.raises(SecretStoreError):
            await rig.pins.fetch(SecretType.API_KEY)
        await rig.naming.name_missing()
        assert (await rig.store.get_secret(KEY)).current is None
