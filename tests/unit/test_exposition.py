"""TextExposition renders exactly what prometheus_client.generate_latest renders."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest

from omni_secrets.observability.exposition import TextExposition
from omni_secrets.observability.metrics import OmniMetrics

TYPES = ("api_key", "api_secret", "api_passphrase", "zk_seeds", "zk_l2_key")


def test_the_service_registry_renders_byte_for_byte() -> None:
    registry = CollectorRegistry()
    metrics = OmniMetrics(registry, TYPES)
    metrics.track_cache_age(lambda t: 1.5 if t == "api_key" else math.inf)
    metrics.gsm_request_duration.labels("AccessSecretVersion", "OK").observe(0.012)
    metrics.hydration_duration.observe(0.2)
    metrics.record_failure("api_key", "access", "UNAVAILABLE")
    metrics.rotation_due_timestamp.labels("api_key").set(1.7955e9)
    exposition = TextExposition()
    assert exposition.render(registry) == generate_latest(registry)
    metrics.reads.labels("api_key", "gsm", "success").inc(3)  # second scrape: cached prefixes
    assert exposition.render(registry) == generate_latest(registry)


def test_escaped_label_values_and_odd_help_render_the_same() -> None:
    registry = CollectorRegistry()
    odd = Counter(
        "odd_things", 'help with \\ and\nnewline and "quotes"', ["what"], registry=registry
    )
    odd.labels('a "quoted" \\ value\nwith newline').inc()
    odd.labels("ünïcode").inc(2)
    Gauge("plain_gauge", "no labels", registry=registry).set(-0.0)
    Summary("a_summary", "summary", registry=registry).observe(4)
    Histogram("a_histogram", "histogram", buckets=(1, math.inf), registry=registry).observe(2)
    assert TextExposition().render(registry) == generate_latest(registry)


def test_names_outside_the_legacy_set_fall_back_to_the_library() -> None:
    registry = CollectorRegistry()
    Gauge("dotted.name", "utf-8 name", ["label.with.dots"], registry=registry).labels("x").set(1)
    assert TextExposition().render(registry) == generate_latest(registry)
