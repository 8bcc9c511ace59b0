"""Reporting rows whose integrity MAC is missing or wrong (contract section 9).

The repositories compute each row's :class:`~omni_secrets.domain.integrity.IntegrityStatus`;
the services refuse to serve what is not servable and tell :class:`IntegrityViolations`, which
logs, counts (``omni_integrity_violations_total{table}``) and pages (alert
``integrity_violation``, critical) — once per row and status per process, because the same row is
seen again at every reconcile. The incident is never resolved automatically: a forged row stays
forged until a human has looked at it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("omni_secrets.integrity")

METADATA_TABLE = "omni_secret_metadata"
OVERRIDES_TABLE = "omni_break_glass_overrides"
JOURNAL_TABLE = "omni_commit_journal"
PREVIEWS_TABLE = "omni_rotation_previews"
TABLES = (METADATA_TABLE, OVERRIDES_TABLE, PREVIEWS_TABLE, JOURNAL_TABLE)


@dataclass(frozen=True, slots=True)
class IntegrityViolation:
    """One refused row.

    Attributes:
        table: the table holding it (:data:`TABLES`).
        row: its key (secret type, override id or preview id).
        problem: ``missing`` (no MAC), ``invalid`` (wrong MAC), ``stale_key`` (signed by a
            verify-only key), ``replayed`` (superseded by a later audit event) or
            ``window_too_long``.
        secret_type: the type concerned.
    """

    table: str
    row: str
    problem: str
    secret_type: str


class IntegrityViolations:
    """Deduplicates violations and hands each new one to ``on_violation``.

    Args:
        on_violation: counts and pages (bootstrap wires metrics and alerts); must not raise.
    """

    def __init__(
        self, on_violation: Callable[[IntegrityViolation], None] = lambda _violation: None
    ) -> None:
        self._on_violation = on_violation
        self._seen: set[IntegrityViolation] = set()

    def report(self, violation: IntegrityViolation) -> None:
        """Log every sighting at most once per process; count and page new ones."""
        if violation in self._seen:
            return
        self._seen.add(violation)
        log.error(
            "integrity.violation",
            table=violation.table,
            row=violation.row,
            problem=violation.problem,
            secret_type=violation.secret_type,
            effect="not served",
        )
        self._on_violation(violation)
