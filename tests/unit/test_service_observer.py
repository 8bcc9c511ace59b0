"""The observer bootstrap installs: service events become samples and redactor entries."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from omni_secrets.domain.observations import OperationFailed, SecretRead, ValueSeen
from omni_secrets.domain.values import SecretValue
from omni_secrets.observability.logging import Redactor
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.observability.service_observer import MetricsAndRedaction
from omni_secrets.service.break_glass import break_glass_reactions
from omni_secrets.service.rotation.build import build_rotation
from omni_secrets.service.serving.pinned_versions import PinnedVersions


def test_events_reach_metrics_and_the_redactor() -> None:
    """A value seen is redacted from then on; reads and failures are counted by label."""
    registry = CollectorRegistry()
    redactor = Redactor()
    observer = MetricsAndRedaction(OmniMetrics(registry, ["api_key"]), redactor)
    observer.on_event(ValueSeen(SecretValue("fake-observed-value-1")))
    observer.on_event(SecretRead("api_key", "break_glass", ok=False))
    observer.on_event(OperationFailed("api_key", "rotation", "PREVIEW_NOT_READY"))
    event = {"event": "x", "note": "saw fake-observed-value-1"}
    assert "fake-observed-value-1" not in str(redactor(None, "info", event))
    reads = {"secret_type": "api_key", "source": "break_glass", "result": "failure"}
    assert registry.get_sample_value("omni_secret_reads_total", reads) == 1
    failed = {"secret_type": "api_key", "operation": "rotation", "reason": "PREVIEW_NOT_READY"}
    assert registry.get_sample_value("omni_secret_failures_total", failed) == 1


# Break-glass and rotation report through their reactions: the observer is required where
# their tables are built.
@pytest.mark.parametrize("service", [PinnedVersions, break_glass_reactions, build_rotation])
def test_the_observer_is_required(service: Callable[..., object]) -> None:
    """No default: wiring that forgets the observer fails loudly instead of losing redaction."""
    parameter = inspect.signature(service).parameters["observer"]
    assert parameter.default is inspect.Parameter.empty


def test_events_are_frozen() -> None:
    event = SecretRead("api_key", "gsm", ok=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.ok = False  # type: ignore[misc]
