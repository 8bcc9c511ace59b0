"""Schema fuzzing of the OpenAPI document (schemathesis) against a real running server.

Reliability bar: no 5xx other than the documented 503s (and 502 for ApeX upstream failures);
every error body is the contract's envelope with a correlation id equal to ``X-Request-ID``.
The server runs under uvicorn in a thread with the whole real stack behind it (emulator over
gRPC, migrated and seeded SQLite, a fake ApeX that accepts the seeded credentials).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from omni_secrets.api.app import create_app
from omni_secrets.config import load_settings
from omni_secrets.emulator import GsmEmulator
from omni_secrets.testing import FakeApexServer
from tests.contract.conftest import (
    ALL_SCOPES,
    CANARIES,
    FAKE_VALUES,
    HS256_SECRET,
    PROJECT,
    prepare_database,
    seeded_credentials,
)
from tests.ports import free_port

DOCUMENTED_5XX = {502, 503}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A running server; yields its base URL and a token with every scope."""
    from datetime import UTC, datetime, timedelta

    from omni_secrets.api.auth import mint_hs256_token

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    emulator = GsmEmulator()
    emulator.start()
    emulator.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
    apex = FakeApexServer([seeded_credentials()])
    apex.start()
    url = f"sqlite:///{tmp}/fuzz.db"
    config = load_settings(
        OMNI_ENVIRONMENT="test",
        GCP_PROJECT_ID=PROJECT,
        OMNI_GSM_ENDPOINT=emulator.address,
        OMNI_DATABASE_URL=url,
        OMNI_AUTH_HS256_SECRET=HS256_SECRET,
        OMNI_APEX_BASE_URL=apex.base_url,
    )
    asyncio.run(prepare_database(url, config, seed=True))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    token = mint_hs256_token(
        secret=HS256_SECRET,
        scopes=ALL_SCOPES,
        subject="fuzzer",
        audience="omni-secrets",
        now=datetime.now(UTC),
        ttl=timedelta(hours=1),
    )
    try:
        yield base, token
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        emulator.stop()
        apex.stop()


def _check(case: schemathesis.Case, base: str, token: str) -> None:
    response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500 or response.status_code in DOCUMENTED_5XX, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
    )
    headers = {name.lower(): values[0] for name, values in response.headers.items() if values}
    assert headers.get("x-request-id")
    if response.status_code >= 400 and headers.get("content-type", "").startswith(
        "application/json"
    ):
        error = response.json()["error"]
        assert error["correlationId"] == headers["x-request-id"]
        assert error["code"].isupper()
    for canary in CANARIES:
        assert canary not in response.text


def _fuzz_operation(
    operation: Any, mode: schemathesis.GenerationMode, base: str, token: str
) -> int:
    """Run up to 30 generated cases of ``operation``; return how many ran."""
    ran = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def fuzz(case: schemathesis.Case) -> None:
        nonlocal ran
        ran += 1
        _check(case, base, token)

    try:
        fuzz()
    except Unsatisfiable:  # nothing to negate (an operation without parameters or body)
        assert mode is schemathesis.GenerationMode.NEGATIVE
    return ran


def test_no_undocumented_server_errors(live_server: tuple[str, str]) -> None:
    """Generated requests for every operation never produce an undocumented 5xx."""
    base, token = live_server
    document = httpx.get(f"{base}/openapi.json", timeout=10).json()
    api = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 8
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    calls = dict.fromkeys(modes, 0)
    for operation in operations:
        for mode in modes:
            calls[mode] += _fuzz_operation(operation, mode, base, token)
    assert calls[schemathesis.GenerationMode.POSITIVE] >= 60
    assert calls[schemathesis.GenerationMode.NEGATIVE] >= 30
