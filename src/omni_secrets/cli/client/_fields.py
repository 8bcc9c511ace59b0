"""Reading the API's JSON bodies: :class:`Instant` for its times, :class:`Fields` for the rest.

Anything missing or of the wrong type raises :class:`~omni_secrets.cli.client.UnexpectedAnswer`
naming the answer being read, so the models in ``_models`` never hold half a body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from omni_secrets.cli.client._exceptions import UnexpectedAnswer

Document = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Instant:
    """An RFC 3339 time from the API: ``text`` as written, ``at`` as an aware datetime."""

    text: str
    at: datetime

    def __str__(self) -> str:
        return self.text


class Fields:
    """Typed reads of one JSON object; anything missing or mistyped is an UnexpectedAnswer."""

    def __init__(self, value: Any, what: str) -> None:
        if not isinstance(value, Mapping):
            raise UnexpectedAnswer(what)
        self.document: Document = value
        self._what = what

    def _get(self, key: str, kinds: type | tuple[type, ...], *, optional: bool) -> Any:
        value = self.document.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
            raise UnexpectedAnswer(self._what)
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, str, optional=False))

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, str, optional=True)
        return None if value is None else str(value)

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool, optional=False))

    def optional_flag(self, key: str) -> bool:
        return bool(self._get(key, bool, optional=True))

    def optional_int(self, key: str) -> int | None:
        value = self._get(key, int, optional=True)
        return None if value is None else int(value)

    def integer(self, key: str) -> int:
        return int(self._get(key, int, optional=False))

    def optional_number(self, key: str) -> float | None:
        value = self._get(key, (int, float), optional=True)
        return None if value is None else float(value)

    def instant(self, key: str) -> Instant:
        moment = self.optional_instant(key)
        if moment is None:
            raise UnexpectedAnswer(self._what)
        return moment

    def optional_instant(self, key: str) -> Instant | None:
        text = self._get(key, str, optional=True)
        if not text:
            return None
        try:
            return Instant(text, datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise UnexpectedAnswer(self._what) from None

    def child(self, key: str) -> Fields:
        return Fields(self.document.get(key), self._what)

    def optional_child(self, key: str) -> Fields | None:
        value = self.document.get(key)
        return None if not value else Fields(value, self._what)

    def children(self, key: str, *, optional: bool = False) -> list[Fields]:
        items = self._get(key, list, optional=optional) or []
        return [Fields(item, self._what) for item in items]

    def texts(self, key: str) -> tuple[str, ...]:
        items = self._get(key, list, optional=True) or []
        if not all(isinstance(item, str) for item in items):
            raise UnexpectedAnswer(self._what)
        return tuple(items)


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)
