"""Break-glass cryptography and rules: the key pair, sealed payloads, TTL bounds, override windows.

An operator seals a payload to the service's X25519 public key (a libsodium sealed box, the scheme
GitHub uses for its secrets API) with ``omni-secrets break-glass push`` (:func:`seal_payload`); the
service opens it in memory (:func:`open_override`). The sealed plaintext is UTF-8 JSON::

    {"secretType": "api_secret", "value": "...", "issuedAt": "2026-11-25T10:00:00Z",
     "nonce": "<base64 of 16 or more random bytes>"}

``issuedAt`` bounds how long a captured ciphertext stays usable (:data:`MAX_PAYLOAD_AGE` in the
past, :data:`MAX_CLOCK_SKEW` in the future); the single-use ``nonce``, which the service checks
against the nonces it has stored, stops replays inside that window. A sealed box does not
authenticate the sender: the bearer token does.

Secrets stay out of sight: the value and the plaintext never appear in an exception message,
``repr`` or exception chain, and the private key never appears in a ``repr``. Decoding failures
are raised outside ``except`` blocks on purpose, because a ``JSONDecodeError`` or
``UnicodeDecodeError`` left in ``__context__`` would carry the whole plaintext.

Pure apart from PyNaCl (crypto, no I/O): reading the private key file is the caller's job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from omni_secrets.domain.catalog import SecretType, parse_secret_type
from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.errors import (
    BreakGlassKeyInvalid,
    CiphertextInvalid,
    InvalidInput,
    PayloadExpired,
    PayloadMismatch,
    TtlTooLong,
    UnknownKeyId,
)
from omni_secrets.domain.header_safety import check_header_safe
from omni_secrets.domain.values import SecretValue

if TYPE_CHECKING:
    # PyNaCl (libsodium through cffi) is imported where a key is used: a service without
    # break-glass configured, and the CLI's --help, never load it.
    from nacl.public import PrivateKey

ALGORITHM = "x25519-sealed-box"
"""The ``algorithm`` the public-key route reports."""

KEY_BYTES = 32
KEY_ID_HEX_CHARS = 16

MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 1800
"""30 minutes, fixed by the contract; deliberately not configurable."""

MAX_PAYLOAD_AGE = timedelta(minutes=5)
MAX_CLOCK_SKEW = timedelta(minutes=1)
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64
"""The stored nonce (canonical base64 of these bytes) must fit the nonce column (128 chars)."""
DEFAULT_NONCE_BYTES = 32

_PAYLOAD_FIELDS = ("secretType", "value", "issuedAt", "nonce")
_CATALOG_NAMES = frozenset(t.value for t in SecretType)
_DURATION = re.compile(r"([0-9]{1,9})([sm]?)")  # ASCII digits only: int() takes any script's


# --- keys ------------------------------------------------------------------------------------


def key_id(public_raw: bytes) -> str:
    """The key id the contract publishes: first 16 hex chars of SHA-256 over the raw public key.

    Args:
        public_raw: the raw 32-byte X25519 public key (not its base64 text).

    Raises:
        ValueError: ``public_raw`` is not 32 bytes (a programming error).
    """
    if len(public_raw) != KEY_BYTES:
        raise ValueError(f"an X25519 public key has {KEY_BYTES} bytes, got {len(public_raw)}")
    return hashlib.sha256(public_raw).hexdigest()[:KEY_ID_HEX_CHARS]


class BreakGlassKeyPair:
    """The service's X25519 key pair; opens sealed boxes.

    Build it with :func:`load_key_pair`. Its ``repr`` shows the key id only, and it refuses to be
    pickled, so the private key cannot leak through a log line or a serialised object.

    Attributes:
        public_key_raw: the raw 32-byte public key.
        public_key_b64: the public key as standard base64 (what the public-key route serves).
        key_id: see :func:`key_id`.
    """

    __slots__ = ("_box", "key_id", "public_key_b64", "public_key_raw")

    def __init__(self, private_key: PrivateKey) -> None:
        from nacl.public import SealedBox

        self._box = SealedBox(private_key)
        self.public_key_raw = bytes(private_key.public_key)
        self.public_key_b64 = base64.b64encode(self.public_key_raw).decode("ascii")
        self.key_id = key_id(self.public_key_raw)

    def __repr__(self) -> str:
        return f"BreakGlassKeyPair(key_id={self.key_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("BreakGlassKeyPair cannot be pickled")

    def _unseal(self, ciphertext: bytes) -> bytes | None:
        """The plaintext, or None when the box was sealed to another key or was tampered with."""
        from nacl.exceptions import CryptoError

        try:
            return self._box.decrypt(ciphertext)
        except CryptoError:
            return None


def _decode_key(text: str) -> bytes | None:
    """Raw 32 key bytes from standard base64 text (surrounding whitespace ignored), else None."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == KEY_BYTES else None


