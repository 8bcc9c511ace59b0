"""The integrity key: MACs over state that a database writer must not be able to forge.

Threat (contract section 9): someone who can write to the database — the service's own role
included — but cannot read the service's key file. Everything security-relevant that lives in
the database is therefore bound to a key the database never sees:

- audit rows: ``row_hash = HMAC-SHA256(key, prev_hash || canonical row)`` (see
  :mod:`omni_secrets.domain.audit_chain`), with the signing key's id in ``key_id``;
- break-glass override rows and each metadata row's pin carry a MAC over their
  security-relevant fields (:data:`OVERRIDE_FIELDS`, :data:`PIN_FIELDS`), stored as
  ``"<keyId>:<hex HMAC>"`` so that any configured key can verify it.

A MAC is computed over a canonical rendering: the purpose (so a MAC for one kind of row never
verifies another) and each field as ``name=value`` in a fixed order, joined by newlines, inside a
JSON array so no value can smuggle a separator.

Several keys may be configured (rotation): the first signs, all verify. ``keyId`` is the first 16
hex characters of SHA-256 over the raw key — safe to show and to store. The raw key bytes never
leave this module: no ``repr``, no accessor.

Without a key (allowed outside production only) nothing is signed and nothing is checked: every
row reads as :attr:`IntegrityStatus.UNCHECKED` and is served as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum

MIN_KEY_BYTES = 32
"""The shortest integrity key accepted (256 bits)."""

PIN_PURPOSE = "omni-secrets/metadata-pin/v1"
PIN_FIELDS = ("secret_type", "active_version", "last_rotated_at", "rotation_due_at")
"""The fields of an ``omni_secret_metadata`` row that its ``pin_mac`` covers."""

OVERRIDE_PURPOSE = "omni-secrets/break-glass-override/v1"
OVERRIDE_FIELDS = (
    "override_id",
    "secret_type",
    "key_id",
    "ciphertext",
    "nonce",
    "actor",
    "activated_at",
    "expires_at",
    "ended_at",
    "end_reason",
)
"""The fields of an ``omni_break_glass_overrides`` row that its ``mac`` covers.

``ended_at``/``end_reason`` are covered so that a revoked override cannot be revived by clearing
them; ``reason`` and ``ticket`` are free text that changes nothing served.
"""

PREVIEW_PURPOSE = "omni-secrets/rotation-preview/v1"
PREVIEW_FIELDS = (
    "preview_id",
    "rotation_group",
    "actor",
    "created_at",
    "expires_at",
    "ready",
    "members",
    "checks",
    "status",
)
"""The fields of an ``omni_rotation_previews`` row that its ``mac`` covers (contract section 17).

