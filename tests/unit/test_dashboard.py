"""The Grafana dashboard and the alert rules only query metrics the service exposes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from omni_secrets.domain.catalog import Catalog
from omni_secrets.observability.metrics import OmniMetrics
from tests.deploy_files import (
    PROMETHEUS_BUILTINS,
    alert_rules,
    dashboard_exprs,
    dashboard_variable_metrics,
    family_of,
    iter_panels,
    load_dashboard,
    load_rules,
    metric_names,
)


@pytest.fixture(scope="module")
def exposed_families() -> dict[str, str]:
    """``{family name: type}`` of a fresh ``OmniMetrics`` registry's exposition."""
    registry = CollectorRegistry()
    OmniMetrics(registry, [t.value for t in Catalog().types])
    text = generate_latest(registry).decode()
    return {family.name: family.type for family in text_string_to_metric_families(text)}


class TestMetricNames:
    def test_functions_labels_and_ranges_are_not_metrics(self) -> None:
        """Function names, label names, strings, ranges and numbers are cut away."""
        expr = (
            "histogram_quantile(0.99, sum by (le, method) (rate(omni_gsm_request_duration_seconds_"
            'bucket{instance=~"$instance", code!="OK"}[$__rate_interval]))) > 1e3'
        )
        assert metric_names(expr) == {"omni_gsm_request_duration_seconds_bucket"}

    def test_binary_operations_and_set_operators(self) -> None:
        """Both sides of arithmetic and of and/or/unless with on(...) are found."""
        expr = (
            "(a_total - b) / 86400 or on (job, instance) c_seconds unless ignoring (x) "
            "absent(d{job='x'}) offset 5m"
        )
        assert metric_names(expr) == {"a_total", "b", "c_seconds", "d"}

    def test_family_resolution_follows_the_type(self) -> None:
        """Counters resolve only with _total, histograms only with _bucket/_sum/_count."""
        families = {"c": "counter", "h_seconds": "histogram", "g": "gauge"}
        assert family_of("c_total", families) == "c"
        assert family_of("c", families) is None
        assert family_of("h_seconds_bucket", families) == "h_seconds"
        assert family_of("h_seconds_count", families) == "h_seconds"
        assert family_of("h_seconds", families) is None
        assert family_of("g", families) == "g"
        assert family_of("g_total", families) is None
        assert family_of("missing", families) is None


class TestDashboard:
    def test_bare_model_with_stable_uid_and_no_id(self) -> None:
        """Grafana file provisioning takes the bare model: a stable uid, no id, no wrapper."""
        model = load_dashboard()
        assert "dashboard" not in model
        assert "id" not in model
        assert model["uid"] == "omni-secrets"
        assert model["title"]
        assert model["panels"]

    def test_panel_ids_are_unique_and_every_query_panel_has_targets(self) -> None:
        """Panel ids are unique; every non-row panel has at least one target with PromQL."""
        panels = list(iter_panels(load_dashboard()["panels"]))
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids))
        for panel in panels:
            if panel["type"] == "row":
                continue
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]

    def test_required_panels_are_present(self) -> None:
        """Each metric family the brief names is charted by some panel."""
        queried = {
            name for _, expr in dashboard_exprs(load_dashboard()) for name in metric_names(expr)
        }
        for needed in (
            "omni_secret_cache_age_seconds",
            "omni_secret_reads_total",
            "omni_secret_failures_total",
            "omni_gsm_request_duration_seconds_bucket",
            "omni_secret_cache_hydration_duration_seconds_sum",
            "omni_secret_rotation_due_timestamp_seconds",
            "omni_secret_rotation_overdue",
            "omni_secret_break_glass_active",
            "omni_audit_write_failures_total",
            "omni_alerts_sent_total",
        ):
            assert needed in queried, needed

    def test_gsm_latency_is_a_histogram_quantile(self) -> None:
        """GSM latency panels use histogram_quantile over the _bucket series by le."""
        exprs = [e for _, e in dashboard_exprs(load_dashboard()) if "_bucket" in e]
        gsm = [e for e in exprs if "omni_gsm_request_duration_seconds_bucket" in e]
        assert gsm
        assert all(e.startswith("histogram_quantile(") and "by (le" in e for e in gsm)

    def test_every_panel_metric_is_exposed(self, exposed_families: dict[str, str]) -> None:
        """Every metric a panel or template variable queries exists in a fresh registry."""
        model = load_dashboard()
        checked = 0
        for where, expr in dashboard_exprs(model):
            names = metric_names(expr)
            assert names, f"{where}: no metric found in {expr!r}"
            for name in names - PROMETHEUS_BUILTINS:
                assert family_of(name, exposed_families), f"{where}: {name} is not exposed"
                checked += 1
        for where, name in dashboard_variable_metrics(model):
            assert family_of(name, exposed_families), f"{where}: {name} is not exposed"
            checked += 1
        assert checked >= 15


class TestAlertRuleMetrics:
    def test_every_rule_metric_is_exposed(self, exposed_families: dict[str, str]) -> None:
        """Every metric an alert rule queries exists in a fresh registry (or is Prometheus' up)."""
        rules = list(alert_rules(load_rules()))
        assert len(rules) >= 10
        for rule in rules:
            names = metric_names(rule["expr"])
            assert names, rule["alert"]
            for name in names - PROMETHEUS_BUILTINS:
                assert family_of(name, exposed_families), f"{rule['alert']}: {name} not exposed"