def load_key_pair(public_b64: str, private_b64: str) -> BreakGlassKeyPair:
    """Build the key pair from ``OMNI_BREAKGLASS_PUBLIC_KEY`` and the private key file's text.

    The private key's own public half must equal the configured public key: a mismatch would
    publish a key whose sealed boxes the service cannot open.

    Args:
        public_b64: the configured public key, standard base64 of 32 bytes.
        private_b64: the private key file's content, standard base64 of 32 bytes (surrounding
            whitespace, such as a trailing newline, is ignored).

    Returns:
        The key pair.

    Raises:
        BreakGlassKeyInvalid: either key is malformed, or the two do not belong together. The
            message names the variables and key ids, never the private key.
    """
    public_raw = _decode_key(public_b64)
    if public_raw is None:
        raise BreakGlassKeyInvalid(
            "OMNI_BREAKGLASS_PUBLIC_KEY is not a base64-encoded 32-byte X25519 public key"
        )
    private_raw = _decode_key(private_b64)
    if private_raw is None:
        raise BreakGlassKeyInvalid(
            "the file named by OMNI_BREAKGLASS_PRIVATE_KEY_FILE does not hold a base64-encoded "
            "32-byte X25519 private key"
        )
    from nacl.public import PrivateKey

    pair = BreakGlassKeyPair(PrivateKey(private_raw))
    if not hmac.compare_digest(pair.public_key_raw, public_raw):
        raise BreakGlassKeyInvalid(
            f"the private key in OMNI_BREAKGLASS_PRIVATE_KEY_FILE (key id {pair.key_id}) does not "
            f"match OMNI_BREAKGLASS_PUBLIC_KEY (key id {key_id(public_raw)})"
        )
    return pair


def generate_private_key() -> tuple[str, str, str]:
    """A fresh X25519 key pair from the OS's CSPRNG.

    Returns:
        ``(private_b64, public_b64, key_id)``: the private key (for the private key file), the
        public key (``OMNI_BREAKGLASS_PUBLIC_KEY``) and its key id.
    """
    from nacl.public import PrivateKey

    private = PrivateKey.generate()
    public_raw = bytes(private.public_key)
    return (
        base64.b64encode(bytes(private)).decode("ascii"),
        base64.b64encode(public_raw).decode("ascii"),
        key_id(public_raw),
    )


# --- sealing (client side) -------------------------------------------------------------------


def seal_payload(
    public_key_b64: str,
    *,
    secret_type: SecretType | str,
    value: SecretValue | str,
    issued_at: datetime,
    nonce: bytes | None = None,
) -> str:
    """Seal a break-glass payload to the service's public key (what ``break-glass push`` posts).

    Args:
        public_key_b64: the service's public key, standard base64 of 32 bytes.
        secret_type: the type the value is for; must also be the request's ``secretType``.
        value: the credential; sent as is (strip a file's trailing newline before calling).
        issued_at: when the payload is made (aware); the service refuses it 5 minutes later.
        nonce: single-use random bytes (at least 16); by default 32 fresh bytes.

    Returns:
        The sealed box, standard base64 (the request's ``ciphertext``).

    Raises:
        InvalidInput: the public key is malformed or the value is empty.
        UnknownSecretType: ``secret_type`` is not in the catalog.
        ValueError: ``issued_at`` is naive or ``nonce`` is not 16 to 64 bytes (misuse).
    """
    public_raw = _decode_key(public_key_b64)
    if public_raw is None:
        raise InvalidInput("the break-glass public key is not base64 of a 32-byte X25519 key")
    plaintext_value = value.reveal() if isinstance(value, SecretValue) else value
    if not plaintext_value:
        raise InvalidInput("the break-glass value is empty")
    if nonce is None:
        nonce = secrets.token_bytes(DEFAULT_NONCE_BYTES)
    if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
        raise ValueError(
            f"the nonce needs at least {MIN_NONCE_BYTES} bytes, at most {MAX_NONCE_BYTES}"
        )
    payload = {
        "secretType": parse_secret_type(secret_type).value,
        "value": plaintext_value,
        "issuedAt": to_rfc3339(issued_at),
        "nonce": base64.b64encode(nonce).decode("ascii"),
    }
    message = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    from nacl.public import PublicKey, SealedBox

    sealed = SealedBox(PublicKey(public_raw)).encrypt(message)
    return base64.b64encode(sealed).decode("ascii")


