"""API docs: served with local assets outside production, absent in production (issue 15)."""

from __future__ import annotations

import re

import httpx
import pytest

from omni_secrets.api.app import create_app
from omni_secrets.config import load_settings

DEV = {
    "OMNI_ENVIRONMENT": "development",
    "GCP_PROJECT_ID": "omni-dev",
    "OMNI_AUTH_HS256_SECRET": "fake-docs-test-hs256-secret-0123456789",
}
PRODUCTION = {
    "OMNI_ENVIRONMENT": "production",
    "GCP_PROJECT_ID": "acme-prod",
    "OMNI_AUTH_JWKS_URL": "https://idp.example.test/jwks.json",
    "OMNI_AUTH_ISSUER": "https://idp.example.test",
    "OMNI_DATABASE_URL": "postgresql+psycopg://omni@db.example.test/omni",
}


def client_for(env: dict[str, str]) -> httpx.AsyncClient:
    # The routes below need no services: the lifespan is not run.
    app = create_app(load_settings(**env))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://omni.test")


@pytest.mark.usefixtures("clean_env")
class TestDocs:
    @pytest.mark.parametrize("path", ["/docs", "/redoc"])
    async def test_pages_load_only_local_assets(self, path: str) -> None:
        async with client_for(DEV) as client:
            page = await client.get(path)
            assert page.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sources, page.text
            for source in sources:
                assert source.startswith("/docs/assets/"), f"{source} is not served locally"
                asset = await client.get(source)
                assert asset.status_code == 200
                assert len(asset.content) > 1000
            assert "cdn" not in page.text.lower()
            assert "fonts.googleapis" not in page.text

    async def test_openapi_is_served_outside_production(self) -> None:
        async with client_for(DEV) as client:
            response = await client.get("/openapi.json")
        assert response.status_code == 200
        assert "/ops/apex-omni/secrets/status" in response.json()["paths"]

    @pytest.mark.parametrize(
        "path", ["/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"]
    )
    async def test_off_in_production(self, path: str) -> None:
        async with client_for(PRODUCTION) as client:
            response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
