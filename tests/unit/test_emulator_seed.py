"""The emulator's seed format and its fault plan (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from omni_secrets.emulator import GsmEmulator, SeedError, load_seed_file, parse_seed
from omni_secrets.emulator.faults import FaultPlan


class TestSeed:
    def test_valid_document(self) -> None:
        """projectId and per-secret value lists are kept in order."""
        seed = parse_seed({"projectId": "omni-dev", "secrets": {"apex-omni-x": ["a", "b"]}})
        assert (seed.project_id, seed.secrets, seed.version_count) == (
            "omni-dev",
            {"apex-omni-x": ["a", "b"]},
            2,
        )

    @pytest.mark.parametrize(
        ("document", "needle"),
        [
            ([], "JSON object"),
            ({"secrets": {}}, "projectId"),
            ({"projectId": "a/b", "secrets": {}}, "projectId"),
            ({"projectId": "p"}, "secrets"),
            ({"projectId": "p", "secrets": {"x y": []}}, "x y"),
            ({"projectId": "p", "secrets": {"x": [1]}}, "list of strings"),
            ({"projectId": "p", "secrets": {"x": ["v" * 65537]}}, "64 KiB"),
        ],
    )
    def test_invalid_documents(self, document: Any, needle: str) -> None:
        """Each malformed document is refused with a message naming the problem."""
        with pytest.raises(SeedError, match=needle):
            parse_seed(document)

    def test_messages_never_quote_values(self) -> None:
        """An oversized value is reported by secret and version, not by content."""
        with pytest.raises(SeedError) as raised:
            parse_seed({"projectId": "p", "secrets": {"x": ["fake-" + "z" * 70000]}})
        assert "zzz" not in str(raised.value)

    def test_file_errors(self, tmp_path: Path) -> None:
        """A missing file and invalid JSON are SeedErrors, the latter with its position only."""
        with pytest.raises(SeedError, match="cannot read"):
            load_seed_file(tmp_path / "missing.json")
        broken = tmp_path / "broken.json"
        broken.write_text('{"projectId": "fake-secret-text"')
        with pytest.raises(SeedError, match="line 1") as raised:
            load_seed_file(broken)
        assert "fake-secret-text" not in str(raised.value)


class TestFaultPlan:
    def test_failures_queue_in_order_and_specific_beats_wildcard(self) -> None:
        """Queued failures are consumed in order; a method's own entry wins over `*`."""
        plan = FaultPlan()
        plan.fail_next("*", "INTERNAL", 1)
        plan.fail_next("GetSecret", "UNAVAILABLE", 2)
        plan.fail_next("GetSecret", "NOT_FOUND", 1)
        got = [plan.admit("GetSecret").fail for _ in range(5)]
        assert got == [
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.INTERNAL,
            None,
        ]
        assert plan.call_counts() == {"GetSecret": 5}

    def test_latency_specific_then_wildcard(self) -> None:
        """A method's latency overrides `*`; 0 removes it."""
        plan = FaultPlan()
        plan.inject_latency("*", 0.2)
        plan.inject_latency("GetSecret", 0.5)
        assert plan.admit("GetSecret").latency == 0.5
        assert plan.admit("AccessSecretVersion").latency == 0.2
        plan.inject_latency("*", 0)
        assert plan.admit("AccessSecretVersion").latency == 0.0

    @pytest.mark.parametrize("count", [0, -1])
    def test_count_must_be_positive(self, count: int) -> None:
        """A fault count below 1 is refused."""
        with pytest.raises(ValueError, match="count"):
            FaultPlan().fail_next("*", "UNAVAILABLE", count)


class TestSeedAliases:
    def test_aliases_parsed(self) -> None:
        seed = parse_seed(
            {
                "projectId": "omni-dev",
                "secrets": {"apex-omni-x": ["fake-a", "fake-b"]},
                "aliases": {"apex-omni-x": {"current": 2, "previous": 1}},
            }
        )
        assert seed.aliases == {"apex-omni-x": {"current": 2, "previous": 1}}

    @pytest.mark.parametrize(
        "aliases",
        [
            [],
            {"a/b": {"current": 1}},
            {"apex-omni-x": {"current": "2"}},
            {"apex-omni-x": {"current": 0}},
        ],
    )
    def test_bad_aliases_refused(self, aliases: object) -> None:
        with pytest.raises(SeedError):
            parse_seed({"projectId": "omni-dev", "secrets": {}, "aliases": aliases})

    def test_apply_seed_sets_aliases(self) -> None:
        emulator = GsmEmulator()
        seed = parse_seed(
            {
                "projectId": "omni-dev",
                "secrets": {"apex-omni-x": ["fake-a", "fake-b"]},
                "aliases": {"apex-omni-x": {"current": 2}},
            }
        )
        assert emulator.apply_seed(seed) == 2
        assert emulator.aliases("omni-dev", "apex-omni-x") == {"current": 2}
