"""The probe fast path answers like the FastAPI routes it stands in front of (contract §5)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from structlog.testing import capture_logs

from tests.contract.conftest import CANARIES, OmniStack


async def test_healthz_and_readyz_bodies_and_headers(omni_stack: OmniStack) -> None:
    health = await omni_stack.client.get("/healthz", headers={"X-Request-ID": "probe-1"})
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["content-type"] == "application/json"
    assert health.headers["content-length"] == str(len(health.content))
    assert health.headers["x-request-id"] == "probe-1"

    ready = await omni_stack.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ready"}}
    assert ready.headers["content-type"] == "application/json"
    assert len(ready.headers["x-request-id"]) >= 1


async def test_metrics_is_the_prometheus_text_format(omni_stack: OmniStack) -> None:
    response = await omni_stack.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "# TYPE omni_secret_reads_total counter" in response.text
    for canary in CANARIES:
        assert canary not in response.text


async def test_other_methods_still_get_the_error_envelope(omni_stack: OmniStack) -> None:
    response = await omni_stack.client.post("/healthz", headers={"X-Request-ID": "probe-2"})
    assert response.status_code == 405
    assert response.json()["error"]["correlationId"] == "probe-2"


async def test_probe_requests_are_logged_with_their_route(omni_stack: OmniStack) -> None:
    with capture_logs() as logs:
        for path in ("/healthz", "/readyz", "/metrics"):
            await omni_stack.client.get(path, headers={"X-Request-ID": f"log{path}"})
    lines = [line for line in logs if line["event"] == "http.request"]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
    ]
