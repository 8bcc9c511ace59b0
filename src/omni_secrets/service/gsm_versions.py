"""``GsmVersions``: an operator's view of the catalog's secrets in GSM, by secret type.

Backs ``omni-secrets gsm versions list|add|enable|disable|retire``: it maps a secret type to its GSM
secret id through the catalog (so the operator never types ``apex-omni-…`` ids) and calls the
store. Adding a version changes nothing served: the service keeps its pinned version until a
rotation preview of the new one is committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.secret_store import (
    CURRENT_ALIAS,
    SecretStore,
    SecretVersionAdmin,
    VersionInfo,
    VersionState,
)
from omni_secrets.domain.values import SecretValue


class RetireRefused(Exception):
    """Retirement refused with nothing changed (no ``current`` alias, or aliases moved)."""


@dataclass(frozen=True, slots=True)
class RetireResult:
    """What a retirement did (contract section 15).

    Attributes:
        secret_id: the GSM secret.
        aliases: the secret's aliases (alias -> version), none of whose versions was touched.
        disabled: versions disabled now (ENABLED before, no alias).
        destroyed: versions destroyed now, or scheduled for destruction (``--destroy``).
    """

    secret_id: str
    aliases: Mapping[str, str]
    disabled: tuple[str, ...]
    destroyed: tuple[str, ...]


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

    async def retire(self, secret_type: SecretType, *, destroy: bool = False) -> RetireResult:
        """Disable (or, with ``destroy``, destroy) every version no alias names.

        Never touches an aliased version; idempotent (a second run changes nothing). The
        aliases are read again just before the first change: if they moved meanwhile, nothing
        is changed.

        Raises:
            RetireRefused: the secret has no ``current`` alias, or its aliases moved while
                this ran; nothing changed.
            SecretStoreError: GSM failed (versions changed before the failure stay changed;
                running again finishes the job).
        """
        secret_id = self.secret_id(secret_type)
        info = await self._store.get_secret(secret_id)
        if info.current is None:
            raise RetireRefused(
                f"{secret_id} has no {CURRENT_ALIAS!r} alias: nothing retired (name the served "
                "version first)"
            )
        named = set(info.aliases.values())
        versions = sorted(await self._store.list_versions(secret_id), key=lambda v: int(v.version))
        targets = [v for v in versions if v.version not in named and _retirable(v, destroy)]
        if targets and (await self._store.get_secret(secret_id)).etag != info.etag:
            raise RetireRefused(f"{secret_id}'s aliases changed while retiring: nothing retired")
        done: list[str] = []
        for version in targets:
            if destroy:
                await self._admin.destroy_version(secret_id, version.version)
            else:
                await self._admin.set_version_state(
                    secret_id, version.version, VersionState.DISABLED
                )
            done.append(version.version)
        return RetireResult(
            secret_id=secret_id,
            aliases=dict(info.aliases),
            disabled=() if destroy else tuple(done),
            destroyed=tuple(done) if destroy else (),
        )


def _retirable(version: VersionInfo, destroy: bool) -> bool:
    if destroy:
        return version.state is not VersionState.DESTROYED and (
            version.scheduled_destroy_time is None
        )
    return version.state is VersionState.ENABLED
