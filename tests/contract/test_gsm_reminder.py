"""GSM's own rotation reminder through the real app (contract section 15): a commit and a
rollback set ``rotation.next_rotation_time`` = ``dueAt`` - the warning window and a one-day
``rotation_period`` on each member secret that has topics, over real gRPC to the emulator."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.cloud.secretmanager_v1.types import resources

from tests.contract.conftest import PROJECT, OmniStack
from tests.contract.test_rotation import ROTATE
from tests.contract.test_rotation_cas import ROLLBACK, commit

TOPIC = f"projects/{PROJECT}/topics/gsm-events"
WARNING = timedelta(days=30)  # OMNI_ROTATION_WARNING_DAYS default


def secret_of(stack: OmniStack, secret_id: str) -> Any:
    return stack.emulator.state.get_secret(f"projects/{PROJECT}/secrets/{secret_id}")


def give_topics(stack: OmniStack, *secret_ids: str) -> None:
    for secret_id in secret_ids:
        stack.emulator.update_secret(
            resources.Secret(
                name=f"projects/{PROJECT}/secrets/{secret_id}", topics=[{"name": TOPIC}]
            ),
            ["topics"],
        )


def reminder_of(stack: OmniStack, secret_id: str) -> tuple[datetime, timedelta] | None:
    rotation = secret_of(stack, secret_id).rotation
    if "next_rotation_time" not in rotation:
        return None
    return rotation.next_rotation_time, rotation.rotation_period


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TestGsmReminder:
    async def test_commit_then_rollback_move_the_reminder(self, omni_stack: OmniStack) -> None:
        stack = omni_stack
        give_topics(stack, "apex-omni-api-key", "apex-omni-api-secret")
        before = (await stack.request("GET", "/ops/apex-omni/secrets/status")).json()
        due_before = {s["secretType"]: s["rotation"]["dueAt"] for s in before["secrets"]}

        body = await commit(stack)
        due = parse(body["dueAt"])
        for secret_id in ("apex-omni-api-key", "apex-omni-api-secret"):
            assert reminder_of(stack, secret_id) == (due - WARNING, timedelta(days=1))
        # No topics: GSM would refuse a schedule, so nothing is written there.
        assert reminder_of(stack, "apex-omni-api-passphrase") is None
        assert reminder_of(stack, "apex-omni-zk-seeds") is None

        body = {"secretType": "api_key"}  # pragma: allowlist secret
        response = await stack.request("POST", ROLLBACK, json=body, scopes=ROTATE)
        assert response.status_code == 200, response.text
        restored = parse(response.json()["dueAt"])
        assert restored == parse(due_before["api_key"])
        for secret_id in ("apex-omni-api-key", "apex-omni-api-secret"):
            assert reminder_of(stack, secret_id) == (restored - WARNING, timedelta(days=1))
        # The aliases the commit and rollback moved are intact (the reminder's write is a
        # compare-and-set on a fresh read, never a stale etag).
        assert stack.emulator.aliases(PROJECT, "apex-omni-api-key") == {
            "current": 1,
            "previous": 2,
        }
