"""``GET /metrics`` of the real app lists every metric of contract section 6 (with live values)."""

from __future__ import annotations

import math

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from omni_secrets.domain.catalog import Catalog, SecretType
from tests.contract.conftest import CANARIES, OmniStack, StackFactory

CONTRACT = {
    # family name as parsed (counters without _total): (type, labels)
    "omni_secret_reads": ("counter", {"secret_type", "source", "result"}),
    "omni_secret_failures": ("counter", {"secret_type", "operation", "reason"}),
    "omni_secret_cache_age_seconds": ("gauge", {"secret_type"}),
    "omni_secret_rotation_overdue": ("gauge", {"secret_type"}),
    "omni_secret_rotation_due_timestamp_seconds": ("gauge", {"secret_type"}),
    "omni_secret_break_glass_active": ("gauge", {"secret_type"}),
    "omni_gsm_request_duration_seconds": ("histogram", {"method", "code"}),
    "omni_secret_cache_hydration_duration_seconds": ("histogram", set()),
    "omni_audit_write_failures": ("counter", set()),
    "omni_alerts_sent": ("counter", {"alert", "action", "result"}),
}
PER_TYPE = [name for name, (_, labels) in CONTRACT.items() if "secret_type" in labels]
TYPES = {t.value for t in Catalog().types}


async def scrape(stack: OmniStack) -> dict[str, Metric]:
    """GET /metrics (no auth), check it leaks nothing, and parse it into families by name."""
    response = await stack.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for canary in CANARIES:
        assert canary not in response.text
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def samples(scraped: dict[str, Metric], family: str, name: str) -> list[Sample]:
    return [s for s in scraped[family].samples if s.name == name]


def value(scraped: dict[str, Metric], family: str, name: str, **labels: str) -> float:
    matches = [s.value for s in samples(scraped, family, name) if s.labels == labels]
    assert len(matches) == 1, (name, labels)
    return matches[0]


class TestMetricsEndpoint:
    async def test_every_contract_metric_with_every_type(self, omni_stack: OmniStack) -> None:
        """After a few requests every section-6 metric is listed with its type and labels."""
        await omni_stack.request("GET", "/ops/apex-omni/secrets/status")
        await omni_stack.request("GET", "/apex-omni/account")
        await omni_stack.client.get("/readyz")
        scraped = await scrape(omni_stack)
        for family, (kind, labels) in CONTRACT.items():
            assert family in scraped, family
            assert scraped[family].type == kind, family
            for sample in scraped[family].samples:
                assert set(sample.labels) - {"le"} == labels, (family, sample)
        for family in PER_TYPE:
            seen = {s.labels["secret_type"] for s in scraped[family].samples}
            assert seen == TYPES, family

    async def test_hydration_reads_and_gsm_latency_are_recorded(
        self, omni_stack: OmniStack
    ) -> None:
        """Hydration counted one successful GSM read per type and timed each GSM call."""
        scraped = await scrape(omni_stack)
        for secret_type in TYPES:
            reads = value(
                scraped,
                "omni_secret_reads",
                "omni_secret_reads_total",
                secret_type=secret_type,
                source="gsm",
                result="success",
            )
            assert reads == 1, secret_type
            age = value(
                scraped,
                "omni_secret_cache_age_seconds",
                "omni_secret_cache_age_seconds",
                secret_type=secret_type,
            )
            assert 0 <= age < 60, secret_type
        gsm = samples(
            scraped, "omni_gsm_request_duration_seconds", "omni_gsm_request_duration_seconds_count"
        )
        by_labels = {(s.labels["method"], s.labels["code"]): s.value for s in gsm}
        assert by_labels[("AccessSecretVersion", "OK")] >= len(TYPES)
        assert all(set(s.labels) == {"method", "code"} for s in gsm)
        hydrations = value(
            scraped,
            "omni_secret_cache_hydration_duration_seconds",
            "omni_secret_cache_hydration_duration_seconds_count",
        )
        assert hydrations == 1

    async def test_refresh_and_failures_move_the_counters(self, omni_stack: OmniStack) -> None:
        """A failed and a good refresh show up as a failure by reason and one more read."""
        cache = omni_stack.services.cache
        await cache.stop()  # exact fault counts: no background retry may consume them
        omni_stack.emulator.fail_next("AccessSecretVersion", "PERMISSION_DENIED", 1)
        await cache.refresh([SecretType.ZK_SEEDS])
        await cache.refresh([SecretType.ZK_SEEDS])
        scraped = await scrape(omni_stack)
        assert (
            value(
                scraped,
                "omni_secret_failures",
                "omni_secret_failures_total",
                secret_type="zk_seeds",
                operation="refresh",
                reason="PERMISSION_DENIED",
            )
            == 1
        )
        assert (
            value(
                scraped,
                "omni_secret_reads",
                "omni_secret_reads_total",
                secret_type="zk_seeds",
                source="gsm",
                result="failure",
            )
            == 1
        )
        assert (
            value(
                scraped,
                "omni_secret_reads",
                "omni_secret_reads_total",
                secret_type="zk_seeds",
                source="gsm",
                result="success",
            )
            == 2
        )
        codes = {
            s.labels["code"]
            for s in samples(
                scraped,
                "omni_gsm_request_duration_seconds",
                "omni_gsm_request_duration_seconds_count",
            )
        }
        assert "PERMISSION_DENIED" in codes
        age = value(
            scraped,
            "omni_secret_cache_age_seconds",
            "omni_secret_cache_age_seconds",
            secret_type="zk_seeds",
        )
        assert not math.isinf(age)  # fetched again after the refusal

    async def test_never_fetched_types_report_infinite_age(
        self, omni_stack_factory: StackFactory
    ) -> None:
        """With GSM down since start every type's age is +Inf, which the age alert catches."""
        stack = await omni_stack_factory(emulator_up=False)
        scraped = await scrape(stack)
        ages = samples(scraped, "omni_secret_cache_age_seconds", "omni_secret_cache_age_seconds")
        assert {s.labels["secret_type"] for s in ages} == TYPES
        assert all(math.isinf(s.value) and s.value > 0 for s in ages)
