"""Log redaction: the last line of defence against a credential reaching a log line.

Values are :class:`~omni_secrets.domain.values.SecretValue` and render as ``**********`` anyway;
:class:`Redactor` catches what slips past that: (a) any field whose name says it holds a secret,
(b) any occurrence of a registered value — the service registers every value it serves — in the
forms a log line can carry it: as is, JSON-escaped (``ensure_ascii`` on or off) and as Python's
``repr`` escapes it, inside strings, ``bytes``, sets, exception messages and nested containers,
and (c) the password of any URL with credentials (``scheme://user:password@host``).

Registration is reference-counted, so a break-glass value that equals a GSM value stays masked
when the override ends. Values shorter than :data:`MIN_REGISTERED_CHARS` are not registered: a
short string would mask ordinary words (and a break-glass holder could pick which); the set holds
at most :data:`MAX_REGISTERED_VALUES` distinct values, the least recently registered going first.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from omni_secrets.domain.values import REDACTED

SENSITIVE_KEYS = frozenset(
    {
        "value",
        "secret",
        "password",
        "passphrase",
        "token",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "api_key",
        "api_secret",
        "api_passphrase",
        "apex_api_key",
        "apex_passphrase",
        "apex_signature",
        "x_api_key",
        "seeds",
        "zk_seeds",
        "private_key",
        "plaintext",
        "routing_key",
        "dsn",
        "database_url",
        "credentials",
    }
)
"""Field names (lower case, ``-`` as ``_``) whose value is masked whatever it is."""

SENSITIVE_SUFFIXES = (
    "_secret",
    "_password",
    "_passphrase",
    "_token",
    "_api_key",
    "_private_key",
    "_routing_key",
    "_dsn",
)
MIN_REGISTERED_CHARS = 12
MAX_REGISTERED_VALUES = 128
"""Enough for every catalog value, its rotation candidates and the live overrides; each value
costs a substring search per logged string (measured in `python -m bench`, section 6)."""
_SCALARS = frozenset({int, float, bool})
_MAX_REMEMBERED_KEYS = 4096
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/@:]*:)[^\s/@]+@")


def is_sensitive_key(key: str) -> bool:
    """Whether a field named ``key`` must never be logged (``API-Key``, ``db_password``, ...)."""
    normal = key.lower().replace("-", "_")
    return normal in SENSITIVE_KEYS or normal.endswith(SENSITIVE_SUFFIXES)


def _forms(plaintext: str) -> frozenset[str]:
    """The spellings a value takes in a log line: raw, JSON-escaped, ``repr``-escaped."""
    forms = {
        plaintext,
        json.dumps(plaintext)[1:-1],
        json.dumps(plaintext, ensure_ascii=False)[1:-1],
        repr(plaintext)[1:-1],
        plaintext.encode("unicode_escape").decode("ascii"),
    }
    return frozenset(form for form in forms if form)


class Redactor:
    """A structlog processor that masks sensitive fields, registered values and URL passwords.

    Args:
        sensitive_keys: extra field names to mask (on top of the built-in names and suffixes).
        max_values: how many distinct values are kept registered at most.
    """

    def __init__(
        self, sensitive_keys: Iterable[str] = (), *, max_values: int = MAX_REGISTERED_VALUES
    ) -> None:
        self._extra_keys = frozenset(k.lower().replace("-", "_") for k in sensitive_keys)
        self._max_values = max_values
        self._counts: OrderedDict[str, int] = OrderedDict()
        # Longest first, so a value containing another registered value is masked whole.
        self._patterns: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._sensitive_by_key: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Redactor(registered={len(self._counts)})"

    @property
    def registered_count(self) -> int:
        """How many distinct values are registered now."""
        return len(self._counts)

    def register(self, plaintext: str) -> bool:
        """Mask ``plaintext`` in every later log event, until :meth:`forget` balances this call.

        Returns:
            False when the value is too short to be registered (it is not masked by value).
        """
        if len(plaintext) < MIN_REGISTERED_CHARS:
            return False
        with self._lock:
            self._counts[plaintext] = self._counts.get(plaintext, 0) + 1
            self._counts.move_to_end(plaintext)
            while len(self._counts) > self._max_values:
                self._counts.popitem(last=False)
            self._rebuild()
        return True

    def forget(self, plaintext: str) -> None:
        """Balance one :meth:`register` of ``plaintext``; the last one stops masking it."""
        with self._lock:
            count = self._counts.get(plaintext)
            if count is None:
                return
            if count > 1:
                self._counts[plaintext] = count - 1
                return
            del self._counts[plaintext]
            self._rebuild()

    def _rebuild(self) -> None:
        forms = {form for value in self._counts for form in _forms(value)}
        self._patterns = tuple(sorted(forms, key=len, reverse=True))

    # -- the processor -------------------------------------------------------------------------

    def __call__(
        self, _logger: Any, _method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        patterns = self._patterns
        for key, item in list(event_dict.items()):
            # Every request logs a line: numbers and None (most fields) skip the generic walk.
            if item is None or type(item) in _SCALARS:
                if item is not None and self._is_sensitive(str(key)):
                    event_dict[key] = REDACTED
                continue
            event_dict[key] = self._scrub(str(key), item, patterns)
        return event_dict

    def scrub_text(self, text: str) -> str:
        """``text`` with every registered value and URL password masked (the rendered line)."""
        return _scrub_text(text, self._patterns)

    def _is_sensitive(self, key: str) -> bool:
        # Every log line asks this for each of its fields, and the names repeat: remember them.
        known = self._sensitive_by_key.get(key)
        if known is None:
            known = is_sensitive_key(key) or key.lower().replace("-", "_") in self._extra_keys
            if len(self._sensitive_by_key) < _MAX_REMEMBERED_KEYS:  # nested keys may be input
                self._sensitive_by_key[key] = known
        return known

    def _scrub(self, key: str, item: Any, patterns: tuple[str, ...]) -> Any:
        if item is None:
            return item
        if self._is_sensitive(key):
            return REDACTED
        if isinstance(item, str):
            return _scrub_text(item, patterns)
        if isinstance(item, bytes | bytearray | memoryview):
            # Rendered as text: a bytes repr would escape a value past recognition.
            return _scrub_text(bytes(item).decode("utf-8", "backslashreplace"), patterns)
        if isinstance(item, BaseException):
            return f"{type(item).__name__}: {_scrub_text(str(item), patterns)}"
        if isinstance(item, Mapping):
            return {str(k): self._scrub(str(k), v, patterns) for k, v in item.items()}
        if isinstance(item, list | tuple | set | frozenset):
            return [self._scrub(key, v, patterns) for v in item]
        return item


def _scrub_text(text: str, patterns: tuple[str, ...]) -> str:
    for form in patterns:
        if form in text:
            text = text.replace(form, REDACTED)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group("head") + REDACTED + "@", text)
    return text