``members`` (versions and candidate digests) and ``checks`` are covered as their canonical JSON,
so a writer can neither swap a candidate nor flip a check; ``ready`` is re-derived from the
checks at commit anyway; ``status`` is covered so a committed or cancelled preview cannot be
reopened with its old MAC.
"""


class IntegrityStatus(StrEnum):
    """What the MAC of a stored row says about it."""

    VERIFIED = "verified"
    """The MAC matches under one of the configured keys."""
    UNCHECKED = "unchecked"
    """No integrity key is configured: nothing was checked (non-production only)."""
    MISSING = "missing"
    """A key is configured but the row carries no MAC (written without the key, or forged)."""
    INVALID = "invalid"
    """The MAC does not match (edited row) or names a key that is not configured."""
    STALE_KEY = "stale_key"
    """Live state signed by an older (verify-only) key and not re-signed at a key change."""
    REPLAYED = "replayed"
    """A once-valid row that a later audit event supersedes (restored from the past)."""

    @property
    def servable(self) -> bool:
        """True when the row may be served."""
        return self in (IntegrityStatus.VERIFIED, IntegrityStatus.UNCHECKED)


def key_id_of(raw_key: bytes) -> str:
    """The public id of a key: the first 16 hex characters of SHA-256 over the raw bytes."""
    return hashlib.sha256(raw_key).hexdigest()[:16]


def canonical_value(value: object) -> str | None:
    """How one field is rendered for a MAC: timestamps as RFC 3339 UTC with microseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        # The audit chain's rendering (audit_chain.canonical_timestamp), kept here so this
        # module imports nothing else from the domain.
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _message(purpose: str, names: Sequence[str], fields: Mapping[str, object]) -> bytes:
    document = [purpose, *[[name, canonical_value(fields.get(name))] for name in names]]
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class _Key:
    __slots__ = ("_raw", "key_id")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self.key_id = key_id_of(raw)

    def digest(self, data: bytes) -> str:
        return hmac.new(self._raw, data, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"IntegrityKey(key_id={self.key_id!r})"


class IntegrityKeyring:
    """One or more integrity keys: the first signs, every one verifies.

    Args:
        raw_keys: the decoded keys, signing key first; each at least :data:`MIN_KEY_BYTES`.

    Raises:
        ValueError: no key, a key shorter than :data:`MIN_KEY_BYTES`, or two equal keys.
    """

    def __init__(self, raw_keys: Sequence[bytes]) -> None:
        if not raw_keys:
            raise ValueError("an integrity keyring needs at least one key")
        keys = [_Key(bytes(raw)) for raw in raw_keys]
        for raw, key in zip(raw_keys, keys, strict=True):
            if len(raw) < MIN_KEY_BYTES:
                raise ValueError(
                    f"integrity key {key.key_id} has {len(raw)} bytes, at least "
                    f"{MIN_KEY_BYTES} are required"
                )
        self._keys = {key.key_id: key for key in keys}
        if len(self._keys) != len(keys):
            raise ValueError("the same integrity key is configured twice")
        self._signing = keys[0]

    @property
    def signing_key_id(self) -> str:
        """The id of the key that signs new rows."""
        return self._signing.key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, signing key first."""
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"IntegrityKeyring(key_ids={list(self._keys)!r})"

    # -- row MACs ------------------------------------------------------------------------------

    def sign(self, purpose: str, names: Sequence[str], fields: Mapping[str, object]) -> str:
        """``"<signingKeyId>:<hex HMAC>"`` over ``fields`` (only ``names``, in that order)."""
        return f"{self._signing.key_id}:{self._signing.digest(_message(purpose, names, fields))}"

    def verify(
        self,
        purpose: str,
        names: Sequence[str],
        fields: Mapping[str, object],
        mac: str | None,
    ) -> IntegrityStatus:
        """Check a stored MAC made by :meth:`sign`.

        Returns:
            ``VERIFIED``, ``MISSING`` (no MAC) or ``INVALID`` (wrong MAC, malformed, or made with
            a key that is not configured).
        """
        if not mac:
            return IntegrityStatus.MISSING
        key_id, _, digest = mac.partition(":")
        key = self._keys.get(key_id)
        if key is None or not digest:
            return IntegrityStatus.INVALID
        expected = key.digest(_message(purpose, names, fields))
        if hmac.compare_digest(expected, digest):
            return IntegrityStatus.VERIFIED
        return IntegrityStatus.INVALID

    def verify_live(
        self,
        purpose: str,
        names: Sequence[str],
        fields: Mapping[str, object],
        mac: str | None,
    ) -> IntegrityStatus:
        """:meth:`verify` for live state (pins, overrides, previews): signing key only.

        Contract section 17: older keys verify audit history only. A live row whose MAC is
        right under an older key is ``STALE_KEY`` (not servable); start-up re-signs such rows
        when they are the legitimate live state at a key change (``integrity_rekeyed``).
        """
        status = self.verify(purpose, names, fields, mac)
        if status is IntegrityStatus.VERIFIED and not (mac or "").startswith(
            self._signing.key_id + ":"
        ):
            return IntegrityStatus.STALE_KEY
        return status

    # -- the audit chain -----------------------------------------------------------------------

    def chain_digest(self, data: bytes, key_id: str | None = None) -> str | None:
        """HMAC-SHA256 of ``data`` under ``key_id`` (the signing key when None), as hex.

        Returns:
            None when ``key_id`` names a key that is not configured.
        """
        key = self._signing if key_id is None else self._keys.get(key_id)
        return None if key is None else key.digest(data)


def sign_or_none(
    keyring: IntegrityKeyring | None,
    purpose: str,
    names: Sequence[str],
    fields: Mapping[str, object],
) -> str | None:
    """:meth:`IntegrityKeyring.sign`, or None when no key is configured."""
    return None if keyring is None else keyring.sign(purpose, names, fields)


def verify_or_unchecked(
    keyring: IntegrityKeyring | None,
    purpose: str,
    names: Sequence[str],
    fields: Mapping[str, object],
    mac: str | None,
) -> IntegrityStatus:
    """:meth:`IntegrityKeyring.verify_live` (signing key only), or ``UNCHECKED`` without a key."""
    if keyring is None:
        return IntegrityStatus.UNCHECKED
    return keyring.verify_live(purpose, names, fields, mac)
