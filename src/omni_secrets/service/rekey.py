"""Re-signing live state after an integrity key change (contract section 17).

Only the signing (first) key of ``OMNI_INTEGRITY_KEY_FILE`` is accepted for live state — pins,
overrides, previews; older keys verify audit history only. A row signed by an older key is
therefore either the live state the service itself wrote before the key changed, or a row a
database writer restored from the past. Start-up tells them apart with the freshness check
(:mod:`omni_secrets.adapters.db.freshness`): a row is re-signed only when its MAC verifies
under an older key **and** no later audit event supersedes it (``STALE_KEY``, never
``REPLAYED``/``INVALID``/``MISSING``). Everything re-signed is named in one audit row
``integrity_rekeyed`` written in the same transaction: no audit row, no re-signing.

What is not re-signed at start-up (a row that was replayed, or written while the service was
down with a retired key) stays refused and is reported as an integrity violation.
"""

from __future__ import annotations

from dataclasses import dataclass

from omni_secrets.domain.clock import Clock
from omni_secrets.domain.models import SYSTEM_ACTOR
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.service.auditor import Auditor, access_event


@dataclass(frozen=True, slots=True)
class Rekeyed:
    """What start-up re-signed (empty tuples: nothing was stale)."""

    pins: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    previews: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.pins) + len(self.overrides) + len(self.previews)


class LiveStateRekey:
    """Re-signs stale live state under the signing key, audited (``integrity_rekeyed``).

    Args:
        uow_factory: database units of work (the SQL one signs with the integrity keyring).
        auditor: appends the audit row inside the re-signing transaction.
        clock: time source.
        signing_key_id: the signing key's id; None (no integrity key): nothing to do.
    """

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        auditor: Auditor,
        clock: Clock,
        signing_key_id: str | None,
    ) -> None:
        self._uow_factory = uow_factory
        self._auditor = auditor
        self._clock = clock
        self._key_id = signing_key_id

    async def run(self) -> Rekeyed:
        """Re-sign what is stale, in one transaction with its audit row.

        Raises:
            DatabaseUnavailable, AuditUnavailable: nothing was re-signed.
        """
        if self._key_id is None:
            return Rekeyed()
        now = self._clock.now()
        async with self._uow_factory() as uow:
            done = Rekeyed(
                pins=tuple(await uow.metadata.resign_stale()),
                overrides=tuple(await uow.overrides.resign_stale(now)),
                previews=tuple(await uow.previews.resign_stale(now)),
            )
            if not done.count:
                return done
            await self._auditor.append_in(
                uow,
                access_event(
                    action="integrity_rekeyed",
                    at=now,
                    actor=SYSTEM_ACTOR,
                    details={
                        "keyId": self._key_id,
                        "pins": list(done.pins),
                        "overrides": list(done.overrides),
                        "previews": list(done.previews),
                    },
                ),
            )
            await uow.commit()
        return done
