"""``SecretValue``: the only type that holds a served credential.

Its ``repr``/``str``/``format`` redact, it refuses pickling, and it compares in constant time, so a
value that ends up in a log call, an f-string, an exception or a debugger view shows as
``SecretValue('**********')``. The plaintext is reachable only through :meth:`SecretValue.reveal`,
which the ApeX signer and the break-glass payload check call, and nothing else should.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

REDACTED = "**********"


class SecretValue:
    """An opaque credential value.

    Args:
        value: the plaintext (UTF-8 text as stored in GSM).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("SecretValue wraps str")
        self._value = value

    def reveal(self) -> str:
        """The plaintext. Call only where the value is put to its one use (signing a request)."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        # Hashing by content would make values dict keys and invite timing leaks; identity only.
        return id(self)

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")

    def __copy__(self) -> SecretValue:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretValue:
        return self
