"""Metrics registry shape and the log redaction processor."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.values import SecretValue
from omni_secrets.observability.logging import Redactor, configure_logging
from omni_secrets.observability.metrics import OmniMetrics

CONTRACT_METRICS = {
    "omni_secret_reads": "counter",
    "omni_secret_failures": "counter",
    "omni_secret_cache_age_seconds": "gauge",
    "omni_secret_rotation_overdue": "gauge",
    "omni_secret_rotation_due_timestamp_seconds": "gauge",
    "omni_secret_break_glass_active": "gauge",
    "omni_gsm_request_duration_seconds": "histogram",
    "omni_secret_cache_hydration_duration_seconds": "histogram",
    "omni_audit_write_failures": "counter",
    "omni_alerts_sent": "counter",
}


class TestMetrics:
    def test_every_contract_metric_with_every_type(self) -> None:
        """The exposition lists every metric of contract section 6 with every catalog type."""
        registry = CollectorRegistry()
        types = Catalog().types
        OmniMetrics(registry, [t.value for t in types])
        families = {
            f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
        }
        for name, kind in CONTRACT_METRICS.items():
            assert name in families, name
            assert families[name].type == kind
        for name in (
            "omni_secret_reads",
            "omni_secret_failures",
            "omni_secret_cache_age_seconds",
            "omni_secret_rotation_overdue",
            "omni_secret_rotation_due_timestamp_seconds",
            "omni_secret_break_glass_active",
        ):
            seen = {s.labels["secret_type"] for s in families[name].samples}
            assert seen == {t.value for t in types}, name
        ages = [s.value for s in families["omni_secret_cache_age_seconds"].samples]
        assert all(math.isinf(a) for a in ages)

    def test_label_sets_are_exactly_the_contract(self) -> None:
        """No metric carries labels beyond the contract's."""
        registry = CollectorRegistry()
        OmniMetrics(registry, ["api_key"])
        families = {
            f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
        }
        reads = {
            frozenset(s.labels)
            for s in families["omni_secret_reads"].samples
            if s.name.endswith("_total")
        }
        assert reads == {frozenset({"secret_type", "source", "result"})}
        alerts = {
            frozenset(s.labels)
            for s in families["omni_alerts_sent"].samples
            if s.name.endswith("_total")
        }
        assert alerts == {frozenset({"alert", "action", "result"})}

    def test_cache_age_is_computed_at_scrape(self) -> None:
        """track_cache_age reads the age function at scrape time."""
        registry = CollectorRegistry()
        metrics = OmniMetrics(registry, ["api_key"])
        ages = {"api_key": 12.5}
        metrics.track_cache_age(lambda t: ages[t])
        assert (
            registry.get_sample_value("omni_secret_cache_age_seconds", {"secret_type": "api_key"})
            == 12.5
        )
        ages["api_key"] = 1.0
        assert (
            registry.get_sample_value("omni_secret_cache_age_seconds", {"secret_type": "api_key"})
            == 1.0
        )

    def test_enabled_versions_is_computed_at_scrape_nan_until_read(self) -> None:
        """track_enabled_versions: None (never read) is NaN, never a misleading 0."""
        registry = CollectorRegistry()
        metrics = OmniMetrics(registry, ["api_key"])
        counts: dict[str, int | None] = {"api_key": None}
        metrics.track_enabled_versions(lambda t: counts[t])
        labels = {"secret_type": "api_key"}
        value = registry.get_sample_value("omni_secret_enabled_versions", labels)
        assert value is not None and math.isnan(value)
        counts["api_key"] = 3
        assert registry.get_sample_value("omni_secret_enabled_versions", labels) == 3.0

    def test_unknown_reason_folds_into_unknown(self) -> None:
        """Failure reasons stay a bounded set."""
        registry = CollectorRegistry()
        metrics = OmniMetrics(registry, ["api_key"])
        metrics.record_failure("api_key", "refresh", "SOMETHING_NEW")
        value = registry.get_sample_value(
            "omni_secret_failures_total",
            {"secret_type": "api_key", "operation": "refresh", "reason": "UNKNOWN"},
        )
        assert value == 1

    def test_callbacks_move_their_series(self) -> None:
        """The hooks the composition root hands out record into the right labelled series."""
        registry = CollectorRegistry()
        metrics = OmniMetrics(registry, ["api_key"])
        metrics.observe_gsm_call("AccessSecretVersion", "OK", 0.02)
        metrics.count_alert("gsm_failures", "trigger", "success")
        metrics.count_integrity_violation("omni_secret_metadata")
        metrics.show_rotation_candidate("api_key", True)
        metrics.count_gsm_event("SECRET_VERSION_ADD", "applied")
        metrics.count_gsm_event(None, "rejected")
        metrics.count_gsm_event("SOMETHING_NEW", "rejected")
        pending = [3]
        metrics.track_audit_queue(lambda: pending[0])
        sample = registry.get_sample_value
        assert (
            sample(
                "omni_gsm_request_duration_seconds_count",
                {"method": "AccessSecretVersion", "code": "OK"},
            )
            == 1
        )
        assert (
            sample(
                "omni_alerts_sent_total",
                {"alert": "gsm_failures", "action": "trigger", "result": "success"},
            )
            == 1
        )
        assert sample("omni_integrity_violations_total", {"table": "omni_secret_metadata"}) == 1
        assert sample("omni_secret_rotation_candidate_available", {"secret_type": "api_key"}) == 1
        metrics.show_rotation_candidate("api_key", False)
        assert sample("omni_secret_rotation_candidate_available", {"secret_type": "api_key"}) == 0
        assert (
            sample(
                "omni_gsm_events_total", {"event_type": "SECRET_VERSION_ADD", "result": "applied"}
            )
            == 1
        )
        assert sample("omni_gsm_events_total", {"event_type": "OTHER", "result": "rejected"}) == 2
        assert sample("omni_audit_queue_depth") == 3
        pending[0] = 0
        assert sample("omni_audit_queue_depth") == 0

    def test_gsm_events_connection_exists_from_configuration(self) -> None:
        """The connected series appears at 0 when tracked, before any connection."""
        registry = CollectorRegistry()
        metrics = OmniMetrics(registry, ["api_key"])
        labels = {"subscription": "projects/p/subscriptions/s"}
        assert registry.get_sample_value("omni_gsm_events_connected", labels) is None
        connected = metrics.track_gsm_events_connection("projects/p/subscriptions/s")
        assert registry.get_sample_value("omni_gsm_events_connected", labels) == 0
        connected(True)
        assert registry.get_sample_value("omni_gsm_events_connected", labels) == 1
        connected(False)
        assert registry.get_sample_value("omni_gsm_events_connected", labels) == 0


