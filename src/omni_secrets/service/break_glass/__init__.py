"""Break-glass overrides, decide-then-react: ``service`` decides (checks, the unit of work with
its fail-closed audit rows, what the cache serves), ``events`` names what it decided,
``reactions`` is what follows each event (logs, metrics, alerts, best-effort audit rows, the
peer announcement), ``build`` wires both; ``served_overrides`` keeps the decrypted overrides in
line with the cache and ``audit_rows`` builds the rows. Keys and payloads are in
:mod:`omni_secrets.domain.break_glass`; the expiry job is ``jobs/break_glass_expiry.py``.
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
