"""Following GSM: adopting a group whose ``current`` aliases all moved (contract section 15).

GSM's aliases are the source of truth, so a rotation done in GSM alone (``gcloud``, another
tool) is followed. :meth:`AliasFollower.follow` compares each group's pins with the aliases the
last refreshes read (:class:`~omni_secrets.service.serving.pinned_versions.AliasView`, in
memory: the hit path never calls GSM for this); a group that looks out of step is re-read from
GSM (``GetSecret``, and ``GetSecretVersion`` of each new ``current``) and decided with
:func:`~omni_secrets.domain.rotation.drift.assess_group`:

- in step: any drift the group showed is cleared;
- a rotation lock is held (a preview, commit or rollback in progress): left alone this round;
- every member names a new ENABLED version: the preview checks run for that set — ENABLED,
  payloads differ from the served ones, checksums valid, the ApeX self-test with the new API
  credentials (not "newer": following GSM back to an older version is allowed) — and when they
  pass the set is **adopted**: under the group's lock, pins move and the dates move as on a
  commit (``lastRotatedAt`` = now, ``dueAt`` = now + period), with a ``rotation_adopted``
  audit row (actor ``gsm``) in the same transaction;
- otherwise the group drifts (``group_incomplete``, ``alias_invalid``, ``not_enabled``,
  ``checks_failed``): status shows it per member, and after 10 minutes alert ``alias_drift``.

Until adopted the old generation stays served whole (the pinned fetch serves pins, never
``current``). It runs after every reconcile (every 15 s, after the refreshes that read the
aliases) and when a ``SECRET_UPDATE`` event made this replica re-read a secret.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain import rotation
from omni_secrets.domain.catalog import Catalog, CatalogEntry, RotationGroup, SecretType
from omni_secrets.domain.clock import Clock, to_rfc3339
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.models import OmniSecretMetadata
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.rotation.drift import (
    DRIFT_ALERT_AFTER,
    DriftBoard,
    DriftReason,
    GroupAliases,
    assess_group,
)
from omni_secrets.domain.secret_store import SecretStore, VersionState
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.aliases import dates_of
from omni_secrets.service.rotation.events import AliasDrift, RotationAdopted
from omni_secrets.service.rotation.preview import PreviewOpener
from omni_secrets.service.serving.pinned_versions import PinnedVersions

GSM_ACTOR = "gsm"
"""The audit actor of an adoption: GSM's aliases decided, nobody here."""


@dataclass(frozen=True, slots=True)
class FollowResult:
    """What one :meth:`AliasFollower.follow` round did, per group (tests and logs)."""

    adopted: tuple[str, ...] = ()
    drifting: tuple[tuple[str, DriftReason], ...] = ()


