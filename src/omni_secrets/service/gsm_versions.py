"""``GsmVersions``: an operator's view of the catalog's secrets in GSM, by secret type.

Backs ``omni-secrets gsm versions list|add|enable|disable|destroy|retire``: it maps a secret
type to its GSM secret id through the catalog (so the operator never types ``apex-omni-…`` ids)
and calls the store. Disabling or destroying a version an alias names is refused unless forced
(issue 26: a typo took the served version down). Adding a version changes nothing served: the
service keeps its pinned version until a rotation preview of the new one is committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.secret_store import (
    CURRENT_ALIAS,
    PREVIOUS_ALIAS,
    SecretStore,
    SecretVersionAdmin,
    VersionInfo,
    VersionState,
)
from omni_secrets.domain.values import SecretValue


class RetireRefused(Exception):
    """Retirement refused with nothing changed (no ``current`` alias, or aliases moved)."""


class AliasedVersionRefused(Exception):
    """Disabling or destroying a version an alias names was refused; nothing changed.

    Attributes:
        secret_id: the GSM secret.
        version: the version asked for.
        aliases: the aliases naming it (``current`` first).
    """

    def __init__(self, secret_id: str, version: str, aliases: Sequence[str], verb: str) -> None:
        self.secret_id = secret_id
        self.version = version
        self.aliases = tuple(aliases)
        names = ", ".join(repr(a) for a in self.aliases)
        served = " (the version the service serves)" if CURRENT_ALIAS in self.aliases else ""
        super().__init__(
            f"{secret_id} version {version} is named by the alias {names}{served}: nothing "
            f"changed (pass --force to {verb} it anyway)"
        )


@dataclass(frozen=True, slots=True)
class VersionListing:
    """A secret's versions with the aliases that name them (``gsm versions list``).

    Attributes:
        secret_id: the GSM secret.
        versions: every version, newest first.
        aliases: alias -> version, as GSM holds them.
    """

    secret_id: str
    versions: tuple[VersionInfo, ...]
    aliases: Mapping[str, str]

    @property
    def served(self) -> str | None:
        """The version ``current`` names: the one the service serves (None: no alias)."""
        return self.aliases.get(CURRENT_ALIAS)

    def aliases_of(self, version: str) -> tuple[str, ...]:
        """The aliases naming ``version``, ``current`` and ``previous`` first, then by name."""
        return _aliases_naming(self.aliases, version)


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

    async def listing(self, secret_type: SecretType) -> VersionListing:
        """Every version, newest first, with the aliases naming each (metadata only)."""
        secret_id = self.secret_id(secret_type)
        info = await self._store.get_secret(secret_id)
        versions = await self._store.list_versions(secret_id)
        return VersionListing(secret_id, tuple(versions), dict(info.aliases))

    async def add(self, secret_type: SecretType, value: SecretValue) -> VersionInfo:
        """Add ``value`` as a new ENABLED version; nothing is served until a rotation commits."""
        return await self._admin.add_version(self.secret_id(secret_type), value)

    async def set_state(
        self, secret_type: SecretType, version: str, state: VersionState, *, force: bool = False
    ) -> VersionInfo:
        """Enable or disable one version of the type's secret.

        Raises:
            AliasedVersionRefused: disabling a version an alias names, without ``force``
                (nothing changed).
            SecretStoreError: GSM failed.
        """
        secret_id = self.secret_id(secret_type)
        if state is VersionState.DISABLED and not force:
            await self._refuse_aliased(secret_id, version, "disable")
        return await self._admin.set_version_state(secret_id, version, state)

    async def destroy(
        self, secret_type: SecretType, version: str, *, force: bool = False
    ) -> VersionInfo:
        """Destroy one version (delayed where the secret has a ``version_destroy_ttl``).

        Raises:
            AliasedVersionRefused: the version is named by an alias and ``force`` is false
                (nothing changed).
            SecretStoreError: GSM failed.
        """
        secret_id = self.secret_id(secret_type)
        if not force:
            await self._refuse_aliased(secret_id, version, "destroy")
        return await self._admin.destroy_version(secret_id, version)

    async def _refuse_aliased(self, secret_id: str, version: str, verb: str) -> None:
        info = await self._store.get_secret(secret_id)
        naming = _aliases_naming(info.aliases, version)
        if naming:
            raise AliasedVersionRefused(secret_id, version, naming, verb)

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


def _aliases_naming(aliases: Mapping[str, str], version: str) -> tuple[str, ...]:
    order = {CURRENT_ALIAS: 0, PREVIOUS_ALIAS: 1}
    named = [alias for alias, number in aliases.items() if number == version]
    return tuple(sorted(named, key=lambda alias: (order.get(alias, 2), alias)))


def _retirable(version: VersionInfo, destroy: bool) -> bool:
    if destroy:
        return version.state is not VersionState.DESTROYED and (
            version.scheduled_destroy_time is None
        )
    return version.state is VersionState.ENABLED
