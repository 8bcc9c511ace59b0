"""Decide, then react: services emit frozen events; one dispatcher runs what follows each.

A service decides (checks, state changes, the audit rows that must commit with the state in its
unit of work) and then emits one event per thing that happened. What follows an event — a log
line, a metric, an alert, a best-effort audit row, a peer announcement, telling the log redactor
about a value — is a *reaction*, declared in the feature's ``reactions.py`` as a table::

    REACTIONS = {OverrideActivated: [register_value, count_read, raise_alert, log_activated,
                                     announce]}

and bootstrap merges every feature's table into one :class:`Dispatcher`. Reactions run in the
order listed, on the event loop, before ``emit`` returns (a reaction that must come first, such
as teaching the redactor a value before any log line could name it, is listed first). A
reaction may be a plain function or a coroutine function. Reactions must not raise: one that
does is logged (``reaction.failed``, with the event type and reaction names only) and the others
still run, so a broken metric or a PagerDuty outage never undoes or fails a decision already taken.

Cosmicpython ch. 8-9 (message bus); unlike theirs, reactions never emit commands back: a
reaction that needs a decision calls a service.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import structlog

log = structlog.get_logger("omni_secrets.messagebus")

E = TypeVar("E")

Reaction = Callable[[Any], Awaitable[None] | None]
"""Something that follows one event; its argument is the event (its type is the table's key)."""

Reactions = Mapping[type, Sequence[Reaction]]
"""A feature's table: event type → its reactions, in the order they run."""


class EventBus(Protocol):
    """What a service holds to report what it decided."""

    async def emit(self, event: object) -> None:
        """Run every reaction to ``event``; never raises."""
        ...


class Dispatcher:
    """The one :class:`EventBus` of a process: maps each event type to its reactions.

    Args:
        tables: the features' reaction tables; a type listed by several tables gets every
            reaction, table by table in the order given.
    """

    def __init__(self, tables: Iterable[Reactions] = ()) -> None:
        self._reactions: dict[type, tuple[Reaction, ...]] = {}
        self._emitted = False
        for table in tables:
            self.add(table)

    def add(self, table: Reactions) -> None:
        """Append a feature's table to those given at construction, before the first event.

        For a feature whose reactions act on objects that themselves emit on this bus (the
        rotation monitor reports its rounds here, and a committed rotation wakes it), the bus
        has to exist before that table can: the composition root creates the dispatcher, builds
        the feature with it and then adds the feature's table, before anything runs.

        Raises:
            RuntimeError: an event was emitted already (it would have missed these reactions).
        """
        if self._emitted:
            raise RuntimeError("reactions must all be added before the first event is emitted")
        for event_type, reactions in table.items():
            self._reactions[event_type] = (*self._reactions.get(event_type, ()), *reactions)

    def reactions_to(self, event_type: type) -> tuple[Reaction, ...]:
        """The reactions ``event_type`` gets, in order (for tests and the architecture doc)."""
        return self._reactions.get(event_type, ())

    async def emit(self, event: object) -> None:
        self._emitted = True
        for reaction in self._reactions.get(type(event), ()):
            try:
                outcome = reaction(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:
                log.error(
                    "reaction.failed",
                    event_type=type(event).__name__,
                    reaction=getattr(reaction, "__qualname__", repr(reaction)),
                    error_type=type(exc).__name__,
                )


class RecordingBus:
    """An :class:`EventBus` that only keeps what was emitted (unit tests of a service's decisions).

    Args:
        then: a bus to hand each event to after recording it (the real reactions), if any.
    """

    def __init__(self, then: EventBus | None = None) -> None:
        self.events: list[object] = []
        self._then = then

    async def emit(self, event: object) -> None:
        self.events.append(event)
        if self._then is not None:
            await self._then.emit(event)

    def of_type(self, event_type: type[E]) -> list[E]:
        """The recorded events of ``event_type``, in order."""
        return [event for event in self.events if isinstance(event, event_type)]
