"""Which credentials travel in HTTP headers, and what a header value may hold.

``api_key`` and ``api_passphrase`` are sent as the ``APEX-API-KEY`` and ``APEX-PASSPHRASE``
headers. A value with a character outside printable ASCII makes the HTTP client fail while
building the request (and its exception names the character and its position), so such a value
is refused where it enters the service: when it is fetched from GSM and when a break-glass
payload is opened. ``api_secret`` only keys the HMAC, so any text is fine there.
"""

from __future__ import annotations

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.errors import ValueNotHeaderSafe
from omni_secrets.domain.values import SecretValue

HEADER_BOUND_TYPES: frozenset[SecretType] = frozenset(
    {SecretType.API_KEY, SecretType.API_PASSPHRASE}
)
_FIRST_PRINTABLE = 0x20
_LAST_PRINTABLE = 0x7E


def is_header_safe(text: str) -> bool:
    """Whether ``text`` can be sent as an HTTP header value unchanged.

    Printable ASCII only (no control characters, no DEL, nothing beyond ASCII), and no leading or
    trailing space, which HTTP stacks strip and which would then sign a different value.
    """
    if text != text.strip(" "):
        return False
    return all(_FIRST_PRINTABLE <= ord(char) <= _LAST_PRINTABLE for char in text)


def check_header_safe(secret_type: SecretType, value: SecretValue) -> None:
    """Refuse a header-bound credential that no header can carry.

    Raises:
        ValueNotHeaderSafe: ``secret_type`` travels in a header and ``value`` is not header-safe.
    """
    if secret_type in HEADER_BOUND_TYPES and not is_header_safe(value.reveal()):
        raise ValueNotHeaderSafe(secret_type.value)