class AliasFollower:
    """Adopts groups GSM moved whole; reports the others' drift (module docstring).

    Args:
        catalog: the groups and their members.
        pins: the pins and the aliases the refreshes read.
        uow_factory: database units of work.
        auditor: ``rotation_adopted`` in the adoption's unit of work.
        checks: reads payloads and runs the ApeX self-test as a preview does.
        store: GSM: a group that looks out of step is re-read (``GetSecret``) before judging.
        bus: told of each adoption and each drift change.
        clock: time source.
        board: the drift each type shows in status.
        period_days: ``OMNI_ROTATION_PERIOD_DAYS``.
        new_id: makes the adoption's lock ids.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        pins: PinnedVersions,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        checks: PreviewOpener,
        store: SecretStore,
        bus: EventBus,
        clock: Clock,
        board: DriftBoard,
        period_days: int,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._catalog = catalog
        self._pins = pins
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._checks = checks
        self._store = store
        self._bus = bus
        self._clock = clock
        self._board = board
        self._period_days = period_days
        self._new_id = new_id
        self._lock = asyncio.Lock()
        self._groups = tuple(dict.fromkeys(e.rotation_group for e in catalog))

    async def follow(self) -> FollowResult:
        """One round over every group; never raises for one group's GSM or database trouble
        (that group is left as it was and tried again next round)."""
        async with self._lock:
            adopted: list[str] = []
            drifting: list[tuple[str, DriftReason]] = []
            for group in self._groups:
                try:
                    outcome = await self._follow_group(group)
                except Exception as exc:  # GSM or the database: next round
                    await self._bus.emit(
                        AliasDrift(group.value, (), None, None, False, type(exc).__name__)
                    )
                    continue
                if outcome is True:
                    adopted.append(group.value)
                elif isinstance(outcome, DriftReason):
                    drifting.append((group.value, outcome))
            return FollowResult(tuple(adopted), tuple(drifting))

    async def _follow_group(self, group: RotationGroup) -> bool | DriftReason | None:
        members = self._catalog.group_members(group)
        metas: dict[SecretType, OmniSecretMetadata] = {}
        read: dict[str, GroupAliases] = {}
        for member in members:
            meta = self._pins.get(member.secret_type)
            view = self._pins.aliases(member.secret_type)
            if meta is None or view is None:
                return None  # not seeded or not read yet: nothing to compare
            metas[member.secret_type] = meta
            read[member.secret_type.value] = GroupAliases(
                meta.active_version, view.current, view.enabled
            )
        now = self._clock.now()
        if any(_locked(m, now) for m in metas.values()):
            return None  # a preview, commit or rollback holds the group: not ours to judge
        types = [m.secret_type.value for m in members]
        if not assess_group(read).in_step:
            # The views may be older than the pins (a refresh's alias read failed, a commit
            # elsewhere): judge only what GSM says now. Costs GSM reads only while a group
            # looks out of step, never on the hit path.
            read = await self._read_now(members, read)
        verdict = assess_group(read)
        if verdict.in_step:
            if self._board.clear(types):
                await self._bus.emit(AliasDrift(group.value, tuple(types), None, None, False))
            return None
        reason = verdict.reason
        if reason is None:
            targets = {t: read[t].current or "" for t in types}
            if await self._checks_pass(group, members, metas, targets):
                await self._adopt(group, metas, targets)
                return True
            reason = DriftReason.CHECKS_FAILED
        was = self._board.get(types[0])
        drift = self._board.set(types, reason, now)
        overdue = now - drift.since >= DRIFT_ALERT_AFTER
        if was != drift or overdue:
            await self._bus.emit(
                AliasDrift(group.value, tuple(types), reason, drift.since, overdue)
            )
        return reason

    async def _read_now(
        self, members: Sequence[CatalogEntry], read: dict[str, GroupAliases]
    ) -> dict[str, GroupAliases]:
        """Each member's ``current`` and its state, read from GSM now.

        Raises:
            SecretStoreError: GSM failed transiently (the group is judged next round).
        """
        infos = await asyncio.gather(*(self._store.get_secret(m.gsm_secret_id) for m in members))
        fresh: dict[str, GroupAliases] = {}
        for member, info in zip(members, infos, strict=True):
            name = member.secret_type.value
            current = info.current
            enabled: frozenset[str] = frozenset()
            if current is not None and current.isdigit() and current != read[name].pinned:
                try:
                    state = (await self._store.get_version(member.gsm_secret_id, current)).state
                except SecretStoreError as exc:
                    if exc.transient:
                        raise
                    state = None
                if state is VersionState.ENABLED:
                    enabled = frozenset({current})
            fresh[name] = GroupAliases(read[name].pinned, current, enabled)
        return fresh

    async def _checks_pass(
        self,
        group: RotationGroup,
        members: Sequence[CatalogEntry],
        metas: dict[SecretType, OmniSecretMetadata],
        targets: dict[str, str],
    ) -> bool:
        """The preview's checks for the new set, but ``candidates_newer``."""
        reads = await asyncio.gather(
            *(self._checks.read_payload(m, targets[m.secret_type.value]) for m in members)
        )
        actives = await asyncio.gather(
            *(
                self._checks.read_payload(m, metas[m.secret_type].active_version or "")
                for m in members
            )
        )
        by_type = {m.secret_type: r for m, r in zip(members, reads, strict=True)}
        self_test = await self._checks.self_test_with(group, by_type)
        candidates = [
            rotation.MemberCandidate(
                secret_type=m.secret_type,
                current_version=metas[m.secret_type].active_version,
                candidate=rotation.Candidate(
                    version=targets[m.secret_type.value],
                    state=VersionState.ENABLED,
                    checksum_ok=r.checksum_ok,
                    read_error=r.error,
                    payload_sha256=r.sha256,
                ),
                current_payload_sha256=a.sha256,
            )
            for m, r, a in zip(members, reads, actives, strict=True)
        ]
        assessment = rotation.assess_preview(group, candidates, self_test)
        return all(
            c.ok for c in assessment.checks if c.name is not rotation.CheckName.CANDIDATES_NEWER
        )

    async def _adopt(
        self,
        group: RotationGroup,
        metas: dict[SecretType, OmniSecretMetadata],
        targets: dict[str, str],
    ) -> None:
        """Pins and dates under the group's lock, with the audit row; skipped if someone else
        changed the group meanwhile (another replica adopting, a preview opened)."""
        started = time.perf_counter()
        now = self._clock.now()
        due = rotation.next_due_if_committed(now, self._period_days)
        lock_id = f"adopt-{self._new_id()}"[:64]
        async with self._uow_factory() as uow:
            lock = await uow.metadata.try_lock_group(
                group.value, lock_id, rotation.preview_expires_at(now), now
            )
            if not lock.won:
                return
            rows = {t: await uow.metadata.get(t.value) for t in metas}
            pinned_now = {t.value: r.active_version if r else None for t, r in rows.items()}
            if pinned_now != {t.value: m.active_version for t, m in metas.items()}:
                return  # moved meanwhile (rolled back by leaving the block)
            await uow.metadata.record_rotation(group.value, targets, now, due)
            await self._auditor.append_in(
                uow,
                access_event(
                    action="rotation_adopted",
                    at=now,
                    actor=GSM_ACTOR,
                    correlation_id=None,
                    started=started,
                    details={
                        "group": group.value,
                        "activeVersions": dict(targets),
                        "previousVersions": pinned_now,
                        "lastRotatedAt": to_rfc3339(now),
                        "dueAt": to_rfc3339(due),
                        "datesBefore": dates_of({t: r for t, r in rows.items() if r is not None}),
                    },
                ),
            )
            await uow.commit()
        types = tuple(targets)
        had_drift = self._board.clear(types)
        await self._bus.emit(
            RotationAdopted(group.value, tuple(targets.items()), had_drift=had_drift, due_at=due)
        )


def _locked(meta: OmniSecretMetadata, now: datetime) -> bool:
    return bool(meta.preview_id and meta.preview_expires_at and meta.preview_expires_at > now)
