"""Remembering verified bearer tokens, so a client's every request does not pay for a JWT check.

:class:`CachingVerifier` wraps any :class:`~omni_secrets.api.auth.TokenVerifier`. Only tokens
the wrapped verifier accepted are remembered, and never past the earliest of:

- the token's own ``exp`` (verification allows a leeway after it; the cache does not, so it can
  only be stricter than verification, never more lenient);
- ``max_age_seconds`` after it was verified, so a key removed from the JWKS or a changed
  configuration takes effect within that bound even for a long-lived token;
- :meth:`CachingVerifier.clear`, for a reload that must take effect at once.

Failures are never remembered: a bad token costs a full verification every time, as before.
Entries are keyed by the SHA-256 of the whole token, so the cache holds no bearer credential and
two tokens share an entry only if they are the same bytes. The cache is bounded; when full, the
oldest entry goes.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt

from omni_secrets.api.auth import Principal, TokenVerifier

DEFAULT_MAX_ENTRIES = 4096
DEFAULT_MAX_AGE_SECONDS = 60.0


class CachingVerifier:
    """A :class:`TokenVerifier` that remembers what ``inner`` accepted (see the module doc).

    Args:
        inner: the real verifier.
        max_entries: how many tokens to remember.
        max_age_seconds: how long at most after verification a token is trusted from memory.
        wall_clock: seconds since the epoch (compared with ``exp``).
        monotonic: a monotonic clock in seconds (for ``max_age_seconds``).
    """

    def __init__(
        self,
        inner: TokenVerifier,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_age_seconds <= 0:
            raise ValueError("max_age_seconds must be positive")
        self._inner = inner
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        # digest -> (principal, exp as epoch seconds, monotonic deadline)
        self._entries: OrderedDict[bytes, tuple[Principal, float, float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"CachingVerifier({self._inner!r}, entries={len(self._entries)})"

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every token (configuration or key reload)."""
        self._entries.clear()

    async def verify(self, token: str) -> Principal:
        """The principal of ``token``, from memory while still trusted, else from ``inner``.

        Raises:
            Unauthenticated: ``inner`` refused the token.
        """
        key = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(key)
        if entry is not None:
            principal, expires, deadline = entry
            if self._wall_clock() < expires and self._monotonic() < deadline:
                return principal
            del self._entries[key]
        principal = await self._inner.verify(token)
        exp = _expiry_of(token)
        if exp is not None and self._wall_clock() < exp:
            self._remember(key, (principal, exp, self._monotonic() + self._max_age))
        return principal

    def _remember(self, key: bytes, entry: tuple[Principal, float, float]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def _expiry_of(token: str) -> float | None:
    """The ``exp`` of a token the inner verifier has just accepted (None: do not cache it)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)
