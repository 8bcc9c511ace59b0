"""``GsmVersions``: an operator's view of the catalog's secrets in GSM, by secret type.

Backs ``omni-secrets gsm versions list|add|enable|disable``: it maps a secret type to its GSM
secret id through the catalog (so the operator never types ``apex-omni-…`` ids) and calls the
store. Adding a version changes nothing served: the service keeps its pinned version until a
rotation preview of the new one is committed.
"""

from __future__ import annotations

from collections.abc import Sequence

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.secret_store import (
    SecretStore,
    SecretVersionAdmin,
    VersionInfo,
    VersionState,
)
from omni_secrets.domain.values import SecretValue


class GsmVersions:
    """List, add, enable and disable versions of the catalog's secrets.

    Args:
        catalog: maps secret types to GSM secret ids.
        store: reads version metadata.
        admin: writes versions and their state.
    """

    def __init__(self, catalog: Catalog, store: SecretStore, admin: SecretVersionAdmin) -> None:
        self._catalog = catalog
        self._store = store
        self._admin = admin

    def secret_id(self, secret_type: SecretType) -> str:
        """The GSM secret id of ``secret_type`` (with the configured prefix)."""
        return self._catalog.entry(secret_type).gsm_secret_id

    async def list(self, secret_type: SecretType) -> Sequence[VersionInfo]:
        """Every version of the type's secret, newest first (metadata only, never a value)."""
        return await self._store.list_versions(self.secret_id(secret_type))

    async def add(self, secret_type: SecretType, value: SecretValue) -> VersionInfo:
        """Add ``value`` as a new ENABLED version; nothing is served until a rotation commits."""
        return await self._admin.add_version(self.secret_id(secret_type), value)

    async def set_state(
        self, secret_type: SecretType, version: str, state: VersionState
    ) -> VersionInfo:
        """Enable or disable one version of the type's secret."""
        return await self._admin.set_version_state(self.secret_id(secret_type), version, state)
