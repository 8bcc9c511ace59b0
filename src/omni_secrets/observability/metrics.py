"""Every Prometheus metric of omni-secrets (contract section 6), on a registry passed in.

=================================================  =========  ===================================
name                                               type       labels
=================================================  =========  ===================================
``omni_secret_reads_total``                        counter    secret_type, source, result
``omni_secret_failures_total``                     counter    secret_type, operation, reason
``omni_secret_cache_age_seconds``                  gauge      secret_type (+Inf: never fetched)
``omni_secret_rotation_overdue``                   gauge 0/1  secret_type
``omni_secret_rotation_due_timestamp_seconds``     gauge      secret_type
``omni_secret_break_glass_active``                 gauge 0/1  secret_type
``omni_gsm_request_duration_seconds``              histogram  method, code
``omni_secret_cache_hydration_duration_seconds``   histogram  —
``omni_audit_write_failures_total``                counter    —
``omni_audit_events_lost_total``                   counter    —
``omni_alerts_sent_total``                         counter    alert, action, result
``omni_gsm_events_total``                          counter    event_type, result (section 12)
``omni_secret_rotation_candidate_available``       gauge 0/1  secret_type (a newer GSM version)
``omni_secret_alias_drift``                        gauge 0/1  secret_type (current not adopted)
``omni_gsm_events_connected``                      gauge 0/1  subscription (only when configured)
``omni_replica_peers``                             gauge      — (other live replicas)
``omni_clock_offset_seconds``                      gauge      — (host minus database clock)
``omni_integrity_violations_total``                counter    table
``omni_audit_queue_depth``                         gauge      —
``omni_audit_batch_size``                          histogram  —
``omni_secret_enabled_versions``                   gauge      secret_type (NaN until first read)
=================================================  =========  ===================================

``reads`` counts reads from the backing stores (each GSM access, each override decryption), not
in-process cache hits. Every per-type series exists from startup (zero-valued) so dashboards and
absent() alerts see every catalog type. Label values are bounded: catalog types, operation names,
gRPC code names and our own upper-snake reasons; never a secret id with a version.

:class:`OmniMetrics` is built against the registry that ``bootstrap()`` creates, so each app and
each test gets its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

READ_SOURCES = ("gsm", "break_glass")
READ_RESULTS = ("success", "failure")
FAILURE_OPERATIONS = ("hydrate", "refresh", "access", "break_glass", "rotation")
GSM_FAILURE_REASONS = (
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "INTERNAL",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "FAILED_PRECONDITION",
    "CHECKSUM_MISMATCH",
    "VERSION_DISABLED",
    "VERSION_NOT_FOUND",
    "ALIAS_INVALID",
    "SECRET_DELETED",
    "INTEGRITY_VIOLATION",
    "UNKNOWN",
)
BREAK_GLASS_FAILURE_REASONS = (
    "CIPHERTEXT_INVALID",
    "UNKNOWN_KEY_ID",
    "PAYLOAD_MISMATCH",
    "PAYLOAD_EXPIRED",
    "REPLAY_DETECTED",
    "TTL_TOO_LONG",
    "VALIDATION_FAILED",
    "AUDIT_UNAVAILABLE",
)
ROTATION_FAILURE_REASONS = (
    "ROTATION_IN_PROGRESS",
    "PREVIEW_NOT_READY",
    "VALIDATION_FAILED",
    "UNAVAILABLE",
    "AUDIT_UNAVAILABLE",
)
_REASONS_BY_OPERATION = {
    "hydrate": GSM_FAILURE_REASONS,
    "refresh": GSM_FAILURE_REASONS,
    "access": GSM_FAILURE_REASONS,
    "break_glass": BREAK_GLASS_FAILURE_REASONS,
    "rotation": ROTATION_FAILURE_REASONS,
}
ALERT_NAMES = (
    "gsm_failures",
    "rotation_due_soon",
    "rotation_overdue",
    "break_glass_active",
    "audit_write_failures",
    "active_version_revoked",
    "rotation_requested",
    "integrity_violation",
    "alias_drift",
)
# GSM's Pub/Sub event types (contract section 12); anything else is counted as ``OTHER``.
GSM_EVENT_TYPES = (
    "SECRET_CREATE",
    "SECRET_UPDATE",
    "SECRET_DELETE",
    "SECRET_VERSION_ADD",
    "SECRET_VERSION_ENABLE",
    "SECRET_VERSION_DISABLE",
    "SECRET_VERSION_DESTROY",
    "SECRET_VERSION_DESTROY_SCHEDULED",
    "SECRET_ROTATE",
    "TOPIC_CONFIGURED",
    "OTHER",
)
# applied: acted on; ignored: valid, nothing to do; rejected: malformed, foreign or wrong
# format; duplicate: seen before; unconfirmed: GSM contradicts the event (nothing changed);
# failed: acting failed (the message is redelivered).
GSM_EVENT_RESULTS = ("applied", "ignored", "rejected", "duplicate", "unconfirmed", "failed")
INTEGRITY_TABLES = (
    "omni_secret_metadata",
    "omni_break_glass_overrides",
    "omni_rotation_previews",
    "omni_commit_journal",
)
AUDIT_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
ALERT_ACTIONS = ("trigger", "resolve")
ALERT_RESULTS = ("success", "failure", "dropped")
GSM_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HYDRATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class OmniMetrics:
    """The metric objects, registered on ``registry`` with every catalog series pre-created.

    The families are built by area, in registration order, which is the order the exposition
    lists them in (the byte-for-byte exposition test pins it). The ``count_*``, ``observe_*``,
    ``show_*`` and ``track_*`` methods are the hooks the composition root hands to services and
    adapters, so that label folding and series creation stay here.

    Args:
        registry: where to register (a fresh ``CollectorRegistry`` per app/test).
        secret_types: the catalog's type names.
    """

    reads: Counter
    failures: Counter
    cache_age: Gauge
    rotation_overdue: Gauge
    rotation_due_timestamp: Gauge
    break_glass_active: Gauge
    gsm_request_duration: Histogram
    hydration_duration: Histogram
    audit_write_failures: Counter
    audit_events_lost: Counter
    integrity_violations: Counter
    audit_queue_depth: Gauge
    audit_batch_size: Histogram
    alerts_sent: Counter
    gsm_events: Counter
    rotation_candidate_available: Gauge
    alias_drift: Gauge
    gsm_events_connected: Gauge
    replica_peers: Gauge
    clock_offset: Gauge
    enabled_versions: Gauge

    def __init__(self, registry: CollectorRegistry, secret_types: Iterable[str]) -> None:
        self.registry = registry
        self.secret_types = tuple(secret_types)
        # Registration order is exposition order.
        self._register_secret_metrics(registry)
        self._register_latency_metrics(registry)
        self._register_audit_metrics(registry)
        self._register_alert_metrics(registry)
        self._register_event_and_replica_metrics(registry)
        self._register_version_metrics(registry)
        self._precreate()

    def _register_secret_metrics(self, registry: CollectorRegistry) -> None:
        """Per catalog type: reads, failures, cache age, rotation and break-glass state."""
        self.reads = Counter(
            "omni_secret_reads",
            "Reads from the backing stores (GSM accesses, override decryptions).",
            ["secret_type", "source", "result"],
            registry=registry,
        )
        self.failures = Counter(
            "omni_secret_failures",
            "Failures by secret type, operation and reason (gRPC code or our own).",
            ["secret_type", "operation", "reason"],
            registry=registry,
        )
        self.cache_age = Gauge(
            "omni_secret_cache_age_seconds",
            "Seconds since the last successful fetch of the type (+Inf if never fetched).",
            ["secret_type"],
            registry=registry,
        )
        self.rotation_overdue = Gauge(
            "omni_secret_rotation_overdue",
            "1 when the type's rotation is overdue, else 0.",
            ["secret_type"],
            registry=registry,
        )
        self.rotation_due_timestamp = Gauge(
            "omni_secret_rotation_due_timestamp_seconds",
            "Unix time at which the type's rotation falls due.",
            ["secret_type"],
            registry=registry,
        )
        self.break_glass_active = Gauge(
            "omni_secret_break_glass_active",
            "1 while a break-glass override serves the type, else 0.",
            ["secret_type"],
            registry=registry,
        )

    def _register_latency_metrics(self, registry: CollectorRegistry) -> None:
        """GSM call and whole-catalog hydration durations."""
        self.gsm_request_duration = Histogram(
            "omni_gsm_request_duration_seconds",
            "Duration of each GSM call attempt by RPC method and gRPC code.",
            ["method", "code"],
            buckets=GSM_DURATION_BUCKETS,
            registry=registry,
        )
        self.hydration_duration = Histogram(
            "omni_secret_cache_hydration_duration_seconds",
            "Wall time of a whole-catalog cache hydration.",
            buckets=HYDRATION_BUCKETS,
            registry=registry,
        )

    def _register_audit_metrics(self, registry: CollectorRegistry) -> None:
        """The audit writer's failures, queue and batches, and refused (forged) rows."""
        self.audit_write_failures = Counter(
            "omni_audit_write_failures",
            "Audit events that could not be written.",
            registry=registry,
        )
        self.audit_events_lost = Counter(
            "omni_audit_events_lost",
            "Audit events accepted and then never written (a full buffer on a background write, "
            "or still held when the process stopped).",
            registry=registry,
        )
        self.integrity_violations = Counter(
            "omni_integrity_violations",
            "Rows refused because their integrity MAC is missing, wrong or made by a retired key, "
            "or because a later audit event supersedes them (replayed), or (overrides) their "
            "window exceeds 30 minutes; once per row and problem per process.",
            ["table"],
            registry=registry,
        )
        self.audit_queue_depth = Gauge(
            "omni_audit_queue_depth",
            "Audit events accepted but not yet committed (held in memory while the DB is down).",
            registry=registry,
        )
        self.audit_batch_size = Histogram(
            "omni_audit_batch_size",
            "Audit events written per transaction by the batching writer.",
            buckets=AUDIT_BATCH_BUCKETS,
            registry=registry,
        )

    def _register_alert_metrics(self, registry: CollectorRegistry) -> None:
        """Alert deliveries, by outcome."""
        self.alerts_sent = Counter(
            "omni_alerts_sent",
            "Alert deliveries by alert, action and outcome.",
            ["alert", "action", "result"],
            registry=registry,
        )

    def _register_event_and_replica_metrics(self, registry: CollectorRegistry) -> None:
        """Section 12: GSM event notifications, rotation candidates, the subscriber, peers."""
        self.gsm_events = Counter(
            "omni_gsm_events",
            "GSM event notifications received over Pub/Sub, by event type and what came of them.",
            ["event_type", "result"],
            registry=registry,
        )
        self.rotation_candidate_available = Gauge(
            "omni_secret_rotation_candidate_available",
            "1 when GSM holds a version newer than the active one (a rotation candidate).",
            ["secret_type"],
            registry=registry,
        )
        self.alias_drift = Gauge(
            "omni_secret_alias_drift",
            "1 while GSM's current alias names a version this replica does not serve yet "
            "(a group not adopted: incomplete, not enabled, or its checks failed).",
            ["secret_type"],
            registry=registry,
        )
        # Labelled by the (one) subscription so the series exists only when events are on: an
        # alert on 0 then means "configured but not connected", never "switched off".
        self.gsm_events_connected = Gauge(
            "omni_gsm_events_connected",
            "1 while the Pub/Sub subscriber for GSM events is connected, else 0.",
            ["subscription"],
            registry=registry,
        )
        self.replica_peers = Gauge(
            "omni_replica_peers",
            "Other live replicas seen in the replica registry.",
            registry=registry,
        )
        self.clock_offset = Gauge(
            "omni_clock_offset_seconds",
            "This replica's clock minus the database's, measured at every heartbeat "
            "(positive: ahead). Shared times come from the database's clock.",
            registry=registry,
        )

    def _register_version_metrics(self, registry: CollectorRegistry) -> None:
        """Section 15: how many versions of each catalog secret are ENABLED in GSM."""
        # Retirement leaves current and previous ENABLED; more than 2 for 30 days is the
        # Prometheus alert OmniSecretsStaleVersionsEnabled (stale_versions_enabled). NaN until a
        # refresh has read the versions: "not known" is not "none".
        self.enabled_versions = Gauge(
            "omni_secret_enabled_versions",
            "Versions of the type's GSM secret that are ENABLED, as the last refresh read them.",
            ["secret_type"],
            registry=registry,
        )

    def _precreate(self) -> None:
        for secret_type in self.secret_types:
            for source in READ_SOURCES:
                for result in READ_RESULTS:
                    self.reads.labels(secret_type, source, result)
            for operation, reasons in _REASONS_BY_OPERATION.items():
                for reason in reasons:
                    self.failures.labels(secret_type, operation, reason)
            self.cache_age.labels(secret_type).set(math.inf)
            self.rotation_overdue.labels(secret_type).set(0)
            self.rotation_due_timestamp.labels(secret_type).set(0)
            self.break_glass_active.labels(secret_type).set(0)
            self.rotation_candidate_available.labels(secret_type).set(0)
            self.alias_drift.labels(secret_type).set(0)
            self.enabled_versions.labels(secret_type).set(math.nan)
        for event_type in GSM_EVENT_TYPES:
            for outcome in GSM_EVENT_RESULTS:
                self.gsm_events.labels(event_type, outcome)
        for table in INTEGRITY_TABLES:
            self.integrity_violations.labels(table)
        for alert in ALERT_NAMES:
            for action in ALERT_ACTIONS:
                for result in ALERT_RESULTS:
                    self.alerts_sent.labels(alert, action, result)

    def track_cache_age(self, age_of: Callable[[str], float]) -> None:
        """Compute ``omni_secret_cache_age_seconds`` at scrape time from ``age_of(type)``.

        ``age_of`` returns seconds since the type's last successful fetch, or ``math.inf``.
        """
        for secret_type in self.secret_types:
            self.cache_age.labels(secret_type).set_function(_bind(age_of, secret_type))

    def track_enabled_versions(self, count_of: Callable[[str], int | None]) -> None:
        """Compute ``omni_secret_enabled_versions`` at scrape time from ``count_of(type)``.

        ``count_of`` returns how many versions the last refresh saw ENABLED, or None before any
        (exposed as NaN).
        """
        for secret_type in self.secret_types:
            self.enabled_versions.labels(secret_type).set_function(
                _bind_count(count_of, secret_type)
            )

    def record_failure(self, secret_type: str, operation: str, reason: str) -> None:
        """Count one failure; an unexpected reason is folded into ``UNKNOWN`` (bounded labels)."""
        known = _REASONS_BY_OPERATION.get(operation, ())
        self.failures.labels(secret_type, operation, reason if reason in known else "UNKNOWN").inc()

    def observe_gsm_call(self, method: str, code: str, duration_seconds: float) -> None:
        """Record one GSM call attempt (the GSM client's per-call hook)."""
        self.gsm_request_duration.labels(method, code).observe(duration_seconds)

    def count_alert(self, alert: str, action: str, result: str) -> None:
        """Count one alert delivery outcome (the alert dispatcher's ``on_outcome``)."""
        self.alerts_sent.labels(alert, action, result).inc()

    def track_audit_queue(self, depth: Callable[[], float]) -> None:
        """Compute ``omni_audit_queue_depth`` at scrape time from ``depth()`` (events pending)."""
        self.audit_queue_depth.set_function(depth)

    def count_integrity_violation(self, table: str) -> None:
        """Count one row refused by the integrity check of ``table``."""
        self.integrity_violations.labels(table).inc()

    def show_rotation_candidate(self, secret_type: str, available: bool) -> None:
        """Set the type's ``omni_secret_rotation_candidate_available`` to 1 or 0."""
        self.rotation_candidate_available.labels(secret_type).set(1 if available else 0)

    def show_alias_drift(self, secret_type: str, drifting: bool) -> None:
        """Set the type's ``omni_secret_alias_drift`` to 1 or 0."""
        self.alias_drift.labels(secret_type).set(1 if drifting else 0)

    def count_gsm_event(self, event_type: str | None, result: str) -> None:
        """Count one GSM event notification; an unknown or missing type counts as ``OTHER``."""
        self.gsm_events.labels(gsm_event_label(event_type), result).inc()

    def track_gsm_events_connection(self, subscription: str) -> Callable[[bool], None]:
        """Create ``subscription``'s connected series at 0; return the setter for the subscriber.

        The series exists from the moment events are configured, so an alert on 0 fires for a
        subscriber that never connects.
        """
        gauge = self.gsm_events_connected.labels(subscription)
        gauge.set(0)
        return lambda connected: gauge.set(1 if connected else 0)


def gsm_event_label(event_type: str | None) -> str:
    """The ``event_type`` label of a GSM event type (bounded: unknown ones become ``OTHER``)."""
    return event_type if event_type in GSM_EVENT_TYPES else "OTHER"


def _bind(age_of: Callable[[str], float], secret_type: str) -> Callable[[], float]:
    return lambda: age_of(secret_type)


def _bind_count(count_of: Callable[[str], int | None], secret_type: str) -> Callable[[], float]:
    def value() -> float:
        count = count_of(secret_type)
        return math.nan if count is None else float(count)

    return value
