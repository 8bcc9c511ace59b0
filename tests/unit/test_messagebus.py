"""The dispatcher: reactions in table order, sync and async alike, a failing one contained."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import structlog

from omni_secrets.service.messagebus import Dispatcher, RecordingBus


@dataclass(frozen=True)
class Happened:
    what: str


@dataclass(frozen=True)
class Other:
    what: str


async def test_reactions_run_in_table_order_across_tables_sync_and_async() -> None:
    seen: list[str] = []

    def first(event: Happened) -> None:
        seen.append(f"first:{event.what}")

    async def second(event: Happened) -> None:
        seen.append(f"second:{event.what}")

    def third(event: Happened) -> None:
        seen.append(f"third:{event.what}")

    bus = Dispatcher([{Happened: [first, second]}, {Happened: [third]}])
    await bus.emit(Happened("x"))
    assert seen == ["first:x", "second:x", "third:x"]
    assert bus.reactions_to(Happened) == (first, second, third)


async def test_an_event_type_without_reactions_is_ignored() -> None:
    seen: list[object] = []
    bus = Dispatcher([{Happened: [seen.append]}])
    await bus.emit(Other("y"))
    assert seen == []
    assert bus.reactions_to(Other) == ()


async def test_a_failing_reaction_is_logged_and_the_rest_still_run() -> None:
    seen: list[str] = []

    def broken(event: Happened) -> None:
        raise RuntimeError("fake-boom")

    async def after(event: Happened) -> None:
        seen.append(event.what)

    bus = Dispatcher([{Happened: [broken, after]}])
    with structlog.testing.capture_logs() as logs:
        await bus.emit(Happened("z"))
    assert seen == ["z"]
    failed = [line for line in logs if line["event"] == "reaction.failed"]
    assert len(failed) == 1
    assert failed[0]["event_type"] == "Happened"
    assert failed[0]["error_type"] == "RuntimeError"
    assert failed[0]["reaction"].endswith("broken")
    assert "fake-boom" not in repr(failed[0])


async def test_recording_bus_keeps_events_and_forwards_them() -> None:
    seen: list[object] = []
    bus = RecordingBus(then=Dispatcher([{Happened: [seen.append]}]))
    await bus.emit(Happened("a"))
    await bus.emit(Other("b"))
    assert bus.events == [Happened("a"), Other("b")]
    assert bus.of_type(Other) == [Other("b")]
    assert seen == [Happened("a")]


async def test_a_table_added_later_runs_after_the_first_ones() -> None:
    """A feature's table added after construction extends the earlier tables, in order."""
    seen: list[str] = []
    bus = Dispatcher([{Happened: [lambda e: seen.append(f"first:{e.what}")]}])
    bus.add({Happened: [lambda e: seen.append(f"added:{e.what}")], Other: [seen.append]})
    await bus.emit(Happened("x"))
    assert seen == ["first:x", "added:x"]
    assert len(bus.reactions_to(Other)) == 1


async def test_no_table_is_added_once_events_flow() -> None:
    """Adding after the first event would have silently missed it: refused as misuse."""
    bus = Dispatcher()
    await bus.emit(Happened("x"))
    with pytest.raises(RuntimeError):
        bus.add({Happened: [print]})
