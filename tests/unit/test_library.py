"""Library use: the curated ``omni_secrets.__all__``; ``omni_secrets.api.install`` in a host app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request

import omni_secrets
from omni_secrets.api import install
from omni_secrets.api.auth import Scope, mint_hs256_token
from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import ManualClock
from omni_secrets.testing import FakeSecretStore, InMemoryUnitOfWorkFactory

HS256 = "fake-hs256-secret-for-unit-tests-0123456789"
CATALOG = Catalog()

PUBLIC_NAMES = {
    # building and running the services
    "Overrides",
    "Services",
    "Settings",
    "build_services",
    "load_settings",
    "run_services",
    "start_services",
    # reading credentials
    "OmniSecretCache",
    "SecretType",
    "SecretValue",
    # the errors a caller handles
    "OmniSecretsError",
    "NotFound",
    "InvalidInput",
    "Conflict",
    "Unavailable",
    "ConfigurationRejected",
    "SecretsUnavailable",
    "SecretStoreError",
    "UnknownSecretType",
    "__version__",
}


class TestPublicNames:
    def test_all_is_the_curated_list(self) -> None:
        """Adding or removing a public name is a decision: this test must change with it."""
        assert set(omni_secrets.__all__) == PUBLIC_NAMES
        assert len(omni_secrets.__all__) == len(PUBLIC_NAMES)

    def test_every_name_resolves_to_its_definition(self) -> None:
        """Each name is the real object, not a copy (``isinstance`` checks keep working)."""
        from omni_secrets.bootstrap import build_services
        from omni_secrets.domain.errors import SecretsUnavailable

        for name in omni_secrets.__all__:
            assert getattr(omni_secrets, name) is not None
        assert omni_secrets.build_services is build_services
        assert omni_secrets.SecretsUnavailable is SecretsUnavailable

    def test_unknown_name_is_an_attribute_error(self) -> None:
        with pytest.raises(AttributeError):
            _ = omni_secrets.not_a_name  # type: ignore[attr-defined]

    def test_import_is_cheap(self) -> None:
        """``import omni_secrets`` and the CLI load neither the composition root nor the fakes."""
        probe = (
            "import sys, omni_secrets, omni_secrets.cli; "
            "print(sorted(m for m in sys.modules if m.startswith("
            "('omni_secrets.bootstrap', 'omni_secrets.testing', 'omni_secrets.adapters'))))"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout
        assert out.strip() == "[]"


@pytest.fixture
async def seeded() -> tuple[FakeSecretStore, InMemoryUnitOfWorkFactory]:
    clock = ManualClock()
    store = FakeSecretStore(clock=clock)
    store.seed({e.gsm_secret_id: [f"fake-{e.secret_type.value}-v1"] for e in CATALOG})
    db = InMemoryUnitOfWorkFactory(clock=clock)
    await seed_catalog(
        db, CATALOG, project_id="omni-test", store=store, clock=clock, rotation_period_days=365
    )
    return store, db


class TestInstall:
    async def test_host_app_serves_its_routes_and_ours(
        self,
        clean_env: pytest.MonkeyPatch,
        seeded: tuple[FakeSecretStore, InMemoryUnitOfWorkFactory],
    ) -> None:
        """The host's lifespan runs inside ours: services are up in its start-up and routes."""
        events: list[str] = []

        @asynccontextmanager
        async def host_lifespan(app: FastAPI) -> AsyncIterator[None]:
            services = app.state.services
            events.append(f"host start, cache {services.cache.state.value}")
            yield
            events.append("host stop")

        host = FastAPI(lifespan=host_lifespan)

        @host.get("/host/price")
        async def price(request: Request) -> dict[str, str]:
            cached = request.app.state.services.cache.get(omni_secrets.SecretType.API_KEY)
            return {"apiKeyVersion": cached.version if cached else "none"}

        settings = omni_secrets.load_settings(
            OMNI_ENVIRONMENT="test", GCP_PROJECT_ID="omni-test", OMNI_AUTH_HS256_SECRET=HS256
        )
        install(
            host,
            settings,
            overrides=omni_secrets.Overrides(
                secret_store=seeded[0],
                uow_factory=seeded[1],
                alert_sinks=[],
            ),
        )
        token = mint_hs256_token(
            secret=HS256,
            scopes=[Scope.READ],
            subject="host-test",
            audience=settings.auth_audience,
            now=datetime.now(UTC),
            ttl=timedelta(minutes=5),
        )
        async with host.router.lifespan_context(host):
            transport = httpx.ASGITransport(app=host)
            async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
                assert (await client.get("/host/price")).json() == {"apiKeyVersion": "1"}
                assert (await client.get("/readyz")).status_code == 200
                status = await client.get(
                    "/ops/apex-omni/secrets/status", headers={"Authorization": f"Bearer {token}"}
                )
                assert status.status_code == 200
                assert status.json()["cache"]["state"] == "ready"
                refused = await client.get("/ops/apex-omni/secrets/status")
                assert refused.status_code == 401
                assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
            assert events == ["host start, cache ready"]
        assert events == ["host start, cache ready", "host stop"]
        assert host.state.services is None
