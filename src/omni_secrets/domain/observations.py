"""``ServiceObserver``: the one channel from the services to instrumentation (metrics, redaction).

Modelled on the cache's ``CacheListener``: services publish frozen events; the composition root
installs the observer that turns them into ``omni_secret_reads_total`` /
``omni_secret_failures_total`` samples and registers every value seen with the log redactor
(``observability/service_observer.py``). The observer is a required constructor argument of each
service, so new wiring cannot silently lose redaction. The cache's own events keep their
listener (``domain/cache/events.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from omni_secrets.domain.values import SecretValue

ReadSource = Literal["gsm", "break_glass"]
FailedOperation = Literal["break_glass", "rotation"]


@dataclass(frozen=True, slots=True)
class SecretRead:
    """A value of ``secret_type`` was read from ``source`` (a GSM access or a decryption)."""

    secret_type: str
    source: ReadSource
    ok: bool


@dataclass(frozen=True, slots=True)
class OperationFailed:
    """An expected failure of ``operation`` for ``secret_type``; ``reason`` is the error code."""

    secret_type: str
    operation: FailedOperation
    reason: str


@dataclass(frozen=True, slots=True)
class ValueSeen:
    """A plaintext value entered the process (the redactor must learn it before any log line)."""

    value: SecretValue


@dataclass(frozen=True, slots=True)
class ValueRetired:
    """A value seen earlier is no longer served (a break-glass override ended): the redactor
    may forget it (it stays masked while anything else still registered it)."""

    value: SecretValue


ServiceEvent = SecretRead | OperationFailed | ValueSeen | ValueRetired


class ServiceObserver(Protocol):
    """Receives the services' events."""

    def on_event(self, event: ServiceEvent) -> None:
        """Handle one event; called on the event loop, must not block or raise."""
        ...


class ObserverFanOut:
    """Hands each event to several observers in order (bootstrap's observer plus a test's)."""

    def __init__(self, observers: Sequence[ServiceObserver]) -> None:
        self._observers = tuple(observers)

    def on_event(self, event: ServiceEvent) -> None:
        for observer in self._observers:
            observer.on_event(event)
