"""``ActivationRequest``: what ``POST .../break-glass`` asks for, its checks before the payload,
and the override record it becomes once the payload is opened.

Checked in the contract's order: the TTL, the reason (and ticket) text, then the secret type;
the sealed payload comes after (:func:`~omni_secrets.domain.break_glass.open_override`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from omni_secrets.domain import break_glass
from omni_secrets.domain.break_glass import OpenedOverride
from omni_secrets.domain.catalog import SecretType, parse_secret_type
from omni_secrets.domain.errors import InvalidInput
from omni_secrets.domain.models import BreakGlassOverrideRecord

_CATALOG_NAMES = frozenset(t.value for t in SecretType)


@dataclass(frozen=True, slots=True)
class ActivationRequest:
    """One activation request, as the route received it (see ``BreakGlassService.activate``)."""

    secret_type: str
    key_id: str
    ciphertext: str
    ttl_seconds: int
    reason: str
    ticket: str | None
    actor: str
    correlation_id: str | None

    def check(self) -> SecretType:
        """Run the checks that come before the payload, in order; the checked type.

        Raises:
            TtlTooLong: ``ttl_seconds`` > 1800.
            InvalidInput: ``ttl_seconds`` < 60, a blank reason, a reason or ticket no database
                can store, or a type not in the catalog.
        """
        break_glass.validate_ttl(self.ttl_seconds)
        if not self.reason.strip():
            raise InvalidInput("a break-glass reason is required")
        if not _storable(self.reason) or (self.ticket is not None and not _storable(self.ticket)):
            raise InvalidInput("reason and ticket must be UTF-8 text without NUL characters")
        return parse_secret_type(self.secret_type)

    @property
    def catalog_type(self) -> SecretType | None:
        """The requested type when it is in the catalog (a refusal's metric label), else None."""
        return SecretType(self.secret_type) if self.secret_type in _CATALOG_NAMES else None

    @property
    def storable_ticket(self) -> str | None:
        """The ticket when the database can store it (for a refusal's audit row), else None."""
        return self.ticket if self.ticket is not None and _storable(self.ticket) else None

    def record(
        self,
        override_id: str,
        secret_type: SecretType,
        key_id: str,
        opened: OpenedOverride,
        now: datetime,
    ) -> BreakGlassOverrideRecord:
        """The override to store: the ciphertext and its nonce, never the value."""
        return BreakGlassOverrideRecord(
            override_id=override_id,
            secret_type=secret_type,
            key_id=key_id,
            ciphertext=self.ciphertext,
            nonce=opened.nonce,
            actor=self.actor,
            reason=self.reason,
            ticket=self.ticket,
            activated_at=now,
            expires_at=now + timedelta(seconds=self.ttl_seconds),
        )


def _storable(text: str) -> bool:
    """Whether every database can store ``text`` (PostgreSQL refuses NUL; no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
