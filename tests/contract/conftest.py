"""The contract-test harness: the real app, over real gRPC to the GSM emulator, on a real DB.

``omni_stack`` builds, per test: a seeded :class:`GsmEmulator`, a migrated and seeded database
(SQLite in a temp dir by default, or the session's PostgreSQL), a :class:`FakeApexServer` that
accepts the seeded credentials, ``Settings`` for the ``test`` environment, and ``create_app``
driven through its lifespan with an ``httpx.AsyncClient`` on ``ASGITransport``. Values are
obviously fake; :data:`CANARIES` lists them for leak assertions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from omni_secrets.adapters import integrity_keys
from omni_secrets.adapters.db import migrate
from omni_secrets.adapters.db.engine import create_engine
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.api.app import create_app
from omni_secrets.api.auth import mint_hs256_token
from omni_secrets.bootstrap import Overrides, Services, build_secret_store
from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.config import Settings, load_settings
from omni_secrets.domain.break_glass import generate_private_key
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import SystemClock
from omni_secrets.domain.exchange import ApexCredentials
from omni_secrets.emulator import GsmEmulator
from omni_secrets.testing import FakeApexServer

PROJECT = "omni-test"
HS256_SECRET = "fake-contract-hs256-secret-0123456789abcdef"
FAKE_VALUES: dict[str, str] = {
    "apex-omni-api-key": "fake-api-key-canary-7f3a",
    "apex-omni-api-secret": "fake-api-secret-canary-91bc",
    "apex-omni-api-passphrase": "fake-passphrase-canary-4d2e",
    "apex-omni-zk-seeds": "fake-zk-seeds-canary-88aa",
    "apex-omni-zk-l2-key": "fake-zk-l2-key-canary-13ff",
}
CANARIES = tuple(FAKE_VALUES.values())
ALL_SCOPES = (
    "omni-secrets:read",
    "omni-secrets:rotate",
    "omni-secrets:break-glass",
    "omni-secrets:refresh",
    "apex-omni:read",
)


def seeded_credentials() -> ApexCredentials:
    return ApexCredentials.of(
        FAKE_VALUES["apex-omni-api-key"],
        FAKE_VALUES["apex-omni-api-secret"],
        FAKE_VALUES["apex-omni-api-passphrase"],
    )


@dataclass
class OmniStack:
    app: FastAPI
    client: httpx.AsyncClient
    emulator: GsmEmulator
    apex: FakeApexServer
    settings: Settings
    database_url: str
    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def token(self, *scopes: str, subject: str = "tester", ttl_seconds: int = 300) -> str:
        return mint_hs256_token(
            secret=HS256_SECRET,
            scopes=scopes or ALL_SCOPES,
            subject=subject,
            audience=self.settings.auth_audience,
            now=datetime.now(UTC),
            ttl=timedelta(seconds=ttl_seconds),
        )

    def auth(self, *scopes: str, subject: str = "tester") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*scopes, subject=subject)}"}

    async def request(
        self, method: str, path: str, *, scopes: tuple[str, ...] = ALL_SCOPES, **kwargs: Any
    ) -> httpx.Response:
        headers = {**self.auth(*scopes), **kwargs.pop("headers", {})}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        self.responses.append(response)
        return response

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)


StackFactory = Callable[..., Awaitable[OmniStack]]


async def prepare_database(url: str, settings: Settings, *, seed: bool) -> None:
    await asyncio.to_thread(migrate.upgrade, url)
    if not seed:
        return
    engine = create_engine(url)
    store = build_secret_store(settings)
    # Seeded pins are signed with the integrity key when the stack has one, as `db seed` does.
    keyring = integrity_keys.load_keyring(settings.integrity_key_files)
    try:
        await seed_catalog(
            sql_unit_of_work_factory(engine, keyring=keyring),
            Catalog(settings.gsm_secret_prefix),
            project_id=PROJECT,
            store=store,
            clock=SystemClock(),
            rotation_period_days=settings.rotation_period_days,
        )
    finally:
        await store.aclose()  # type: ignore[attr-defined]
        await engine.dispose()


@pytest.fixture
async def omni_stack_factory(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> AsyncIterator[StackFactory]:
    """Build stacks; every one is torn down (lifespan, emulator, fake ApeX) after the test."""
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def build(
        *,
        database_url: str | None = None,
        seed: bool = True,
        emulator_up: bool = True,
        overrides: Overrides | None = None,
        emulator_events: Callable[[str, Any], None] | None = None,
        **env: str,
    ) -> OmniStack:
        emulator = GsmEmulator(events=emulator_events)
        emulator.start()
        emulator.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
        apex = FakeApexServer([seeded_credentials()])
        apex.start()
        url = database_url or f"sqlite:///{tmp_path}/omni-{len(cleanups)}.db"
        values: dict[str, str] = {
            "OMNI_ENVIRONMENT": "test",
            "GCP_PROJECT_ID": PROJECT,
            "OMNI_GSM_ENDPOINT": emulator.address,
            "OMNI_GSM_TIMEOUT_SECONDS": "1",
            "OMNI_DATABASE_URL": url,
            "OMNI_AUTH_HS256_SECRET": HS256_SECRET,
            "OMNI_APEX_BASE_URL": apex.base_url,
        }
        values.update(env)
        settings = load_settings(**values)
        await prepare_database(url, settings, seed=seed)
        if not emulator_up:
            emulator.stop()
        app = create_app(settings, overrides=overrides)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://omni.test",
        )

        stack = OmniStack(app, client, emulator, apex, settings, url)

        async def close() -> None:
            # The leak guard: whatever the test did, no served value may have left the process
            # through a response, the metrics exposition or the database.
            metrics = await client.get("/metrics")
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
            emulator.stop()
            apex.stop()
            texts = [r.text for r in stack.responses] + [metrics.text]
            for canary in CANARIES:
                assert all(canary not in text for text in texts), "a value leaked into a response"
            if url.startswith("sqlite:///"):
                raw = Path(url.removeprefix("sqlite:///")).read_bytes()
                for canary in CANARIES:
                    assert canary.encode() not in raw, "a value leaked into the database"

        cleanups.append(close)
        return stack

    yield build
    for close in reversed(cleanups):
        await close()


@dataclass(frozen=True)
class BreakGlassKeys:
    """A break-glass key pair on disk; ``env()`` gives the variables that enable break-glass."""

    public_key: str
    private_key_file: Path
    key_id: str

    def env(self) -> dict[str, str]:
        return {
            "OMNI_BREAKGLASS_PUBLIC_KEY": self.public_key,
            "OMNI_BREAKGLASS_PRIVATE_KEY_FILE": str(self.private_key_file),
        }


@pytest.fixture
def break_glass_keys(tmp_path: Path) -> BreakGlassKeys:
    """A fresh key pair; pass ``**break_glass_keys.env()`` to ``omni_stack_factory``."""
    private_b64, public_b64, key_id = generate_private_key()
    path = tmp_path / "breakglass.key"
    path.write_text(private_b64 + "\n")
    path.chmod(0o600)
    return BreakGlassKeys(public_b64, path, key_id)


@pytest.fixture
def integrity_key_file(tmp_path: Path) -> str:
    """A fresh integrity key file; pass ``OMNI_INTEGRITY_KEY_FILE=`` it to the stack factory."""
    path = tmp_path / "integrity.key"
    integrity_keys.create_key_file(path)
    return str(path)


@pytest.fixture
async def omni_stack(omni_stack_factory: StackFactory) -> OmniStack:
    """A ready stack on SQLite with every type hydrated from the emulator."""
    return await omni_stack_factory()
