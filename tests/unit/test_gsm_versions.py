"""GsmVersions: the operator's per-type view of GSM versions (``omni-secrets gsm versions``)."""

from __future__ import annotations

from collections.abc import Sequence

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.secret_store import VersionInfo, VersionState
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.gsm_versions import GsmVersions
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
