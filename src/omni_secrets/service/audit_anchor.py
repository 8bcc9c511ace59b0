"""Writing the audit chain head to GSM (contract section 17; see :mod:`domain.audit_anchor`).

:class:`AuditAnchorWriter` reads the chain head, and writes it to the annotation of the anchor
secret by compare-and-set on the etag it read (``UpdateSecret``, mask ``annotations``; other
annotations are kept). Every replica writes; an anchor never moves backwards (a replica whose
head is not newer than the anchor in GSM writes nothing), and a head already anchored by this
replica is not written again. The job (:mod:`omni_secrets.jobs.audit_anchor`) runs it at least
every 60 s and at once after each break-glass or rotation event (:func:`anchor_reactions`).
"""

from __future__ import annotations

from collections.abc import Callable

from omni_secrets.domain.audit_anchor import ANNOTATION, AnchorInvalid, AuditAnchor, make_anchor
from omni_secrets.domain.audit_anchor import parse_anchor as _parse
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.integrity import IntegrityKeyring
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretChanged, SecretStore
from omni_secrets.service.break_glass.events import (
    OverrideActivated,
    OverrideExpired,
    OverrideRevoked,
)
from omni_secrets.service.messagebus import Reactions
from omni_secrets.service.rotation.events import RotationCommitted, RotationRolledBack

_ATTEMPTS = 3  # compare-and-set races with another replica's anchor write


class AuditAnchorWriter:
    """Writes the chain head to the anchor secret's annotation.

    Args:
        store: GSM (``get_secret`` / ``update_annotations``).
        uow_factory: database units of work (the chain head).
        keyring: signs the anchor; None (development only) writes it unsigned.
        clock: the anchor's ``at``.
        secret_id: the anchor secret (``<prefix>audit-anchor``).
    """

    def __init__(
        self,
        *,
        store: SecretStore,
        uow_factory: UnitOfWorkFactory,
        keyring: IntegrityKeyring | None,
        clock: Clock,
        secret_id: str,
    ) -> None:
        self._store = store
        self._uow_factory = uow_factory
        self._keyring = keyring
        self._clock = clock
        self.secret_id = secret_id
        self._anchored_id = 0

    async def write(self) -> AuditAnchor | None:
        """Anchor the current chain head; the anchor written, or None when nothing was due.

        Raises:
            SecretStoreError: GSM refused or failed (``NOT_FOUND``: the anchor secret is
                missing, see ``deploy/gcp/setup.sh``); DatabaseUnavailable.
        """
        async with self._uow_factory() as uow:
            newest = await uow.audit.recent(1)
        if not newest or newest[0].id <= self._anchored_id:
            return None
        head = newest[0]
        for attempt in range(_ATTEMPTS):
            info = await self._store.get_secret(self.secret_id)
            current = info.annotations.get(ANNOTATION)
            if current is not None:
                try:
                    existing = _parse(current)
                except AnchorInvalid:
                    existing = None  # overwritten; the old text stays in Cloud Audit Logs
                # Only an anchor this service could have written holds the next one back: a
                # forged one with a huge id must not stop anchoring.
                if (
                    existing is not None
                    and existing.verify(self._keyring).servable
                    and existing.id >= head.id
                ):
                    self._anchored_id = head.id  # another replica anchored as far or further
                    return None
            anchor = make_anchor(self._keyring, head.id, head.row_hash, self._clock.now())
            try:
                await self._store.update_annotations(
                    self.secret_id, {**info.annotations, ANNOTATION: anchor.document()}, info.etag
                )
            except SecretChanged:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            self._anchored_id = head.id
            return anchor
        return None  # not reached: the last attempt returns or raises


def anchor_reactions(poke: Callable[[], None]) -> Reactions:
    """Break-glass and rotation events wake the anchor job (its write runs in the job)."""

    def wake(_event: object) -> None:
        poke()

    return {
        event_type: [wake]
        for event_type in (
            OverrideActivated,
            OverrideRevoked,
            OverrideExpired,
            RotationCommitted,
            RotationRolledBack,
        )
    }
