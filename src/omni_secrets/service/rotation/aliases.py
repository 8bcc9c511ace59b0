"""Moving a rotation group's GSM aliases as one compare-and-set (contract section 15).

Commit and rollback both re-read each member (``GetSecret``), decide, then move every member's
``current``/``previous`` aliases with ``UpdateSecret`` carrying the etag of that same read. When
a member changed in between (:class:`SecretChanged`) or GSM fails mid-way, the members already
moved are moved back (with the etag their own move returned) before the error is raised, so
nothing is left half-moved when the caller answers. What a crash between two moves leaves is
the commit journal's business (:mod:`.journal`, :mod:`.recovery`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.errors import GsmChanged, SecretStoreError
from omni_secrets.domain.integrity import IntegrityKeyring, IntegrityStatus
from omni_secrets.domain.models import OmniSecretMetadata
from omni_secrets.domain.secret_store import (
    CURRENT_ALIAS,
    PREVIOUS_ALIAS,
    SecretChanged,
    SecretInfo,
    SecretStore,
)
from omni_secrets.domain.values import SecretValue


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One member's planned move.

    Attributes:
        secret_type: the catalog type (for errors and audit details).
        secret_id: its GSM secret id.
        read: the ``GetSecret`` the decision was based on (its etag guards the move).
        target: the member's whole new alias map.
    """

    secret_type: str
    secret_id: str
    read: SecretInfo
    target: Mapping[str, str]


def swapped_aliases(read: SecretInfo, new_current: str, old_current: str) -> dict[str, str]:
    """``read``'s aliases with ``current`` = ``new_current`` and ``previous`` = ``old_current``.

    Aliases other than these two (someone else's) are kept as they are.
    """
    aliases = dict(read.aliases)
    aliases[CURRENT_ALIAS] = new_current
    aliases[PREVIOUS_ALIAS] = old_current
    return aliases


class PayloadDigests:
    """Digests of candidate payloads, stored with a preview and compared at commit; never shown.

    With the integrity keys configured they are MACs under the signing key, which the database
    does not hold: a database reader cannot test guesses of a credential against them, and a
    commit after a key change still verifies a preview digested with the older key. Without
    integrity keys (development only: production refuses to start) they are keyed by the
    preview id, so the same value never has the same digest in two previews.
    """

    _PURPOSE = "preview_payload"
    _NAMES = ("previewId", "value")

    def __init__(self, keyring: IntegrityKeyring | None = None) -> None:
        self._keyring = keyring

    def of(self, preview_id: str, value: SecretValue) -> str:
        """The digest of ``value`` as a candidate of preview ``preview_id``."""
        if self._keyring is not None:
            return self._keyring.sign(self._PURPOSE, self._NAMES, self._fields(preview_id, value))
        key = f"omni-secrets/preview-digest/v1/{preview_id}".encode()
        return hmac.new(key, value.reveal().encode("utf-8"), hashlib.sha256).hexdigest()

    def matches(self, preview_id: str, value: SecretValue, digest: str) -> bool:
        """Whether ``digest`` is what :meth:`of` gave (under any configured key) for ``value``."""
        if self._keyring is not None and ":" in digest:
            status = self._keyring.verify(
                self._PURPOSE, self._NAMES, self._fields(preview_id, value), digest
            )
            return status is IntegrityStatus.VERIFIED
        return hmac.compare_digest(self.of(preview_id, value), digest)

    @staticmethod
    def _fields(preview_id: str, value: SecretValue) -> dict[str, object]:
        return {"previewId": preview_id, "value": value.reveal()}


async def move_group(store: SecretStore, moves: Sequence[AliasMove]) -> list[SecretInfo]:
    """Apply every move, in order, or none; each member as GSM returned it after its move.

    Raises:
        GsmChanged: a member changed in GSM since its read (FAILED_PRECONDITION); the members
            already moved were moved back.
        SecretStoreError: GSM failed mid-way (outage, refusal); the members already moved were
            moved back.
    """
    done: list[tuple[AliasMove, SecretInfo]] = []
    try:
        for move in moves:
            after = await store.update_aliases(move.secret_id, move.target, move.read.etag)
            done.append((move, after))
    except SecretStoreError as exc:
        unrestored = await _restore(store, done)
        if isinstance(exc, SecretChanged):
            details: dict[str, object] = {"secretType": _failed_type(moves, len(done))}
            if unrestored:
                details["notMovedBack"] = unrestored
            raise GsmChanged(
                "a member of the group changed in Secret Manager during the commit; "
                + ("the members already moved were moved back" if done else "nothing was moved"),
                details=details,
            ) from exc
        raise
    return [after for _move, after in done]


async def move_back(
    store: SecretStore, moves: Sequence[AliasMove], afters: Sequence[SecretInfo]
) -> list[str]:
    """Undo a whole :func:`move_group` (the database refused what followed it), best effort.

    Returns:
        The types whose aliases could not be restored (changed again since, or GSM failed).
    """
    return await _restore(store, list(zip(moves, afters, strict=True)))


async def _restore(store: SecretStore, done: Sequence[tuple[AliasMove, SecretInfo]]) -> list[str]:
    """Restore the moved members' aliases, newest move first; the types that could not be."""
    unrestored: list[str] = []
    for move, after in reversed(done):
        try:
            await store.update_aliases(move.secret_id, dict(move.read.aliases), after.etag)
        except SecretStoreError:
            unrestored.append(move.secret_type)
    return unrestored


def _failed_type(moves: Sequence[AliasMove], index: int) -> str:
    return moves[index].secret_type if index < len(moves) else ""


def dates_of(rows: Mapping[SecretType, OmniSecretMetadata]) -> dict[str, dict[str, str]]:
    """Each member's rotation dates, as a commit's audit row keeps them for a rollback."""
    return {
        t.value: {
            "lastRotatedAt": to_rfc3339(row.last_rotated_at),
            "dueAt": to_rfc3339(row.rotation_due_at),
        }
        for t, row in rows.items()
    }
