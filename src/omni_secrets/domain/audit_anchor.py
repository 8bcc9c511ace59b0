"""The audit anchor: the chain head, kept where the database's owner cannot reach it.

The audit chain is keyed and append-only, but someone with owner rights can disable the
triggers and delete the tail, or every row, after which a fresh chain from id 1 verifies.
Contract section 17: the service writes the chain head ``{"id", "hash", "keyId", "at", "mac"}``
(at least every 60 s, and after every break-glass or rotation event) to the annotation
:data:`ANNOTATION` of the GSM secret ``<prefix>audit-anchor``. Every such write is recorded by
Google's Cloud Audit Logs, which the project cannot edit, so the history of anchors survives
whatever happens to the database. ``audit verify`` then requires the chain to contain the
anchored id with the anchored hash: a truncated, deleted or replaced chain fails, naming the
anchor.

``mac`` is an HMAC under the integrity signing key (``keyId``) over the other fields, so a
writer without the key cannot plant an anchor that matches a chain of their own; without an
integrity key (development only) ``keyId`` and ``mac`` are null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.integrity import IntegrityKeyring, IntegrityStatus

ANCHOR_ID_SUFFIX = "audit-anchor"
"""The anchor secret's id is the catalog prefix followed by this (``apex-omni-audit-anchor``)."""
ANNOTATION = "omni-secrets-audit-anchor"
"""The annotation key holding the anchor document (GSM: at most 63 characters)."""
ANCHOR_PURPOSE = "omni-secrets/audit-anchor/v1"
ANCHOR_FIELDS = ("id", "hash", "keyId", "at")
MAX_DOCUMENT_BYTES = 4096
"""An anchor document is about 200 bytes; anything larger is refused unread."""


def anchor_secret_id(prefix: str) -> str:
    """The GSM secret that holds the anchor, for the catalog's ``prefix``."""
    return f"{prefix}{ANCHOR_ID_SUFFIX}"


class AnchorInvalid(ValueError):
    """An anchor document that cannot be used (not JSON, wrong fields, bad MAC)."""


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """One anchored chain head.

    Attributes:
        id: the anchored audit row's id.
        hash: that row's ``row_hash``.
        key_id: the integrity key that made ``mac`` (None without a key).
        at: when the anchor was written (RFC 3339).
        mac: ``"<keyId>:<hex>"`` over the other fields, or None without a key.
    """

    id: int
    hash: str
    key_id: str | None
    at: str
    mac: str | None

    def _fields(self) -> dict[str, object]:
        return {"id": self.id, "hash": self.hash, "keyId": self.key_id, "at": self.at}

    def document(self) -> str:
        """The annotation value: compact JSON."""
        return json.dumps({**self._fields(), "mac": self.mac}, separators=(",", ":"))

    def verify(self, keyring: IntegrityKeyring | None) -> IntegrityStatus:
        """What the anchor's MAC says under any configured key (anchors are history)."""
        if keyring is None:
            return IntegrityStatus.UNCHECKED
        return keyring.verify(ANCHOR_PURPOSE, ANCHOR_FIELDS, self._fields(), self.mac)


def make_anchor(
    keyring: IntegrityKeyring | None, head_id: int, head_hash: str, at: datetime
) -> AuditAnchor:
    """The anchor of the chain head ``head_id``/``head_hash``, signed when a key exists."""
    fields: dict[str, object] = {
        "id": head_id,
        "hash": head_hash,
        "keyId": keyring.signing_key_id if keyring else None,
        "at": to_rfc3339(at),
    }
    mac = keyring.sign(ANCHOR_PURPOSE, ANCHOR_FIELDS, fields) if keyring else None
    key_id = keyring.signing_key_id if keyring else None
    return AuditAnchor(head_id, head_hash, key_id, str(fields["at"]), mac)


def parse_anchor(text: str) -> AuditAnchor:
    """An anchor from its JSON document.

    Raises:
        AnchorInvalid: not a JSON object with ``id`` (positive int), ``hash`` (64 hex), ``at``
            (string), ``keyId``/``mac`` (string or null).
    """
    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise AnchorInvalid("the anchor document is too large")
    try:
        raw = json.loads(text)
    except ValueError:
        raise AnchorInvalid("the anchor is not JSON") from None
    if not isinstance(raw, dict):
        raise AnchorInvalid("the anchor is not a JSON object")
    anchor_id, anchor_hash, at = raw.get("id"), raw.get("hash"), raw.get("at")
    key_id, mac = raw.get("keyId"), raw.get("mac")
    if not isinstance(anchor_id, int) or isinstance(anchor_id, bool) or anchor_id < 1:
        raise AnchorInvalid("the anchor's id is not a positive integer")
    if not isinstance(anchor_hash, str) or len(anchor_hash) != 64:
        raise AnchorInvalid("the anchor's hash is not 64 hex characters")
    if not isinstance(at, str):
        raise AnchorInvalid("the anchor's at is not a string")
    if not (key_id is None or isinstance(key_id, str)) or not (mac is None or isinstance(mac, str)):
        raise AnchorInvalid("the anchor's keyId and mac must be strings or null")
    return AuditAnchor(anchor_id, anchor_hash, key_id, at, mac)
