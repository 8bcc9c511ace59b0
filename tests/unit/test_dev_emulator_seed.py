"""`dev` seeds its emulator with a `current` alias on every demo secret (section 15), once."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_secrets.cli.dev import DEMO_SECRETS, DEV_PROJECT, _start_emulator


def test_dev_names_current_on_every_demo_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each demo secret has one version, named `current`, with the configured prefix."""
    monkeypatch.setenv("OMNI_GSM_SECRET_PREFIX", "fake-desk-")
    emulator, address = _start_emulator(tmp_path, tmp_path)
    try:
        assert address
        for name in DEMO_SECRETS:
            assert emulator.aliases(DEV_PROJECT, f"fake-desk-{name}") == {"current": 1}
    finally:
        emulator.stop()


def test_a_restart_keeps_the_state_and_seeds_nothing_again(tmp_path: Path) -> None:
    """The second start loads the data dir's state: a version added before is still there and
    the demo values are not added a second time."""
    first, _ = _start_emulator(tmp_path, tmp_path)
    try:
        assert first.add_version(DEV_PROJECT, "apex-omni-api-key", "fake-v2") == 2
    finally:
        first.stop()
    second, _ = _start_emulator(tmp_path, tmp_path)
    try:
        assert second.restored
        assert second.enabled_payloads(DEV_PROJECT, "apex-omni-api-key") == [
            b"fake-v2",
            b"fake-demo-api-key",
        ]
        assert second.aliases(DEV_PROJECT, "apex-omni-api-key") == {"current": 1}
    finally:
        second.stop()
