"""``PinnedVersions``: which GSM version each type serves, and the cache's ``fetch`` that reads it.

Factored out of the secret service so the cache can be built before the services that use it:
the cache needs a ``fetch``, and the fetch needs only the metadata pins, the store and the
database, not the service around the cache.

The pin is the metadata's ``active_version``. When none is pinned yet (``db seed`` could not read
GSM, or a fresh database), the version GSM's ``current`` alias names is read and pinned, and only
a secret without ``current`` pins its newest ENABLED version (contract section 15); when the
metadata cannot be read at all the fetch fails closed (transient), because without the pins
nothing says which version is approved.

Every fetch (a refresh, never a cache hit) also reads the secret's aliases (one ``get_secret``)
and its versions' states (one ``list_versions``): status shows them (:class:`AliasView`), the
start-up naming of ``current`` uses them, and a ``current`` alias naming a version that is not
ENABLED fails the type closed (``lastError.code`` ``VERSION_DISABLED``). While a type is pinned
these two reads are best effort: a failure keeps the last view and serving goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.errors import SecretStoreError, ValueNotHeaderSafe
from omni_secrets.domain.header_safety import check_header_safe
from omni_secrets.domain.integrity import IntegrityStatus
from omni_secrets.domain.models import OmniSecretMetadata
from omni_secrets.domain.observations import SecretRead, ServiceObserver, ValueSeen
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import (
    CURRENT_ALIAS,
    PREVIOUS_ALIAS,
    AccessedSecret,
    SecretInfo,
    SecretStore,
    VersionInfo,
    VersionState,
    newest_enabled,
)
from omni_secrets.service.integrity import (
    METADATA_TABLE,
    IntegrityViolation,
    IntegrityViolations,
)

log = structlog.get_logger("omni_secrets.service")
INTEGRITY_VIOLATION = "INTEGRITY_VIOLATION"
"""``lastError.code`` of a type whose pin fails its integrity check (contract section 9)."""
_PROBLEMS = {
    "missing": "missing MAC",
    "invalid": "invalid MAC",
    "stale_key": "signed by a retired integrity key",
    "replayed": "replayed: a later rotation in the audit chain supersedes it",
}
VERSION_DISABLED = "VERSION_DISABLED"
"""``lastError.code`` of a type whose ``current`` alias names a DISABLED or DESTROYED version."""
VERSION_NOT_FOUND = "VERSION_NOT_FOUND"
"""``lastError.code`` of a type whose ``current`` alias names a version GSM does not list."""
ALIAS_INVALID = "ALIAS_INVALID"
"""``lastError.code`` of a type whose ``current`` alias is not a version number."""
_KNOWN_TYPES = frozenset(t.value for t in SecretType)


@dataclass(frozen=True, slots=True)
class AliasView:
    """A secret's aliases and versions as the last refresh read them (replaced, never mutated).

    Attributes:
        secret_id: the GSM secret id.
        etag: the etag of that ``get_secret`` (a compare-and-set on it fails once GSM moved on).
        aliases: alias -> version number, as GSM holds them.
        enabled: the numbers of the ENABLED versions.
    """

    secret_id: str
    etag: str
    aliases: Mapping[str, str]
    enabled: frozenset[str]

    @property
    def enabled_versions(self) -> int:
        """How many versions are ENABLED (status ``enabledVersions``)."""
        return len(self.enabled)

    @property
    def current(self) -> str | None:
        """The version ``current`` names, or None."""
        return self.aliases.get(CURRENT_ALIAS)

    @property
    def previous(self) -> str | None:
        """The version ``previous`` names, or None."""
        return self.aliases.get(PREVIOUS_ALIAS)


CheckRevocation = Callable[[SecretType, str, str], Awaitable[None]]
"""``(secret_type, gsm_secret_id, version)``: raises ``SecretStoreError`` while it is revoked."""


class PinnedVersions:
    """The metadata rows of the catalog (pins, rotation dates, locks) and the pinned fetch.

    Args:
        catalog: the secret types.
        store: GSM (or a fake).
        uow_factory: database units of work.
        observer: told of every store read and every value fetched.
        check_revocation: before a pinned version is read, refuses it while a GSM event's
            revocation of it holds (``SignalTable.check``); None: no GSM events.
        integrity: told about each pin whose MAC is missing or wrong (its type fails closed).
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        observer: ServiceObserver,
        check_revocation: CheckRevocation | None = None,
        integrity: IntegrityViolations | None = None,
    ) -> None:
        self._integrity = integrity or IntegrityViolations()
        self._catalog = catalog
        self._check_revocation = check_revocation
        self._store = store
        self._uow_factory = uow_factory
        self._observer = observer
        self._metadata: dict[SecretType, OmniSecretMetadata] = {}
        self._loaded = False
        self._unseeded: tuple[str, ...] = ()
        self._aliases: dict[SecretType, AliasView] = {}

    def get(self, secret_type: SecretType) -> OmniSecretMetadata | None:
        """The metadata row of ``secret_type`` as last read (None: not seeded or not read yet)."""
        return self._metadata.get(secret_type)

    def aliases(self, secret_type: SecretType) -> AliasView | None:
        """The aliases the last refresh of ``secret_type`` read (None: never read)."""
        return self._aliases.get(secret_type)

    def enabled_versions(self, secret_type: str) -> int | None:
        """How many versions of the type the last refresh saw ENABLED (None: never read).

        ``omni_secret_enabled_versions``; status shows the same as ``enabledVersions``.
        """
        view = self._aliases.get(SecretType(secret_type))
        return view.enabled_versions if view is not None else None

    def record_aliases(self, secret_type: SecretType, info: SecretInfo) -> None:
        """Replace the aliases of ``secret_type`` after this service moved them (new etag)."""
        last = self._aliases.get(secret_type)
        self._aliases[secret_type] = AliasView(
            info.secret_id,
            info.etag,
            dict(info.aliases),
            last.enabled if last is not None else frozenset(),
        )

    def active_versions(self) -> dict[SecretType, str | None]:
        """The pinned version of every type read so far."""
        return {t: m.active_version for t, m in self._metadata.items()}

    def pin_states(self) -> dict[SecretType, tuple[str | None, IntegrityStatus]]:
        """The pinned version and what its integrity MAC says, for every type read so far."""
        return {t: (m.active_version, m.pin_integrity) for t, m in self._metadata.items()}

    async def reload(self) -> None:
        """Re-read the catalog's metadata rows from the database.

        Raises:
            Exception: the database failed (callers decide whether that is fatal).
        """
        async with self._uow_factory() as uow:
            rows = await uow.metadata.list_all()
        self._metadata = {
            SecretType(row.secret_type): row for row in rows if row.secret_type in _KNOWN_TYPES
        }
        self._loaded = True
        missing = tuple(t.value for t in self._catalog.types if t not in self._metadata)
        if missing and missing != self._unseeded:  # once per change, not on every reconcile
            log.warning("metadata.not_seeded", missing=missing, hint="run: omni-secrets db seed")
        self._unseeded = missing

    async def fetch(self, secret_type: SecretType) -> AccessedSecret:
        """Read the version the cache should serve for ``secret_type`` from the store.

        Raises:
            SecretStoreError: the store failed (``transient`` says whether to keep the old value),
                or the metadata is unreadable (transient ``UNAVAILABLE``).
        """
        entry = self._catalog.entry(secret_type)
        if not self._loaded:
            try:
                await self.reload()
            except Exception:
                raise SecretStoreError(
                    "secret metadata is unavailable (database unreachable)",
                    reason="UNAVAILABLE",
                    transient=True,
                    secret_id=entry.gsm_secret_id,
                ) from None
        meta = self._metadata.get(secret_type)
        if meta is not None and not meta.pin_integrity.servable:
            # The pin may have been written by someone without the integrity key: serving
            # "whatever version the row names" is exactly what a forger wants. Fail closed.
            self._integrity.report(
                IntegrityViolation(
                    table=METADATA_TABLE,
                    row=secret_type.value,
                    problem=meta.pin_integrity.value,
                    secret_type=secret_type.value,
                )
            )
            raise SecretStoreError(
                f"the pinned version of {secret_type.value} fails its integrity check "
                f"({_PROBLEMS.get(meta.pin_integrity.value, meta.pin_integrity.value)}); "
                "not served",
                reason=INTEGRITY_VIOLATION,
                transient=False,
                secret_id=entry.gsm_secret_id,
            )
        pinned = meta.active_version if meta else None
        try:
            if pinned is None:
                accessed = await self._fetch_unpinned(secret_type, entry.gsm_secret_id)
            else:
                if self._check_revocation is not None:
                    await self._check_revocation(secret_type, entry.gsm_secret_id, pinned)
                # Concurrently: a refresh stays one GSM round trip in wall time (hydration and
                # the revocation path are measured by it); the value is used only if the
                # aliases allow it.
                read, got = await asyncio.gather(
                    self._read_aliases(secret_type, entry.gsm_secret_id, pinned),
                    self._store.access(entry.gsm_secret_id, pinned),
                    return_exceptions=True,
                )
                if isinstance(read, BaseException):
                    raise read
                if read is not None:  # the alias verdict first: it names why the read failed
                    self._refuse_disabled_alias(secret_type, read)
                if isinstance(got, BaseException):
                    raise got
                accessed = got
                _refuse_unusable(secret_type, entry.gsm_secret_id, accessed)
        except SecretStoreError:
            self._observer.on_event(SecretRead(secret_type.value, "gsm", ok=False))
            raise
        self._observer.on_event(ValueSeen(accessed.value))
        self._observer.on_event(SecretRead(secret_type.value, "gsm", ok=True))
        return accessed

    async def _fetch_unpinned(self, secret_type: SecretType, secret_id: str) -> AccessedSecret:
        """Adopt the version ``current`` names (else the newest ENABLED one), read and pin it."""
        versions = await self._read_aliases(secret_type, secret_id, None)
        if versions is None:  # not reached: unpinned reads raise rather than return None
            raise SecretStoreError(
                f"{secret_id}: no versions", reason="UNAVAILABLE", transient=True
            )
        view = self._aliases[secret_type]
        if view.current is not None:
            self._refuse_disabled_alias(secret_type, versions)
            chosen = next(v for v in versions if v.version == str(int(view.current)))
        else:
            newest = newest_enabled(versions)
            if newest is None:
                raise SecretStoreError(
                    f"{secret_id} has no ENABLED version",
                    reason="FAILED_PRECONDITION",
                    transient=False,
                    secret_id=secret_id,
                )
            chosen = newest
        accessed = await self._store.access(secret_id, chosen.version)
        _refuse_unusable(secret_type, secret_id, accessed)
        await self._pin_first_version(secret_type, accessed.version, chosen.create_time)
        return accessed

    async def _read_aliases(
        self, secret_type: SecretType, secret_id: str, pinned: str | None
    ) -> Sequence[VersionInfo] | None:
        """One ``get_secret`` and one ``list_versions``; records the :class:`AliasView`.

        Unpinned, a failure raises (nothing else says which version to pin). Pinned, it is
        logged and the last view kept: the pinned version is served all the same.
        """
        try:
            info, versions = await asyncio.gather(
                self._store.get_secret(secret_id), self._store.list_versions(secret_id)
            )
        except SecretStoreError as exc:
            if pinned is None:
                raise
            log.warning(
                "aliases.read_failed",
                secret_type=secret_type.value,
                reason=exc.reason,
                transient=exc.transient,
            )
            return None
        enabled = frozenset(v.version for v in versions if v.state is VersionState.ENABLED)
        self._aliases[secret_type] = AliasView(secret_id, info.etag, dict(info.aliases), enabled)
        return versions

    def _refuse_disabled_alias(
        self, secret_type: SecretType, versions: Sequence[VersionInfo]
    ) -> None:
        """Fail closed when ``current`` names anything but an ENABLED version.

        Raises:
            SecretStoreError: not transient (drops the entry); reason ``ALIAS_INVALID`` (not a
                version number), ``VERSION_NOT_FOUND`` (GSM lists no such version) or
                ``VERSION_DISABLED`` (DISABLED or DESTROYED).
        """
        view = self._aliases[secret_type]
        if view.current is None:
            return
        if not view.current.isdigit():
            raise SecretStoreError(
                f"{view.secret_id}: the current alias is {view.current[:32]!r}, not a version "
                "number; not served",
                reason=ALIAS_INVALID,
                transient=False,
                secret_id=view.secret_id,
            )
        states = {v.version: v.state for v in versions}
        state = states.get(str(int(view.current)))
        if state is VersionState.ENABLED:
            return
        if state is None:
            raise SecretStoreError(
                f"{view.secret_id} version {view.current} does not exist, but the current "
                "alias names it; not served",
                reason=VERSION_NOT_FOUND,
                transient=False,
                secret_id=view.secret_id,
            )
        raise SecretStoreError(
            f"{view.secret_id} version {view.current} is {state.value}, but the current alias "
            "names it; not served",
            reason=VERSION_DISABLED,
            transient=False,
            secret_id=view.secret_id,
        )

    async def _pin_first_version(
        self, secret_type: SecretType, version: str, created_at: datetime
    ) -> None:
        # A row seeded while GSM was unreachable says "rotated at seed time"; the version now
        # pinned says when the credential was really made, so an old credential does not get
        # a fresh period. The seeded period (due - rotated) is kept.
        meta = self._metadata.get(secret_type)
        dates = None
        if meta is not None:
            dates = (created_at, created_at + (meta.rotation_due_at - meta.last_rotated_at))
        try:
            async with self._uow_factory() as uow:
                await uow.metadata.pin_active_version(
                    secret_type.value, version, only_if_unpinned=True, rotation_dates=dates
                )
                await uow.commit()
                row = await uow.metadata.get(secret_type.value)
        except Exception as exc:  # serving beats pinning; the next fetch tries again
            log.warning(
                "metadata.pin_failed", secret_type=secret_type.value, error_type=type(exc).__name__
            )
            return
        if row is not None:
            self._metadata[secret_type] = row


def _refuse_unusable(secret_type: SecretType, secret_id: str, accessed: AccessedSecret) -> None:
    """A version whose value no ApeX header can carry is a permanent failure (fail closed).

    Raises:
        SecretStoreError: reason ``VALUE_NOT_HEADER_SAFE``, not transient: the version will not
            change, so serving stops until an operator rotates to a usable one.
    """
    try:
        check_header_safe(secret_type, accessed.value)
    except ValueNotHeaderSafe as exc:
        raise SecretStoreError(
            f"{secret_id} version {accessed.version}: {exc.message}",
            reason=exc.code,
            transient=False,
            secret_id=secret_id,
        ) from None
