"""structlog configuration: JSON in production, console under ``dev``, and redaction.

``configure_logging`` is called once by the entry point (the CLI). Request-scoped fields
(``request_id``, ``principal``) are bound through ``structlog.contextvars`` by the request
middleware, so every line of a request carries its correlation id.

Redaction (``observability/redaction.py``) runs on every event before rendering and again on the
rendered line, in both formats and for stdlib records (uvicorn, grpc) alike.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import orjson
import structlog

from omni_secrets.observability.redaction import SENSITIVE_KEYS, Redactor

__all__ = ["SENSITIVE_KEYS", "Redactor", "configure_logging"]


def _final_scrub(redactor: Redactor) -> structlog.types.Processor:
    """Scrub the rendered line too: catches values inside reprs made by the renderer."""

    def scrub_rendered(_logger: Any, _method_name: str, rendered: Any) -> Any:
        if isinstance(rendered, str):
            return redactor.scrub_text(rendered)
        return rendered

    return scrub_rendered


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _json_line(event: Any, **json_kw: Any) -> str:
    """One JSON log line: what ``json.dumps(event, **json_kw)`` encodes, without the spaces after
    separators, at a fraction of the cost.

    Dataclasses and datetimes go to structlog's ``default`` (their ``repr``) as they did with
    ``json.dumps``: orjson would otherwise expand a dataclass field by field, and a ``repr`` is
    where our types mask what they hold. What orjson refuses (an integer past 64 bits, a
    non-string key) is written by ``json.dumps`` instead, and so is a line with non-ASCII text:
    lines stay ASCII (``\\u`` escapes), whatever encoding the process's stdout has.
    """
    try:
        line = orjson.dumps(event, default=json_kw.get("default"), option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(event, **json_kw)
    return line.decode() if line.isascii() else json.dumps(event, **json_kw)


def configure_logging(
    *,
    log_format: str,
    redactor: Redactor,
    level: int = logging.INFO,
    stream: Any = None,
    cache_loggers: bool = False,
) -> None:
    """Configure structlog (and route stdlib logging through it) once, at process start.

    Args:
        log_format: ``json`` or ``console``.
        redactor: the processor that masks served values; also kept by the app for registration.
        level: minimum level.
        stream: where lines go (stdout by default).
        cache_loggers: bind each module's logger once, on its first line, instead of on every
            call (a few microseconds per line). Only for a process configured once (``serve``):
            a later ``configure_logging`` does not reach loggers already used.
    """
    out = stream or sys.stdout
    renderer: structlog.types.Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_line)
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
        cache_logger_on_first_use=cache_loggers,
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
