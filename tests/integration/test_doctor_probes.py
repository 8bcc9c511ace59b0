"""``doctor``'s JWKS and Pub/Sub probes against real endpoints (a local HTTP server, Google's
Pub/Sub emulator), and the bound on a blocking check."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.cloud import pubsub_v1

from omni_secrets.bootstrap.doctor import jwks_check, pubsub_check
from omni_secrets.config import Settings
from omni_secrets.service.doctor import CheckStatus, CheckTimedOut, bounded_blocking
from tests.ports import free_port

PROJECT = "omni-doctor-probes"
BASE = {
    "OMNI_ENVIRONMENT": "test",
    "GCP_PROJECT_ID": PROJECT,
    "OMNI_AUTH_HS256_SECRET": "fake-doctor-probes-hs256-32-bytes-xx",  # pragma: allowlist secret
}


def settings(**extra: str) -> Settings:
    return Settings(**BASE, **extra)


class _Jwks(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        keys = [] if self.path == "/empty" else [{"kty": "RSA", "kid": "fake-kid", "n": "AQAB"}]
        body = json.dumps({"keys": keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def jwks_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class TestJwks:
    async def test_keys_served(self, jwks_server: str) -> None:
        result = await jwks_check(settings(OMNI_AUTH_JWKS_URL=f"{jwks_server}/jwks"), 5)
        assert result.status is CheckStatus.OK and "1 keys" in result.detail

    async def test_no_keys_is_a_fail(self, jwks_server: str) -> None:
        result = await jwks_check(settings(OMNI_AUTH_JWKS_URL=f"{jwks_server}/empty"), 5)
        assert result.status is CheckStatus.FAIL and "no keys" in result.detail
        assert result.fix

    async def test_unreachable_is_a_fail_naming_the_url(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/jwks"
        result = await jwks_check(settings(OMNI_AUTH_JWKS_URL=url), 5)
        assert result.status is CheckStatus.FAIL and url in result.detail

    async def test_not_configured_is_ok(self) -> None:
        result = await jwks_check(settings(), 5)
        assert result.status is CheckStatus.OK and "not configured" in result.detail


@pytest.fixture
def subscription(pubsub_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    suffix = uuid.uuid4().hex[:10]
    topic = f"projects/{PROJECT}/topics/gsm-{suffix}"
    name = f"projects/{PROJECT}/subscriptions/omni-{suffix}"
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    publisher.create_topic(request={"name": topic})
    subscriber.create_subscription(request={"name": name, "topic": topic})
    try:
        yield name
    finally:
        subscriber.close()


class TestPubSub:
    async def test_existing_subscription_is_ok(self, subscription: str) -> None:
        result = await pubsub_check(settings(OMNI_PUBSUB_SUBSCRIPTION=subscription), 5)
        assert result.status is CheckStatus.OK, result

    async def test_missing_subscription_is_a_fail(self, subscription: str) -> None:
        missing = subscription + "-missing"
        result = await pubsub_check(settings(OMNI_PUBSUB_SUBSCRIPTION=missing), 5)
        assert result.status is CheckStatus.FAIL and missing in result.detail
        assert result.fix and "subscription" in result.fix


async def test_a_blocking_check_that_never_returns_is_abandoned_at_its_bound() -> None:
    """The call is left on a daemon thread; the check fails at the bound, not later."""
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(CheckTimedOut):
        await bounded_blocking(lambda: release.wait(60), 0.5)
    assert time.monotonic() - started < 5
    release.set()