class TestRedaction:
    def test_registered_values_and_sensitive_keys_are_masked(self) -> None:
        """A served value is masked wherever it appears; sensitive keys are masked whole."""
        out = io.StringIO()
        redactor = Redactor()
        configure_logging(log_format="json", redactor=redactor, stream=out)
        try:
            redactor.register("fake-served-value-123")
            log = structlog.get_logger("t")
            log.info("oops", note="prefix fake-served-value-123 suffix", passphrase="fake-pass-999")
            log.info("nested", details={"inner": ["fake-served-value-123"]})
            log.info("wrapped", value=SecretValue("fake-other-456"))
        finally:
            structlog.reset_defaults()
        text = out.getvalue()
        assert "fake-served-value-123" not in text
        assert "fake-pass-999" not in text
        assert "fake-other-456" not in text
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines[0]["note"] == "prefix ********** suffix"
        assert lines[0]["passphrase"] == "**********"

    def test_rendered_reprs_are_scrubbed(self) -> None:
        """A value hidden inside an object's repr is still caught after rendering."""

        class Leaky:
            def __repr__(self) -> str:
                return "Leaky(fake-served-value-789)"

        out = io.StringIO()
        redactor = Redactor()
        configure_logging(log_format="console", redactor=redactor, stream=out)
        try:
            redactor.register("fake-served-value-789")
            structlog.get_logger("t").info("leak", obj=Leaky())
        finally:
            structlog.reset_defaults()
        assert "fake-served-value-789" not in out.getvalue()
        assert "Leaky(**********)" in out.getvalue()

    def test_json_lines_stay_ascii_and_reprs_stay_reprs(self) -> None:
        """orjson renders the lines; what it would render differently goes to json.dumps."""

        @dataclasses.dataclass
        class Holder:
            secret: SecretValue

        out = io.StringIO()
        redactor = Redactor()
        configure_logging(log_format="json", redactor=redactor, stream=out)
        try:
            log = structlog.get_logger("t")
            log.info("plain", count=3, ratio=0.25, flag=True, missing=None)
            log.info("accented", text="fake-café")
            log.info("huge", number=2**70)
            log.info("held", holder=Holder(SecretValue("fake-held-value-321")))
            log.info("when", at=datetime(2026, 11, 27, tzinfo=UTC))
        finally:
            structlog.reset_defaults()
        text = out.getvalue()
        assert text.isascii()
        assert "fake-held-value-321" not in text  # the dataclass's repr, not its fields
        plain, accented, huge, held, when = (json.loads(line) for line in text.splitlines())
        assert (plain["count"], plain["ratio"], plain["flag"], plain["missing"]) == (
            3,
            0.25,
            True,
            None,
        )
        assert accented["text"] == "fake-café"
        assert "\\u00e9" in text.splitlines()[1]
        assert huge["number"] == 2**70
        assert held["holder"].endswith("Holder(secret=SecretValue('**********'))")
        assert when["at"] == repr(datetime(2026, 11, 27, tzinfo=UTC))
