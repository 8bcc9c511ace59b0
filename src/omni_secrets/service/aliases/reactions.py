"""What follows the ``current`` alias naming.

- ``CurrentAliasNamed`` → ``alias.current_named`` (info), then a ``current_alias_named`` audit
  row, actor ``system`` (best effort: serving does not depend on it).
- ``CurrentAliasNotNamed`` → ``alias.current_not_named`` (warning; tried again after the next
  refresh).
"""

from __future__ import annotations

import structlog

from omni_secrets.domain.audit_trail import BackgroundAudit
from omni_secrets.domain.models import SYSTEM_ACTOR, NewAccessEvent
from omni_secrets.service.aliases.events import CurrentAliasNamed, CurrentAliasNotNamed
from omni_secrets.service.messagebus import Reactions

log = structlog.get_logger("omni_secrets.aliases")

CURRENT_ALIAS_NAMED = "current_alias_named"
"""The audit action of a ``current`` alias this service named at start-up (or after)."""


def alias_reactions(*, auditor: BackgroundAudit) -> Reactions:
    """The reaction table of the ``current`` alias naming.

    Args:
        auditor: queues the ``current_alias_named`` row.
    """

    def log_named(event: CurrentAliasNamed) -> None:
        log.info(
            "alias.current_named",
            secret_type=event.secret_type.value,
            gsm_secret_id=event.gsm_secret_id,
            version=event.version,
        )

    def audit_named(event: CurrentAliasNamed) -> None:
        auditor.record_later(current_alias_named_row(event))

    def log_not_named(event: CurrentAliasNotNamed) -> None:
        log.warning(
            "alias.current_not_named",
            secret_type=event.secret_type.value,
            gsm_secret_id=event.gsm_secret_id,
            version=event.version,
            reason=event.reason,
            retry="after the next refresh",
        )

    return {
        CurrentAliasNamed: [log_named, audit_named],
        CurrentAliasNotNamed: [log_not_named],
    }


def current_alias_named_row(event: CurrentAliasNamed) -> NewAccessEvent:
    """The ``current_alias_named`` audit row."""
    return NewAccessEvent(
        occurred_at=event.at,
        secret_type=event.secret_type.value,
        action=CURRENT_ALIAS_NAMED,
        actor=SYSTEM_ACTOR,
        result="success",
        duration_ms=None,
        correlation_id=None,
        details={"gsmSecretId": event.gsm_secret_id, "alias": "current", "version": event.version},
    )
