"""The emulator bounds GSM's rotation reminder as Secret Manager does (its ``Rotation``
reference): ``next_rotation_time`` at least 300 s ahead, ``rotation_period`` at least 1 h and
only with a time. Through the official async client over gRPC."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.api_core import exceptions as core_exceptions

from .conftest import GSM_PROJECT
from .test_gsm_emulator_aliases import START, client, clock, emulator, events, update

__all__ = ["client", "clock", "emulator", "events"]  # the fixtures, used below by name
TOPICS = [{"name": f"projects/{GSM_PROJECT}/topics/gsm-events"}]


@pytest.mark.parametrize(
    ("rotation", "message"),
    [
        ({"next_rotation_time": START + timedelta(seconds=299)}, "less than 300s"),
        (
            {
                "next_rotation_time": START + timedelta(days=1),
                "rotation_period": timedelta(minutes=59),
            },
            "at least 3600s",
        ),
        ({"rotation_period": timedelta(days=1)}, "must be set if rotation_period"),
    ],
)
async def test_out_of_bounds_is_invalid_argument_and_changes_nothing(
    client: Any, rotation: dict[str, Any], message: str
) -> None:
    before = await client.get_secret(name=f"projects/{GSM_PROJECT}/secrets/apex-omni-api-key")
    with pytest.raises(core_exceptions.InvalidArgument, match=message):
        await update(client, ["topics", "rotation"], topics=TOPICS, rotation=rotation)
    after = await client.get_secret(name=f"projects/{GSM_PROJECT}/secrets/apex-omni-api-key")
    assert after.etag == before.etag
    assert "next_rotation_time" not in after.rotation


async def test_the_bounds_themselves_are_accepted(client: Any) -> None:
    at = START + timedelta(seconds=300)
    got = await update(
        client,
        ["topics", "rotation"],
        topics=TOPICS,
        rotation={"next_rotation_time": at, "rotation_period": timedelta(hours=1)},
    )
    assert got.rotation.next_rotation_time == at
