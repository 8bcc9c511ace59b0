"""Seeding the catalog into ``omni_secret_metadata`` (``omni-secrets db seed`` and ``dev``).

Service-level: it combines the metadata port and the ``SecretStore`` port. Idempotent: types that
already have a row are kept exactly as they are (GSM is not even asked about them). For each new
type the version GSM's ``current`` alias names is pinned (contract section 15: aliases are the
truth; never "newest ENABLED" while ``current`` exists, even when it names a disabled version,
which then fails closed at the first fetch); only a secret without ``current`` pins its newest
ENABLED version (and the service names it ``current`` at start-up). The pinned version's
``create_time`` becomes ``last_rotated_at``; when GSM cannot be asked (no store given, or it
fails) the row is seeded unpinned with ``last_rotated_at`` = now, and the report says so per
type. The cache pins on its first successful fetch in that case, by the same rule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from omni_secrets.domain.catalog import Catalog, CatalogEntry, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.models import OmniSecretMetadata
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore, VersionInfo, newest_enabled


class GsmLookup(StrEnum):
    """What GSM told the seed about one type."""

    PINNED = "pinned"
    """No ``current`` alias: the newest ENABLED version was pinned; its create time is the
    last rotation."""
    CURRENT_ALIAS = "current_alias"
    """The version GSM's ``current`` alias names was pinned; its create time is the last
    rotation."""
    NO_ENABLED_VERSION = "no_enabled_version"
    """GSM answered but the secret has no ENABLED version: seeded unpinned, rotated now."""
    UNREACHABLE = "unreachable"
    """GSM failed (``detail`` holds the reason): seeded unpinned, rotated now."""
    NOT_CONSULTED = "not_consulted"
    """No store was given: seeded unpinned, rotated now."""
    EXISTING = "existing"
    """The row existed and was kept as it is; GSM was not asked."""


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    """The seed's result for one catalog type.

    Attributes:
        secret_type: the type.
        inserted: True when this run inserted the row; False when an existing row was kept.
        gsm: what GSM said (:class:`GsmLookup`).
        active_version: the row's pinned version (None when unpinned).
        last_rotated_at: the row's last rotation time.
        rotation_due_at: the row's rotation due date.
        detail: the GSM failure reason (a gRPC code name) for ``UNREACHABLE``, else None.
    """

    secret_type: SecretType
    inserted: bool
    gsm: GsmLookup
    active_version: str | None
    last_rotated_at: datetime
    rotation_due_at: datetime
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SeedReport:
    """Every catalog type's outcome, in catalog order."""

    outcomes: tuple[SeedOutcome, ...]

    @property
    def inserted(self) -> int:
        """How many rows this run inserted."""
        return sum(1 for outcome in self.outcomes if outcome.inserted)

    @property
    def kept(self) -> int:
        """How many existing rows were kept unchanged."""
        return sum(1 for outcome in self.outcomes if not outcome.inserted)


@dataclass(frozen=True, slots=True)
class _Lookup:
    status: GsmLookup
    version: VersionInfo | None = None
    detail: str | None = None


async def _lookup(store: SecretStore | None, entry: CatalogEntry) -> _Lookup:
    if store is None:
        return _Lookup(GsmLookup.NOT_CONSULTED)
    try:
        current = (await store.get_secret(entry.gsm_secret_id)).current
        versions = await store.list_versions(entry.gsm_secret_id)
    except SecretStoreError as exc:
        return _Lookup(GsmLookup.UNREACHABLE, detail=exc.reason)
    if current is not None:
        named = next((v for v in versions if v.version == current), None)
        if named is not None:  # GSM refuses an alias on a missing version
            return _Lookup(GsmLookup.CURRENT_ALIAS, version=named)
    newest = newest_enabled(versions)
    if newest is None:
        return _Lookup(GsmLookup.NO_ENABLED_VERSION)
    return _Lookup(GsmLookup.PINNED, version=newest)


async def seed_catalog(
    uow_factory: UnitOfWorkFactory,
    catalog: Catalog,
    *,
    project_id: str,
    store: SecretStore | None,
    clock: Clock,
    rotation_period_days: int,
) -> SeedReport:
    """Insert the catalog's missing metadata rows; keep existing rows as they are.

    GSM is asked (concurrently, outside any transaction) only about types without a row. The
    insert itself is conflict-safe, so two seeds racing each other insert each row once; the
    loser reports the winner's row as kept.

    Args:
        uow_factory: makes the unit of work for the read and the insert.
        catalog: the types to seed (GSM ids with the configured prefix).
        project_id: the GCP project recorded in each row.
        store: GSM, or None to seed without asking it.
        clock: "now" for unpinned rows and ``created_at``/``updated_at``.
        rotation_period_days: ``rotation_due_at = last_rotated_at + period``.

    Returns:
        The per-type outcomes.

    Raises:
        DatabaseUnavailable: the database cannot be reached (nothing is inserted).
    """
    async with uow_factory() as uow:
        existing = {row.secret_type: row for row in await uow.metadata.list_all()}
    missing = [entry for entry in catalog if entry.secret_type not in existing]
    lookups = await asyncio.gather(*(_lookup(store, entry) for entry in missing))
    period = timedelta(days=rotation_period_days)
    now = clock.now()

    outcomes: dict[SecretType, SeedOutcome] = {
        row.secret_type: _kept(row) for row in existing.values()
    }
    async with uow_factory() as uow:
        for entry, lookup in zip(missing, lookups, strict=True):
            rotated_at = lookup.version.create_time if lookup.version else now
            row = OmniSecretMetadata(
                secret_type=entry.secret_type,
                gsm_secret_id=entry.gsm_secret_id,
                gsm_project_id=project_id,
                required=entry.required,
                rotation_group=entry.rotation_group,
                active_version=lookup.version.version if lookup.version else None,
                last_rotated_at=rotated_at,
                rotation_due_at=rotated_at + period,
                created_at=now,
                updated_at=now,
            )
            if await uow.metadata.insert_missing([row]):
                outcomes[entry.secret_type] = SeedOutcome(
                    secret_type=entry.secret_type,
                    inserted=True,
                    gsm=lookup.status,
                    active_version=row.active_version,
                    last_rotated_at=row.last_rotated_at,
                    rotation_due_at=row.rotation_due_at,
                    detail=lookup.detail,
                )
            else:
                winner = await uow.metadata.get(entry.secret_type)
                if winner is not None:
                    outcomes[entry.secret_type] = _kept(winner)
        await uow.commit()
    return SeedReport(
        outcomes=tuple(
            outcomes[entry.secret_type] for entry in catalog if entry.secret_type in outcomes
        )
    )


def _kept(row: OmniSecretMetadata) -> SeedOutcome:
    return SeedOutcome(
        secret_type=row.secret_type,
        inserted=False,
        gsm=GsmLookup.EXISTING,
        active_version=row.active_version,
        last_rotated_at=row.last_rotated_at,
        rotation_due_at=row.rotation_due_at,
    )
