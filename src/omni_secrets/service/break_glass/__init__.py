"""Break-glass overrides, decide-then-react.

- ``service``: :class:`BreakGlassService` decides (checks, what the cache serves) and emits;
- ``request``: an activation request's checks and the record it becomes;
- ``ledger``: the units of work, with the audit rows that must commit with the override;
- ``served_overrides``: the decrypted overrides this process serves, kept in line with the cache;
- ``events``: what the service emits; ``reactions``: what follows each event (logs, metrics,
  alerts, best-effort audit rows, the peer announcement); ``audit_rows``: the rows, built once;
- ``build``: the reaction table, then the service, from explicit collaborators.

Keys and sealed payloads are :mod:`omni_secrets.domain.break_glass`; the expiry job is
``jobs/break_glass_expiry.py``.
"""

from omni_secrets.service.break_glass.build import break_glass_reactions, build_break_glass
from omni_secrets.service.break_glass.service import (
    ActivatedOverride,
    BreakGlassService,
    PublicKeyInfo,
)

__all__ = [
    "ActivatedOverride",
    "BreakGlassService",
    "PublicKeyInfo",
    "break_glass_reactions",
    "build_break_glass",
]
