"""The JSON log of a run through the real app: request ids everywhere, served values nowhere.

Logging is configured the way ``serve`` does it — ``configure_logging(...)`` first, then the same
:class:`Redactor` handed to the app through ``Overrides(redactor=...)`` — but into a StringIO.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

from omni_secrets.bootstrap import Overrides
from omni_secrets.domain.values import REDACTED
from omni_secrets.observability.logging import Redactor, configure_logging
from tests.contract.conftest import CANARIES, FAKE_VALUES, StackFactory


@dataclass
class CapturedLog:
    stream: io.StringIO
    redactor: Redactor

    def lines(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON (a non-JSON line fails the test)."""
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]


@pytest.fixture
def json_log() -> Iterator[CapturedLog]:
    """structlog + stdlib logging configured as JSON into a StringIO; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    saved_access = access.disabled
    captured = CapturedLog(io.StringIO(), Redactor())
    configure_logging(log_format="json", redactor=captured.redactor, stream=captured.stream)
    try:
        yield captured
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.disabled = saved_access


class TestJsonLog:
    async def test_request_ids_everywhere_and_no_served_value(
        self, omni_stack_factory: StackFactory, json_log: CapturedLog
    ) -> None:
        """Each request logs one http.request line with its request_id; no canary is logged."""
        stack = await omni_stack_factory(overrides=Overrides(redactor=json_log.redactor))
        responses = [
            await stack.request("GET", "/ops/apex-omni/secrets/status"),
            await stack.request("GET", "/apex-omni/account"),
            await stack.request("POST", "/ops/apex-omni/secrets/self-test"),
            await stack.request("POST", "/internal/apex-omni/secrets/cache/refresh", json={}),
            await stack.client.get("/metrics"),
            await stack.client.get("/readyz"),
            await stack.client.get("/no/such/route"),
            await stack.client.get("/ops/apex-omni/secrets/status"),  # 401
        ]
        assert [r.status_code for r in responses] == [200, 200, 200, 202, 200, 200, 404, 401]

        lines = json_log.lines()
        requests = [line for line in lines if line["event"] == "http.request"]
        assert len(requests) == len(responses)
        assert [line["request_id"] for line in requests] == [
            r.headers["x-request-id"] for r in responses
        ]
        assert all(line["request_id"] for line in requests)
        assert [line["status"] for line in requests] == [r.status_code for r in responses]
        assert {"service.started", "cache.hydrated", "cache.refreshed"} <= {
            line["event"] for line in lines
        }
        text = json_log.stream.getvalue()
        for canary in CANARIES:
            assert canary not in text

    async def test_a_served_value_logged_by_mistake_is_redacted(
        self, omni_stack_factory: StackFactory, json_log: CapturedLog
    ) -> None:
        """The app registered what it serves with the processor: a leaked value is masked."""
        await omni_stack_factory(overrides=Overrides(redactor=json_log.redactor))
        canary = FAKE_VALUES["apex-omni-api-secret"]
        structlog.get_logger().info("oops", note=canary)
        structlog.get_logger().info("oops.nested", details={"inner": [f"x{canary}y"]})
        logging.getLogger("some.library").warning("leaked %s", canary)

        text = json_log.stream.getvalue()
        assert canary not in text
        lines = {line["event"]: line for line in json_log.lines()}
        assert lines["oops"]["note"] == REDACTED
        assert lines["oops.nested"]["details"] == {"inner": [f"x{REDACTED}y"]}
        assert lines[f"leaked {REDACTED}"]["logger"] == "some.library"

    async def test_a_value_the_app_never_served_is_not_masked(
        self, omni_stack_factory: StackFactory, json_log: CapturedLog
    ) -> None:
        """Control: masking follows registration by the app, not a blanket filter."""
        await omni_stack_factory(overrides=Overrides(redactor=json_log.redactor))
        structlog.get_logger().info("harmless", note="fake-never-served-value")
        assert json_log.lines()[-1]["note"] == "fake-never-served-value"
