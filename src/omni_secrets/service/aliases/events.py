"""What the ``current`` alias naming emits; its reactions are in ``reactions.py``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain.catalog import SecretType


@dataclass(frozen=True, slots=True)
class CurrentAliasNamed:
    """A catalog secret without ``current`` now has one naming the version served."""

    secret_type: SecretType
    gsm_secret_id: str
    version: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CurrentAliasNotNamed:
    """GSM refused (or failed) the compare-and-set; it is tried again after the next refresh.

    Attributes:
        reason: the store's reason (``FAILED_PRECONDITION`` when the secret changed since it
            was read, a gRPC code name otherwise).
    """

    secret_type: SecretType
    gsm_secret_id: str
    version: str
    reason: str
    at: datetime
