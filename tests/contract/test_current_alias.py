"""GSM's ``current`` alias on the serving side (contract section 15), through the real app, over
gRPC to the emulator, on a real database (SQLite; PostgreSQL where it is about the database).

- Start-up names ``current`` after the served version where it is missing (audited
  ``current_alias_named``, actor ``system``); status shows ``aliasVersion``,
  ``previousVersion`` and ``enabledVersions``.
- A fresh database (``db seed`` with GSM, or a seed that could not ask GSM) serves the version
  ``current`` names, not the newest ENABLED one added but never committed.
- ``current`` naming a version that is not ENABLED fails the type closed (``VERSION_DISABLED``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_secrets.adapters.db.engine import create_engine
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.api.app import create_app
from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.config import Settings
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import SystemClock
from tests.contract.conftest import PROJECT, OmniStack, StackFactory, prepare_database
from tests.contract.test_rotation import audit_rows
from tests.integration.db.conftest import PostgresDatabases

STATUS = "/ops/apex-omni/secrets/status"
REFRESH = "/internal/apex-omni/secrets/cache/refresh"
KEY = "apex-omni-api-key"


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    databases = PostgresDatabases(postgres_url)
    try:
        yield databases.create()
    finally:
        databases.close()


async def status_of(stack: OmniStack, secret_type: str) -> dict[str, Any]:
    body = (await stack.request("GET", STATUS, scopes=("omni-secrets:read",))).json()
    found: dict[str, Any] = next(s for s in body["secrets"] if s["secretType"] == secret_type)
    return found


@contextlib.asynccontextmanager
async def second_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another replica on ``settings`` (its own database, the same emulator), started and
    stopped around the block."""
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://omni.test",
    )
    try:
        yield client
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


class TestStartupNamesCurrent:
    async def test_startup_names_current_audited_and_status_shows_it(
        self, omni_stack: OmniStack
    ) -> None:
        """The emulator's secrets have no alias: start-up names `current` = the served version
        on every catalog secret, each audited once by `system`; status shows the aliases."""
        for secret_id in ("apex-omni-api-key", "apex-omni-zk-l2-key"):
            assert omni_stack.emulator.aliases(PROJECT, secret_id) == {"current": 1}
        await omni_stack.wait_for(
            lambda: len(audit_rows(omni_stack, "current_alias_named")) == 5,
            what="five current_alias_named audit rows",
        )
        rows = audit_rows(omni_stack, "current_alias_named")
        key_row = next(r for r in rows if r["secret_type"] == "api_key")
        assert (key_row["actor"], key_row["result"]) == ("system", "success")
        assert key_row["details"] == {"gsmSecretId": KEY, "alias": "current", "version": "1"}
        secret = await status_of(omni_stack, "api_key")
        assert secret["enabledVersions"] == 1
        assert secret["rotation"]["aliasVersion"] == "1"
        assert secret["rotation"]["previousVersion"] is None

    async def test_an_existing_current_is_kept_and_shown(
        self, omni_stack_factory: StackFactory
    ) -> None:
        """A restart finds `current` set: nothing is renamed, no new audit row."""
        stack = await omni_stack_factory()
        await stack.wait_for(
            lambda: len(audit_rows(stack, "current_alias_named")) == 5, what="the first naming"
        )
        stack.emulator.add_version(PROJECT, KEY, "fake-api-key-v2")
        stack.emulator.set_aliases(PROJECT, KEY, {"current": 1, "previous": 2})
        async with second_app(stack.settings) as client:
            response = await client.get(STATUS, headers=stack.auth("omni-secrets:read"))
            secret = next(s for s in response.json()["secrets"] if s["secretType"] == "api_key")
        assert stack.emulator.aliases(PROJECT, KEY) == {"current": 1, "previous": 2}
        assert len(audit_rows(stack, "current_alias_named")) == 5
        assert (secret["rotation"]["aliasVersion"], secret["rotation"]["previousVersion"]) == (
            "1",
            "2",
        )
        assert secret["enabledVersions"] == 2


class TestFreshDatabaseAdoptsCurrent:
    async def _fresh_database_serves_current(
        self, stack: OmniStack, url: str, *, ask_gsm: bool
    ) -> None:
        # Versions 1 and 2, `current` = 2 committed; 3 added but never committed.
        stack.emulator.add_version(PROJECT, KEY, "fake-api-key-v2")
        stack.emulator.set_aliases(PROJECT, KEY, {"current": 2, "previous": 1})
        stack.emulator.add_version(PROJECT, KEY, "fake-api-key-v3-uncommitted")
        settings = stack.settings.model_copy(update={"database_url": url})
        await prepare_database(url, settings, seed=ask_gsm)
        if not ask_gsm:  # `db seed` while GSM was unreachable: rows unpinned
            engine = create_engine(url)
            try:
                await seed_catalog(
                    sql_unit_of_work_factory(engine),
                    Catalog(),
                    project_id=PROJECT,
                    store=None,
                    clock=SystemClock(),
                    rotation_period_days=365,
                )
            finally:
                await engine.dispose()
        async with second_app(settings) as client:
            response = await client.get(STATUS, headers=stack.auth("omni-secrets:read"))
        secret = next(s for s in response.json()["secrets"] if s["secretType"] == "api_key")
        assert (secret["version"], secret["activeVersion"]) == ("2", "2")
        assert secret["rotation"]["aliasVersion"] == "2"
        assert secret["enabledVersions"] == 3

    @pytest.mark.parametrize("ask_gsm", [True, False], ids=["seeded-with-gsm", "seeded-blind"])
    async def test_sqlite(self, omni_stack: OmniStack, tmp_path: Path, ask_gsm: bool) -> None:
        """A fresh SQLite database serves `current` (2), not the newest ENABLED (3)."""
        url = f"sqlite:///{tmp_path}/fresh.db"
        await self._fresh_database_serves_current(omni_stack, url, ask_gsm=ask_gsm)

    @pytest.mark.parametrize("ask_gsm", [True, False], ids=["seeded-with-gsm", "seeded-blind"])
    async def test_postgresql(
        self, omni_stack: OmniStack, fresh_postgres_url: str, ask_gsm: bool
    ) -> None:
        """A fresh PostgreSQL database serves `current` (2), not the newest ENABLED (3)."""
        await self._fresh_database_serves_current(omni_stack, fresh_postgres_url, ask_gsm=ask_gsm)


class TestCurrentNotEnabled:
    async def test_current_naming_a_disabled_version_fails_the_type_closed(
        self, omni_stack: OmniStack
    ) -> None:
        """Pinned 1, `current` moved to 2 by someone else and 2 disabled: the next refresh
        fails api_key closed with lastError.code VERSION_DISABLED; the others still serve."""
        omni_stack.emulator.add_version(PROJECT, KEY, "fake-api-key-v2")
        omni_stack.emulator.set_aliases(PROJECT, KEY, {"current": 2})
        omni_stack.emulator.disable(PROJECT, KEY, 2)
        response = await omni_stack.request(
            "POST", REFRESH, json={"secretTypes": ["api_key"]}, scopes=("omni-secrets:refresh",)
        )
        assert response.status_code in (200, 202)

        for _ in range(500):  # up to ~10 s
            secret = await status_of(omni_stack, "api_key")
            if (secret["lastError"] or {}).get("code") == "VERSION_DISABLED":
                break
            await asyncio.sleep(0.02)
        assert secret["cacheSource"] == "none"
        assert "apex-omni-api-key version 2 is DISABLED" in secret["lastError"]["message"]
        assert (await status_of(omni_stack, "api_secret"))["cacheSource"] == "gsm"