# --- opening (server side) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenedOverride:
    """A verified break-glass payload.

    Attributes:
        secret_type: the type the value is for (equal to the request's).
        value: the credential, redacting.
        issued_at: the sealed ``issuedAt`` (aware, UTC).
        nonce: the nonce as canonical standard base64 (re-encoded from its bytes, so two spellings
            of the same bytes cannot slip past the replay check).
    """

    secret_type: SecretType
    value: SecretValue
    issued_at: datetime
    nonce: str


def open_override(
    key_pair: BreakGlassKeyPair,
    *,
    key_id: str,
    ciphertext_b64: str,
    expected_secret_type: SecretType | str,
    now: datetime,
) -> OpenedOverride:
    """Open and check a break-glass request's sealed payload.

    Checks, in order: the key id, the base64, the box (key and integrity), the JSON shape, the
    inner ``secretType`` against the request's, then ``issuedAt`` against ``now``. Replay (the
    nonce seen before) is not checked here: that needs the service's store.

    Args:
        key_pair: the service's key pair.
        key_id: the request's ``keyId``.
        ciphertext_b64: the request's ``ciphertext`` (standard base64 of the sealed box).
        expected_secret_type: the request's ``secretType``.
        now: the current time (aware).

    Returns:
        The verified payload.

    Raises:
        UnknownKeyId: ``key_id`` is not this service's key id.
        CiphertextInvalid: bad base64; sealed to another key or tampered with; not a UTF-8 JSON
            object; a field missing or mistyped; ``value`` empty; ``issuedAt`` not an RFC 3339
            time with a zone that UTC can represent; ``nonce`` not base64 of 16 to 64 bytes.
        ValueNotHeaderSafe: the value is for a header-bound type (``api_key``,
            ``api_passphrase``) and holds a character an HTTP header cannot carry.
        PayloadMismatch: the inner ``secretType`` differs from ``expected_secret_type``.
        PayloadExpired: ``issuedAt`` is more than 5 minutes before or 1 minute after ``now``.
        UnknownSecretType: ``expected_secret_type`` is not in the catalog.
        ValueError: ``now`` is naive (misuse).
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime")
    expected = parse_secret_type(expected_secret_type)
    if key_id != key_pair.key_id:
        raise UnknownKeyId(
            "keyId does not name this service's break-glass key; fetch the current public key",
            details={"currentKeyId": key_pair.key_id},
        )
    ciphertext = _b64decode(ciphertext_b64)
    if ciphertext is None:
        raise CiphertextInvalid("ciphertext is not valid base64")
    plaintext = key_pair._unseal(ciphertext)
    if plaintext is None:
        raise CiphertextInvalid(
            "ciphertext cannot be opened with this service's key (sealed to another key, or "
            "tampered with)"
        )
    payload = _json_object(plaintext)
    if payload is None:
        raise CiphertextInvalid("the sealed payload is not a UTF-8 JSON object")
    inner_type, value, issued_at, nonce = _payload_fields(payload)

    if inner_type != expected.value:
        # The inner type is plaintext: name it only when it is a catalog name.
        named = inner_type if inner_type in _CATALOG_NAMES else "another secret type"
        raise PayloadMismatch(
            f"the sealed payload is for {named}, but the request is for {expected.value}",
            details={"secretType": expected.value},
        )
    _check_fresh(issued_at, now)
    opened_value = SecretValue(value)
    check_header_safe(expected, opened_value)
    return OpenedOverride(
        secret_type=expected,
        value=opened_value,
        issued_at=issued_at,
        nonce=base64.b64encode(nonce).decode("ascii"),
    )


def _check_fresh(issued_at: datetime, now: datetime) -> None:
    """Refuse a payload issued too long before ``now``, or too far after it (clock skew).

    Raises:
        PayloadExpired: ``issuedAt`` is outside [now - MAX_PAYLOAD_AGE, now + MAX_CLOCK_SKEW].
    """
    if issued_at < now - MAX_PAYLOAD_AGE:
        age = int((now - issued_at).total_seconds())
        raise PayloadExpired(
            f"the sealed payload was issued {age}s ago; it must be used within "
            f"{int(MAX_PAYLOAD_AGE.total_seconds())}s",
            details={"issuedAt": to_rfc3339(issued_at)},
        )
    if issued_at > now + MAX_CLOCK_SKEW:
        ahead = int((issued_at - now).total_seconds())
        raise PayloadExpired(
            f"the sealed payload's issuedAt is {ahead}s in the future; at most "
            f"{int(MAX_CLOCK_SKEW.total_seconds())}s of clock skew is accepted",
            details={"issuedAt": to_rfc3339(issued_at)},
        )


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_object(plaintext: bytes) -> dict[str, Any] | None:
    # Returning None instead of raising here keeps the decode error, which holds the plaintext,
    # out of the CiphertextInvalid's __context__.
    try:
        decoded = json.loads(plaintext.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8, bad JSON, over-long integers, deep nesting
        return None
    return decoded if isinstance(decoded, dict) else None


def _payload_fields(payload: dict[str, Any]) -> tuple[str, str, datetime, bytes]:
    """``(secretType, value, issuedAt, nonce bytes)`` from the payload, or CiphertextInvalid."""
    missing = [name for name in _PAYLOAD_FIELDS if name not in payload]
    if missing:
        raise CiphertextInvalid(f"the sealed payload lacks {', '.join(missing)}")
    inner_type, value, issued_text, nonce_text = (payload[name] for name in _PAYLOAD_FIELDS)
    if not isinstance(inner_type, str):
        raise CiphertextInvalid("the sealed payload's secretType is not a string")
    if not isinstance(value, str) or not value:
        raise CiphertextInvalid("the sealed payload's value is not a non-empty string")
    issued_at = _parse_time(issued_text)
    if issued_at is None:
        raise CiphertextInvalid("the sealed payload's issuedAt is not an RFC 3339 time with a zone")
    nonce = _b64decode(nonce_text) if isinstance(nonce_text, str) else None
    if nonce is None or not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
        raise CiphertextInvalid(
            f"the sealed payload's nonce is not base64 of {MIN_NONCE_BYTES} to "
            f"{MAX_NONCE_BYTES} bytes"
        )
    return inner_type, value, issued_at, nonce


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return None
        # Normalised here: at the calendar's edges (0001-01-01T00:00+14:00) the UTC instant
        # does not exist, and comparing or subtracting would raise OverflowError later.
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# --- TTL and the override window -------------------------------------------------------------


def validate_ttl(seconds: int) -> int:
    """Check a requested override lifetime against the fixed bounds (60 s to 30 min).

    Args:
        seconds: the requested lifetime.

    Returns:
        ``seconds`` unchanged.

    Raises:
        TtlTooLong: ``seconds`` > 1800 (``TTL_TOO_LONG``).
        InvalidInput: ``seconds`` < 60 (``VALIDATION_FAILED``).
    """
    if seconds > MAX_TTL_SECONDS:
        raise TtlTooLong(seconds, MAX_TTL_SECONDS)
    if seconds < MIN_TTL_SECONDS:
        raise InvalidInput(
            f"break-glass TTL {seconds}s is below the minimum of {MIN_TTL_SECONDS}s",
            details={"ttlSeconds": seconds, "minTtlSeconds": MIN_TTL_SECONDS},
        )
    return seconds


def parse_duration(text: str) -> int:
    """Parse the CLI's ``--ttl``: ``900`` or ``900s`` (seconds), or ``15m`` (minutes).

    Only parses: ``31m`` gives 1860, which :func:`validate_ttl` then refuses.

    Args:
        text: the duration as typed; surrounding whitespace is ignored.

    Returns:
        The duration in seconds.

    Raises:
        InvalidInput: any other form (hours, fractions, signs, units other than ``s``/``m``).
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        shown = text if len(text) <= 32 else text[:32] + "..."
        raise InvalidInput(
            f"invalid duration {shown!r}: use seconds ('900' or '900s') or minutes ('15m')"
        )
    amount, unit = int(match.group(1)), match.group(2)
    return amount * 60 if unit == "m" else amount


@dataclass(frozen=True, slots=True)
class OverrideWindow:
    """When a break-glass override is in force: ``[activated_at, activated_at + ttl)``.

    Revocation ends an override early; that is recorded by the service, not here.

    Attributes:
        activated_at: when the override was activated (aware).
        ttl_seconds: its lifetime, already checked by :func:`validate_ttl`.

    Raises:
        ValueError: ``activated_at`` is naive or ``ttl_seconds`` is outside 60..1800 (misuse:
            requests go through :func:`validate_ttl` first).
    """

    activated_at: datetime
    ttl_seconds: int

    def __post_init__(self) -> None:
        if self.activated_at.tzinfo is None:
            raise ValueError("naive datetime")
        if not MIN_TTL_SECONDS <= self.ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds {self.ttl_seconds} outside the allowed bounds")

    @property
    def expires_at(self) -> datetime:
        """The first moment the override no longer applies."""
        return self.activated_at + timedelta(seconds=self.ttl_seconds)

    def is_active(self, now: datetime) -> bool:
        """Whether the override applies at ``now`` (activation inclusive, expiry exclusive)."""
        return self.activated_at <= now < self.expires_at
