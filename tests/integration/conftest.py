"""Fixtures for the GSM emulator and the clients that talk to it over real gRPC.

Every test gets its own emulator (it starts in a few milliseconds), so faults and call counts
never leak between tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.cloud.secretmanager_v1 import SecretManagerServiceAsyncClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
)

from omni_secrets.adapters.gsm import GsmCallRecord, GsmSecretManagerClient
from omni_secrets.adapters.retry import RetryPolicy
from omni_secrets.emulator import GsmEmulator

GSM_PROJECT = "omni-it"
FAST_RETRY = RetryPolicy(
    max_attempts=3,
    initial_backoff_seconds=0.01,
    multiplier=2.0,
    max_backoff_seconds=0.05,
    deadline_seconds=5.0,
)


@pytest.fixture
def gsm_emulator() -> Iterator[GsmEmulator]:
    """A started emulator on a free loopback port, stopped without grace afterwards."""
    emulator = GsmEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
async def sm_client(gsm_emulator: GsmEmulator) -> AsyncIterator[Any]:
    """The official async client on an insecure channel to the emulator."""
    channel = grpc.aio.insecure_channel(gsm_emulator.address)
    client = SecretManagerServiceAsyncClient(
        transport=SecretManagerServiceGrpcAsyncIOTransport(channel=channel)
    )
    try:
        yield client
    finally:
        await client.transport.close()


@pytest.fixture
def gsm_calls() -> list[GsmCallRecord]:
    """What the adapter's on_call hook saw."""
    return []


@pytest.fixture
async def gsm_store(
    gsm_emulator: GsmEmulator, gsm_calls: list[GsmCallRecord]
) -> AsyncIterator[GsmSecretManagerClient]:
    """The adapter pointed at the emulator: 2 s per call, three quick attempts."""
    client = GsmSecretManagerClient(
        project_id=GSM_PROJECT,
        endpoint=gsm_emulator.address,
        timeout_seconds=2.0,
        retry=FAST_RETRY,
        on_call=gsm_calls.append,
    )
    try:
        yield client
    finally:
        await client.aclose()
