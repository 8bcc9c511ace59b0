"""GsmVersions: the operator's per-type view of GSM versions (``omni-secrets gsm versions``)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.secret_store import VersionInfo, VersionState
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.gsm_versions import GsmVersions, RetireRefused
from omni_secrets.testing import FakeSecretStore


class RecordingAdmin:
    """A SecretVersionAdmin that writes into a FakeSecretStore and records the secret ids."""

    def __init__(self, store: FakeSecretStore) -> None:
        self.store = store
        self.calls: list[tuple[str, str]] = []

    async def add_version(self, secret_id: str, value: SecretValue) -> VersionInfo:
        self.calls.append(("add", secret_id))
        number = self.store.add_version(secret_id, value.reveal())
        return await self._info(secret_id, number)

    async def set_version_state(
        self, secret_id: str, version: str, state: VersionState
    ) -> VersionInfo:
        self.calls.append((state.value, secret_id))
        (self.store.enable if state is VersionState.ENABLED else self.store.disable)(
            secret_id, version
        )
        return await self._info(secret_id, version)

    async def _info(self, secret_id: str, version: str) -> VersionInfo:
        versions: Sequence[VersionInfo] = await self.store.list_versions(secret_id)
        return next(v for v in versions if v.version == version)


class TestGsmVersions:
    async def test_types_map_to_the_prefixed_secret_ids(self) -> None:
        """Operators name the type; the catalog's prefix picks the GSM secret."""
        store = FakeSecretStore()
        store.seed({"acme-api-key": ["fake-v1"]})
        admin = RecordingAdmin(store)
        tool = GsmVersions(Catalog("acme-"), store, admin)

        added = await tool.add(SecretType.API_KEY, SecretValue("fake-v2"))
        assert (added.version, added.state) == ("2", VersionState.ENABLED)
        disabled = await tool.set_state(SecretType.API_KEY, "1", VersionState.DISABLED)
        assert disabled.state is VersionState.DISABLED
        listed = await tool.list(SecretType.API_KEY)
        assert [(v.version, v.state) for v in listed] == [
            ("2", VersionState.ENABLED),
            ("1", VersionState.DISABLED),
        ]
        assert admin.calls == [("add", "acme-api-key"), ("DISABLED", "acme-api-key")]
        assert tool.secret_id(SecretType.ZK_L2_KEY) == "acme-zk-l2-key"


class DestroyingAdmin(RecordingAdmin):
    async def destroy_version(self, secret_id: str, version: str) -> VersionInfo:
        self.calls.append(("DESTROYED", secret_id))
        self.store.destroy(secret_id, version)
        return await self._info(secret_id, version)


def retiring(*values: str) -> tuple[FakeSecretStore, DestroyingAdmin, GsmVersions]:
    store = FakeSecretStore()
    store.seed({"apex-omni-api-key": list(values)})
    admin = DestroyingAdmin(store)
    return store, admin, GsmVersions(Catalog("apex-omni-"), store, admin)


async def states(store: FakeSecretStore) -> dict[str, str]:
    return {v.version: v.state.value for v in await store.list_versions("apex-omni-api-key")}


class TestRetire:
    async def test_disables_every_unaliased_enabled_version_idempotently(self) -> None:
        store, admin, tool = retiring("fake-v1", "fake-v2", "fake-v3", "fake-v4")
        store.set_aliases("apex-omni-api-key", {"current": "3", "previous": "2"})
        store.disable("apex-omni-api-key", "1")
        result = await tool.retire(SecretType.API_KEY)
        assert (result.disabled, result.destroyed) == (("4",), ())
        assert dict(result.aliases) == {"current": "3", "previous": "2"}
        assert await states(store) == {
            "1": "DISABLED",
            "2": "ENABLED",
            "3": "ENABLED",
            "4": "DISABLED",
        }
        again = await tool.retire(SecretType.API_KEY)
        assert (again.disabled, again.destroyed) == ((), ())
        assert admin.calls == [("DISABLED", "apex-omni-api-key")]

    async def test_destroy_destroys_every_unaliased_version(self) -> None:
        store, _admin, tool = retiring("fake-v1", "fake-v2", "fake-v3")
        store.set_aliases("apex-omni-api-key", {"current": "3"})
        store.disable("apex-omni-api-key", "1")
        result = await tool.retire(SecretType.API_KEY, destroy=True)
        assert result.destroyed == ("1", "2")
        assert await states(store) == {"1": "DESTROYED", "2": "DESTROYED", "3": "ENABLED"}
        assert (await tool.retire(SecretType.API_KEY, destroy=True)).destroyed == ()

    async def test_refuses_without_current_and_changes_nothing(self) -> None:
        store, admin, tool = retiring("fake-v1", "fake-v2")
        store.set_aliases("apex-omni-api-key", {"previous": "1"})
        with pytest.raises(RetireRefused, match="no 'current' alias"):
            await tool.retire(SecretType.API_KEY, destroy=True)
        assert admin.calls == []
        assert await states(store) == {"1": "ENABLED", "2": "ENABLED"}

    async def test_refuses_when_aliases_move_meanwhile(self) -> None:
        store, admin, tool = retiring("fake-v1", "fake-v2")
        store.set_aliases("apex-omni-api-key", {"current": "1"})
        listed = store.list_versions

        async def moving_list(secret_id: str) -> Sequence[VersionInfo]:
            store.set_aliases(secret_id, {"current": "2"})  # someone commits meanwhile
            return await listed(secret_id)

        store.list_versions = moving_list  # type: ignore[method-assign]
        with pytest.raises(RetireRefused, match="changed"):
            await tool.retire(SecretType.API_KEY)
        assert admin.calls == []
