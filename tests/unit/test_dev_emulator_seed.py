"""`dev` seeds its emulator with a `current` alias on every demo secret (section 15)."""

from __future__ import annotations

import pytest

from omni_secrets.cli.dev import DEMO_SECRETS, DEV_PROJECT, _start_emulator


def test_dev_names_current_on_every_demo_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each demo secret has one version, named `current`, with the configured prefix."""
    monkeypatch.setenv("OMNI_GSM_SECRET_PREFIX", "fake-desk-")
    emulator, address = _start_emulator()
    try:
        assert address
        for name in DEMO_SECRETS:
            assert emulator.aliases(DEV_PROJECT, f"fake-desk-{name}") == {"current": 1}
    finally:
        emulator.stop()
