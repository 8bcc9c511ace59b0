"""``omni_secret_enabled_versions`` through the real app: what the last refresh read from GSM
(contract section 15; the Prometheus alert ``OmniSecretsStaleVersionsEnabled`` reads it)."""

from __future__ import annotations

import asyncio

from tests.contract.conftest import PROJECT, OmniStack
from tests.contract.test_metrics_endpoint import scrape, value

FAMILY = "omni_secret_enabled_versions"
REFRESH = "/internal/apex-omni/secrets/cache/refresh"


async def enabled(stack: OmniStack, secret_type: str) -> float:
    return value(await scrape(stack), FAMILY, FAMILY, secret_type=secret_type)


async def test_follows_the_versions_gsm_holds(omni_stack: OmniStack) -> None:
    stack = omni_stack
    scraped = await scrape(stack)
    assert scraped[FAMILY].type == "gauge"
    assert {s.labels["secret_type"] for s in scraped[FAMILY].samples} == {
        "api_key",
        "api_secret",
        "api_passphrase",
        "zk_seeds",
        "zk_l2_key",
    }
    assert await enabled(stack, "api_key") == 1.0  # hydration read the one seeded version
    for n in (2, 3):
        stack.emulator.add_version(PROJECT, "apex-omni-api-key", f"fake-api-key-v{n}")
    response = await stack.request(
        "POST", REFRESH, json={"secretTypes": ["api_key"]}, scopes=("omni-secrets:refresh",)
    )
    assert response.status_code == 202, response.text
    request_id = response.json()["requestId"]
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        got = await stack.request(
            "GET", f"{REFRESH}/{request_id}", scopes=("omni-secrets:refresh",)
        )
        if got.json()["status"] not in ("queued", "running"):
            break
        assert asyncio.get_running_loop().time() < deadline, got.text
        await asyncio.sleep(0.05)
    assert got.json()["status"] == "succeeded", got.text
    assert await enabled(stack, "api_key") == 3.0
    status = (await stack.request("GET", "/ops/apex-omni/secrets/status")).json()
    wanted = "api_key"  # pragma: allowlist secret
    (row,) = [s for s in status["secrets"] if s["secretType"] == wanted]
    assert row["enabledVersions"] == 3
    assert await enabled(stack, "api_secret") == 1.0
