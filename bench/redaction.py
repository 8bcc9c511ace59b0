"""Cost of one log line through the real JSON processor chain, by number of registered values.

The same event (a request line: a dozen short fields, one nested dict) is logged through
``configure_logging(log_format="json")`` into a discarding stream with 0, 5 (the catalog) and
1,024 (the cap) registered values; the result is the per-line cost and its ratio to 0 values in
the same run.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import structlog

from bench._stats import Distribution, distribution, time_batched
from omni_secrets.observability.logging import configure_logging
from omni_secrets.observability.redaction import MAX_REGISTERED_VALUES, Redactor


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)

    def isatty(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class RedactionResult:
    by_count: dict[int, Distribution]

    def ratio(self, count: int) -> float:
        return self.by_count[count].p50 / self.by_count[0].p50


def _log_one(log: structlog.typing.FilteringBoundLogger) -> None:
    log.info(
        "http.request",
        method="GET",
        route="/ops/apex-omni/secrets/status",
        status=200,
        duration_ms=3.25,
        principal="ops@example.test",
        request_id="6d968624120546cd926891d1702a82cf",
        details={"secretType": "api_key", "version": "3", "cacheSource": "gsm"},
    )


def run(*, quick: bool = False) -> RedactionResult:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    results: dict[int, Distribution] = {}
    try:
        for count in (0, 5, MAX_REGISTERED_VALUES):
            redactor = Redactor()
            for index in range(count):
                redactor.register(f"fake-bench-registered-value-{index:05d}")
            configure_logging(log_format="json", redactor=redactor, stream=_Discard())
            log = structlog.get_logger("bench")
            samples = time_batched(
                lambda logger: _log_one(logger),
                log,
                batch=20 if quick else 100,
                batches=20 if quick else 200,
            )
            results[count] = distribution(samples)
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved[0], saved[1]
    return RedactionResult(results)
