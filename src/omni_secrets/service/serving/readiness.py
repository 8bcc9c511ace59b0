"""``ReadinessCheck``: ``/readyz`` — the database answers and every required type is served."""

from __future__ import annotations

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.service.serving.db_probe import CachedDatabaseProbe
from omni_secrets.service.views import Readiness


class ReadinessCheck:
    """Answers readiness from one metadata read and the cache's state."""

    def __init__(self, *, uow_factory: UnitOfWorkFactory, cache: OmniSecretCache) -> None:
        self._uow_factory = uow_factory
        self.cache = cache
        self._db_probe = CachedDatabaseProbe(self._query_database)

    async def readiness(self) -> Readiness:
        """Ready when the database answers (checked at most once a second) and every required
        type is served."""
        checks: dict[str, str] = {}
        reasons: list[str] = []
        database_problem = await self._db_probe.problem()
        checks["database"] = "ok" if database_problem is None else "unavailable"
        if database_problem is not None:
            reasons.append(database_problem)
        state = self.cache.state.value
        checks["cache"] = state
        if state != "ready":
            missing = ", ".join(t.value for t in self.cache.missing_required())
            reasons.append(f"cache {state}: required types not served: {missing}")
        return Readiness(ready=not reasons, reason="; ".join(reasons) or None, checks=checks)

    async def _query_database(self) -> None:
        async with self._uow_factory() as uow:
            await uow.metadata.list_all()
