"""structlog configuration: JSON in production, console under ``dev``, and redaction.

``configure_logging`` is called once by the entry point (the CLI). Request-scoped fields
(``request_id``, ``principal``) are bound through ``structlog.contextvars`` by the request
middleware, so every line of a request carries its correlation id.

Redaction is the last line of defence, not the first (values are ``SecretValue`` and render as
``**********`` anyway): :class:`Redactor` masks (a) any field whose name says it holds a secret
and (b) any occurrence of a value registered with :meth:`Redactor.register` — the cache registers
every value it serves — anywhere in the rendered strings of an event.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog

from omni_secrets.domain.values import REDACTED

SENSITIVE_KEYS = frozenset(
    {
        "value",
        "secret",
        "password",
        "passphrase",
        "token",
        "authorization",
        "api_secret",
        "api_passphrase",
        "seeds",
        "zk_seeds",
        "private_key",
        "plaintext",
        "routing_key",
    }
)
_MIN_REGISTERED_LENGTH = 4


class Redactor:
    """A structlog processor that masks sensitive keys and registered served values."""

    def __init__(self, sensitive_keys: Iterable[str] = SENSITIVE_KEYS) -> None:
        self._keys = frozenset(k.lower() for k in sensitive_keys)
        self._values: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def register(self, plaintext: str) -> None:
        """Mask ``plaintext`` wherever it appears in a later log event (short strings ignored)."""
        if len(plaintext) < _MIN_REGISTERED_LENGTH:
            return
        with self._lock:
            self._values = self._values | {plaintext}

    def forget(self, plaintext: str) -> None:
        with self._lock:
            self._values = self._values - {plaintext}

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        values = self._values
        for key in list(event_dict):
            event_dict[key] = self._scrub(key, event_dict[key], values)
        return event_dict

    def _scrub(self, key: str, item: Any, values: frozenset[str]) -> Any:
        if key.lower() in self._keys and item is not None:
            return REDACTED
        if isinstance(item, str):
            return self._scrub_text(item, values)
        if isinstance(item, Mapping):
            return {k: self._scrub(str(k), v, values) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [self._scrub(key, v, values) for v in item]
        return item

    @staticmethod
    def _scrub_text(text: str, values: frozenset[str]) -> str:
        for plaintext in values:
            if plaintext in text:
                text = text.replace(plaintext, REDACTED)
        return text


def _final_scrub(redactor: Redactor) -> structlog.types.Processor:
    """Scrub the rendered line too: catches values inside reprs made by the renderer."""

    def scrub_rendered(logger: Any, method_name: str, rendered: Any) -> Any:
        if isinstance(rendered, str):
            return Redactor._scrub_text(rendered, redactor._values)
        return rendered

    return scrub_rendered


def configure_logging(
    *, log_format: str, redactor: Redactor, level: int = logging.INFO, stream: Any = None
) -> None:
    """Configure structlog (and route stdlib logging through it) once, at process start.

    Args:
        log_format: ``json`` or ``console``.
        redactor: the processor that masks served values; also kept by the app for registration.
        level: minimum level.
        stream: where lines go (stdout by default).
    """
    out = stream or sys.stdout
    renderer: structlog.types.Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]
    structlog.configure(
        processors=[*shared, renderer, _final_scrub(redactor)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # uvicorn, grpc and friends log through the stdlib: send them through the same chain.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Records from the stdlib (uvicorn, grpc, ...) also say which library logged them.
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
                _final_scrub(redactor),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    # httpx logs every outgoing request at INFO (one stdlib record per ApeX call, rendered through
    # the whole chain on the request path); our ApeX adapter logs what matters itself.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
