"""``ReadinessCheck``: ``/readyz`` — the database answers and every required type is served."""

from __future__ import annotations

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.service.shared_call import SharedCall
from omni_secrets.service.views import Readiness


class ReadinessCheck:
    """Answers readiness from one metadata read and the cache's state.

    Probes that arrive while a database check is in flight share its answer (one round trip for
    a burst of probes); a probe that arrives after it finished starts a new one, so a database
    that just went down is reported by the next probe, never from a cache.
    """

    def __init__(self, *, uow_factory: UnitOfWorkFactory, cache: OmniSecretCache) -> None:
        self._uow_factory = uow_factory
        self.cache = cache
        self._database_check = SharedCall(self._check_database)

    async def readiness(self) -> Readiness:
        """Ready when the database answers and every required type is served."""
        checks: dict[str, str] = {}
        reasons: list[str] = []
        failure = await self._database_check.run()
        if failure is None:
            checks["database"] = "ok"
        else:
            checks["database"] = "unavailable"
            reasons.append(f"database unavailable ({failure})")
        state = self.cache.state.value
        checks["cache"] = state
        if state != "ready":
            missing = ", ".join(t.value for t in self.cache.missing_required())
            reasons.append(f"cache {state}: required types not served: {missing}")
        return Readiness(ready=not reasons, reason="; ".join(reasons) or None, checks=checks)

    async def _check_database(self) -> str | None:
        """None when the database answers, else the name of the error."""
        try:
            async with self._uow_factory() as uow:
                await uow.metadata.list_all()
        except Exception as exc:
            return type(exc).__name__
        return None
