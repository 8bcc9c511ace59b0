"""RotationService with fakes: locks on failure paths, audit-or-nothing commits, counters, hooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from omni_secrets.adapters.notify import LocalNotifier
from omni_secrets.bootstrap import Overrides, build_services
from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.config import load_settings
from omni_secrets.domain.catalog import Catalog, RotationGroup, SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import (
    AuditUnavailable,
    CandidateVersionInvalid,
    CatalogNotSeeded,
    GsmChanged,
    PreviewNotFound,
    RotationInProgress,
    SecretStoreError,
    UnknownSecretType,
)
from omni_secrets.domain.exchange import ApexAccount, ApexCredentials, SelfTestResult
from omni_secrets.domain.models import OmniSecretAccessEvent
from omni_secrets.observability.alerts import Alert, AlertDispatcher
from omni_secrets.observability.logging import Redactor
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.messagebus import RecordingBus
from omni_secrets.service.rotation.events import (
    CandidateRead,
    PreviewStored,
    RotationCancelled,
    RotationCommitted,
    RotationFailed,
)
from omni_secrets.service.rotation.service import RotationService
from omni_secrets.service.serving.secrets import OmniSecretService
from omni_secrets.testing import FakeSecretStore, InMemoryUnitOfWorkFactory, RecordingAlertSink

CATALOG = Catalog()
V1 = {entry.gsm_secret_id: f"fake-{entry.secret_type.value}-v1" for entry in CATALOG}
V2 = {entry.gsm_secret_id: f"fake-{entry.secret_type.value}-v2" for entry in CATALOG}
API_IDS = [e.gsm_secret_id for e in CATALOG.group_members(RotationGroup.API_CREDENTIALS)]
ZK_IDS = [e.gsm_secret_id for e in CATALOG.group_members(RotationGroup.ZK_KEYS)]
API_TYPES = ["api_key", "api_secret", "api_passphrase"]


class FakeApex:
    """An ``ApexGateway`` accepting a set of API keys; records the keys it was asked about."""

    def __init__(self, accepted: set[str]) -> None:
        self.accepted = accepted
        self.seen: list[str] = []
        self.explode = False
        self.unreachable = False

    async def get_account(self, credentials: ApexCredentials) -> ApexAccount:
        raise NotImplementedError

    async def self_test(self, credentials: ApexCredentials) -> SelfTestResult:
        if self.explode:
            raise RuntimeError("bug in the gateway")
        key = credentials.key.reveal()
        self.seen.append(key)
        if self.unreachable:
            return SelfTestResult(False, None, None, None, None, "ApeX Omni unreachable")
        if key in self.accepted:
            return SelfTestResult(True, 200, None, 3, "fake-account-1", None)
        return SelfTestResult(False, 200, 10002, 3, None, "ApeX refused: wrong API key")


@dataclass
class Rig:
    clock: ManualClock
    store: FakeSecretStore
    db: InMemoryUnitOfWorkFactory
    apex: FakeApex
    sink: RecordingAlertSink
    alerts: AlertDispatcher
    metrics: OmniMetrics
    secrets: OmniSecretService
    service: RotationService
    values_seen: list[str] = field(default_factory=list)
    commits: list[RotationGroup] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    recovery: Any = None  # the JournalRecoveryJob (tests of the commit journal)
    follower: Any = None  # the AliasFollower (tests of following GSM)

    def add_v2(self, ids: list[str]) -> None:
        for secret_id in ids:
            self.store.add_version(secret_id, V2[secret_id])

    def failures(self, secret_type: str, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "omni_secret_failures_total",
            {"secret_type": secret_type, "operation": "rotation", "reason": reason},
        )
        return value or 0.0

    async def lock_holder(self, group: str = "api_credentials") -> set[str | None]:
        async with self.db() as uow:
            rows = await uow.metadata.list_all()
        return {row.preview_id for row in rows if row.rotation_group == group}

    async def preview(self, member: str = "api_key", candidate: str | None = None) -> str:
        view = await self.service.preview(member, candidate, actor="tester", correlation_id="req-1")
        return view.preview_id


class RecordingRedactor(Redactor):
    """The log redactor, remembering every value registered with it (in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def register(self, plaintext: str) -> None:
        self.seen.append(plaintext)
        super().register(plaintext)


class RecordingNotifier(LocalNotifier):
    """The no-op notifier, remembering what was published."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, kind: str) -> None:
        self.published.append(kind)


@pytest.fixture
async def rig(clean_env: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async for built in make_rig():
        yield built


async def make_rig() -> AsyncIterator[Rig]:
    """The rig, built on fakes (run under the ``clean_env`` fixture)."""
    clock = ManualClock()
    store = FakeSecretStore(clock=clock)
    store.seed({secret_id: [value] for secret_id, value in V1.items()})
    db = InMemoryUnitOfWorkFactory(clock=clock)
    await seed_catalog(
        db, CATALOG, project_id="omni-test", store=store, clock=clock, rotation_period_days=365
    )
    sink = RecordingAlertSink()
    apex = FakeApex({V2["apex-omni-api-key"]})
    redactor = RecordingRedactor()
    notifier = RecordingNotifier()
    services = build_services(
        load_settings(
            OMNI_ENVIRONMENT="test",
            GCP_PROJECT_ID="omni-test",
            OMNI_AUTH_HS256_SECRET="fake-hs256-secret-for-unit-tests-0123456789",
            OMNI_ROTATION_PERIOD_DAYS="365",
            OMNI_ROTATION_WARNING_DAYS="30",
            OMNI_CACHE_TTL_SECONDS="300",
            OMNI_CACHE_MAX_STALE_SECONDS="0",
        ),
        Overrides(
            clock=clock,
            secret_store=store,
            uow_factory=db,
            apex=apex,
            alert_sinks=[sink],
            registry=CollectorRegistry(),
            redactor=redactor,
            notifier=notifier,
        ),
    )
    commits: list[RotationGroup] = []
    wake = services.rotation_monitor.wake

    def record_wake() -> None:
        commits.append(RotationGroup.API_CREDENTIALS)
        wake()

    # The rotation service wakes the monitor after each commit: count those wake-ups.
    services.rotation_monitor.wake = record_wake  # type: ignore[method-assign]
    services.alerts.start()
    services.auditor.start()
    await services.secrets.load_metadata()
    await services.cache.hydrate()
    redactor.seen.clear()  # the hydration's values: the tests look at what rotation reads
    yield Rig(
        clock,
        store,
        db,
        apex,
        sink,
        services.alerts,
        services.metrics,
        services.secrets,
        services.rotation,
        redactor.seen,
        commits,
        notifier.published,
        services.journal_recovery,
        services.alias_follower,
    )
    await services.auditor.stop()
    await services.alerts.stop()
    await services.secrets.stop()
    await services.rotation_monitor.stop()


class TestPreview:
    async def test_ready_preview_is_stored_and_locks(self, rig: Rig) -> None:
        """A ready preview is stored open, audited, and holds the group's lock."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        assert await rig.lock_holder() == {preview_id}
        assert await rig.lock_holder("zk_keys") == {None}
        stored = rig.db.db.committed.previews[preview_id]
        assert stored.status == "open"
        assert stored.ready is True
        events = [e for e in rig.db.db.committed.events if e.action == "rotation_preview"]
        assert [e.result for e in events] == ["success"]
        assert rig.apex.seen == [V2["apex-omni-api-key"]]

    async def test_candidate_values_go_to_the_redactor_hook(self, rig: Rig) -> None:
        """Every value read (candidates, and the active payloads whose digests candidates_differ
        compares) is handed to on_value (the log redactor)."""
        rig.add_v2(API_IDS)
        await rig.preview()
        assert sorted(rig.values_seen) == sorted(
            [V2[i] for i in API_IDS] + [V1[i] for i in API_IDS]
        )

    async def test_candidate_reads_are_counted(self, rig: Rig) -> None:
        """Each read (candidate and active payload) counts in omni_secret_reads_total."""
        rig.add_v2(API_IDS)
        before = rig.metrics.registry.get_sample_value(
            "omni_secret_reads_total",
            {"secret_type": "api_secret", "source": "gsm", "result": "success"},
        )
        await rig.preview()
        after = rig.metrics.registry.get_sample_value(
            "omni_secret_reads_total",
            {"secret_type": "api_secret", "source": "gsm", "result": "success"},
        )
        assert (after or 0) - (before or 0) == 2

    async def test_same_payload_candidate_is_not_ready(self, rig: Rig) -> None:
        """A new version holding the active payload again fails candidates_differ."""
        secret_id = CATALOG.entry(SecretType.API_SECRET).gsm_secret_id
        rig.add_v2([i for i in API_IDS if i != secret_id])
        rig.store.add_version(secret_id, V1[secret_id])  # v2 = v1's value again
        preview_id = await rig.preview()
        stored = rig.db.db.committed.previews[preview_id]
        differ = next(c for c in stored.checks if c.name == "candidates_differ")
        assert not differ.ok
        assert (
            "api_secret: candidate v2 has the same payload (SHA-256) as active v1" in differ.detail
        )
        assert not stored.ready

    async def test_unexpected_check_failure_releases_the_lock(self, rig: Rig) -> None:
        """A bug during the checks propagates, but the group is not left locked."""
        rig.add_v2(API_IDS)
        rig.apex.explode = True
        with pytest.raises(RuntimeError):
            await rig.preview()
        assert await rig.lock_holder() == {None}
        rig.apex.explode = False
        await rig.preview()

    async def test_store_failure_releases_the_lock(self, rig: Rig) -> None:
        """When the preview cannot be audited it is not stored, the lock is released, counted."""
        rig.add_v2(API_IDS)
        rig.db.db.fail_audit_appends = True
        with pytest.raises(AuditUnavailable):
            await rig.preview()
        rig.db.db.fail_audit_appends = False
        assert await rig.lock_holder() == {None}
        assert rig.db.db.committed.previews == {}
        assert all(rig.failures(t, "AUDIT_UNAVAILABLE") == 1 for t in API_TYPES)

    async def test_unreadable_candidate_fails_checks_with_reason(self, rig: Rig) -> None:
        """A candidate payload GSM refuses: checksums_valid says why; the self-test cannot run."""
        rig.add_v2(API_IDS)
        rig.store.fail_next("access", "PERMISSION_DENIED")
        view = await rig.service.preview("api_key", None, actor="tester", correlation_id=None)
        checks = {c.name: c for c in view.checks}
        assert view.ready is False
        assert checks["checksums_valid"].ok is False
        assert "PERMISSION_DENIED" in checks["checksums_valid"].detail
        assert checks["apex_self_test"].ok is False
        assert "could not be read" in checks["apex_self_test"].detail
        assert rig.apex.seen == []

    async def test_unreachable_apex_could_not_run(self, rig: Rig) -> None:
        """No answer from ApeX is "could not run", not a refusal of the candidate credentials."""
        rig.add_v2(API_IDS)
        rig.apex.unreachable = True
        view = await rig.service.preview("api_key", None, actor="tester", correlation_id=None)
        check = next(c for c in view.checks if c.name == "apex_self_test")
        assert view.ready is False
        assert check.ok is False
        assert check.detail == "could not run: ApeX Omni unreachable"

    async def test_listing_failure_locks_nothing(self, rig: Rig) -> None:
        """GSM down while listing versions: the error surfaces, nothing is locked, counted."""
        rig.store.fail_next("list_versions", "UNAVAILABLE")
        with pytest.raises(SecretStoreError):
            await rig.preview()
        assert await rig.lock_holder() == {None}
        assert rig.failures("api_key", "UNAVAILABLE") == 1

    async def test_bad_candidate_is_counted_per_member(self, rig: Rig) -> None:
        """A bad candidate version counts one VALIDATION_FAILED per member of the group."""
        with pytest.raises(CandidateVersionInvalid):
            await rig.preview("zk_seeds", "7")
        assert rig.failures("zk_seeds", "VALIDATION_FAILED") == 1
        assert rig.failures("zk_l2_key", "VALIDATION_FAILED") == 1
        assert rig.failures("api_key", "VALIDATION_FAILED") == 0

    async def test_unknown_type_is_not_counted(self, rig: Rig) -> None:
        """An unknown type raises before anything happens and has no series to count in."""
        calls = rig.store.call_count("list_versions")
        with pytest.raises(UnknownSecretType):
            await rig.preview("nope")
        assert rig.store.call_count("list_versions") == calls

    async def test_conflict_then_takeover_after_expiry(self, rig: Rig) -> None:
        """A second preview conflicts until the first one's 15 minutes are over."""
        first = await rig.preview()
        with pytest.raises(RotationInProgress) as conflict:
            await rig.preview("api_secret")
        assert conflict.value.preview_id == first
        assert rig.failures("api_passphrase", "ROTATION_IN_PROGRESS") == 1
        rig.clock.advance(timedelta(minutes=15).total_seconds())
        second = await rig.preview("api_secret")
        assert await rig.lock_holder() == {second}

    async def test_pins_changed_elsewhere_are_served_after_a_preview(self, rig: Rig) -> None:
        """A preview reloads metadata; a pin another replica changed is refreshed, not hidden."""
        rig.add_v2(ZK_IDS)
        now = rig.clock.now()
        async with rig.db() as uow:  # a commit of zk_keys on another replica
            await uow.metadata.record_rotation(
                "zk_keys", {"zk_seeds": "2", "zk_l2_key": "2"}, now, now + timedelta(days=365)
            )
            await uow.commit()
        await rig.preview()
        cached = rig.secrets.cache.get(CATALOG.types[3])
        assert cached is not None
        assert (cached.secret_type.value, cached.version) == ("zk_seeds", "2")

    async def test_unseeded_catalog(self, rig: Rig) -> None:
        """Without metadata rows there is nothing to lock: CatalogNotSeeded."""
        rig.db.db.committed.metadata.clear()
        with pytest.raises(CatalogNotSeeded):
            await rig.preview()


class TestCommit:
    async def test_commit_pins_refreshes_and_notifies(self, rig: Rig) -> None:
        """Commit pins v2, serves it at once, stamps dates, resolves alerts, calls on_commit."""
        rig.alerts.trigger(Alert("rotation_overdue", "api_credentials", "critical", "overdue"))
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        view = await rig.service.commit(preview_id, actor="tester", correlation_id="req-2")
        assert view.due_at - view.last_rotated_at == timedelta(days=365)
        assert [m.active_version for m in view.members] == ["2", "2", "2"]
        rows = {r.secret_type.value: r for r in rig.db.db.committed.metadata.values()}
        assert rows["api_secret"].active_version == "2"
        assert rows["api_secret"].preview_id is None
        assert rows["zk_seeds"].active_version == "1"
        cached = rig.secrets.cache.get(CATALOG.types[0])
        assert cached is not None
        assert cached.version == "2"
        assert rig.db.db.committed.previews[preview_id].status == "committed"
        assert rig.commits == [RotationGroup.API_CREDENTIALS]
        await asyncio.wait_for(_until(lambda: _resolved(rig.sink, "rotation_overdue")), 5)

    async def test_commit_publishes_rotation_once(self, rig: Rig) -> None:
        """Only a committed rotation tells the other replicas; preview and failures do not."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        assert rig.published == []
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        assert rig.published == ["rotation"]
        with pytest.raises(PreviewNotFound):
            await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        assert rig.published == ["rotation"]

    async def test_commit_without_audit_changes_nothing(self, rig: Rig) -> None:
        """No audit row, no commit: pins, lock and preview status stay as they were."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        rig.db.db.fail_audit_appends = True
        with pytest.raises(AuditUnavailable):
            await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        rig.db.db.fail_audit_appends = False
        rows = {r.secret_type.value: r for r in rig.db.db.committed.metadata.values()}
        assert rows["api_key"].active_version == "1"
        assert await rig.lock_holder() == {preview_id}
        assert rig.db.db.committed.previews[preview_id].status == "open"
        assert rig.failures("api_key", "AUDIT_UNAVAILABLE") == 1
        await rig.service.commit(preview_id, actor="tester", correlation_id=None)

    async def test_refresh_failure_after_commit_keeps_the_commit(self, rig: Rig) -> None:
        """GSM failing right after the commit does not undo or fail the commit."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        _fail_access_after_the_moves(rig)
        view = await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        assert view.group == "api_credentials"
        rows = {r.secret_type.value: r for r in rig.db.db.committed.metadata.values()}
        assert rows["api_key"].active_version == "2"

    async def test_concurrent_commits_one_wins(self, rig: Rig) -> None:
        """Two commits of one preview at once: one succeeds, the other is 404 (or 409
        ``GSM_CHANGED`` when it loses in GSM's compare-and-set rather than in the database)."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        results = await asyncio.gather(
            rig.service.commit(preview_id, actor="a", correlation_id=None),
            rig.service.commit(preview_id, actor="b", correlation_id=None),
            return_exceptions=True,
        )
        assert sum(isinstance(r, PreviewNotFound | GsmChanged) for r in results) == 1
        for secret_id in API_IDS:
            assert (await rig.store.get_secret(secret_id)).current == "2"
        await asyncio.wait_for(_until(lambda: len(_commit_events(rig)) == 2), 5)
        assert sorted(e.result for e in _commit_events(rig)) == ["failure", "success"]

    async def test_expired_preview(self, rig: Rig) -> None:
        """A preview past its expiry cannot be committed."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        rig.clock.advance(timedelta(minutes=15).total_seconds())
        with pytest.raises(PreviewNotFound):
            await rig.service.commit(preview_id, actor="tester", correlation_id=None)

    async def test_commit_after_cancel_is_404(self, rig: Rig) -> None:
        """A cancelled preview cannot be committed; cancel releases the lock."""
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        await rig.service.cancel(preview_id, actor="tester", correlation_id=None)
        assert await rig.lock_holder() == {None}
        with pytest.raises(PreviewNotFound):
            await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        with pytest.raises(PreviewNotFound):
            await rig.service.cancel(preview_id, actor="tester", correlation_id=None)


class TestEvents:
    """The service decides and reports on its bus; what follows is the reactions' business."""

    @staticmethod
    def service(rig: Rig, bus: RecordingBus) -> RotationService:
        return RotationService(
            catalog=CATALOG,
            store=rig.store,
            uow_factory=rig.db,
            auditor=Auditor(uow_factory=rig.db),
            apex=rig.apex,
            bus=bus,
            clock=rig.clock,
            period_days=365,
        )

    async def test_reads_come_before_the_stored_preview(self, rig: Rig) -> None:
        """Every payload read is reported (with its value) before the preview is."""
        rig.add_v2(API_IDS)
        bus = RecordingBus()
        view = await self.service(rig, bus).preview("api_key", None, actor="t", correlation_id=None)
        reads = bus.of_type(CandidateRead)
        assert len(reads) == 6
        assert all(read.ok for read in reads)
        assert isinstance(bus.events[-1], PreviewStored)
        assert bus.events[-1] == PreviewStored("api_credentials", view.preview_id, True, ())

    async def test_commit_and_cancel_are_reported_once_committed(self, rig: Rig) -> None:
        """A commit reports its group and new versions, a cancel its preview, a failure its code."""
        rig.add_v2(API_IDS)
        bus = RecordingBus()
        service = self.service(rig, bus)
        first = (await service.preview("api_key", None, actor="t", correlation_id=None)).preview_id
        await service.commit(first, actor="t", correlation_id=None)
        versions = (("api_key", "2"), ("api_secret", "2"), ("api_passphrase", "2"))
        assert bus.of_type(RotationCommitted) == [
            RotationCommitted("api_credentials", first, versions)
        ]
        second = (await service.preview("zk_seeds", "1", actor="t", correlation_id=None)).preview_id
        await service.cancel(second, actor="t", correlation_id=None)
        assert bus.of_type(RotationCancelled) == [RotationCancelled("zk_keys", second)]
        with pytest.raises(PreviewNotFound):
            await service.cancel(second, actor="t", correlation_id="req-9")
        failed = bus.of_type(RotationFailed)
        # No longer open: the failure names no group, so it counts for no type.
        assert [(f.action, f.code, f.secret_types, f.correlation_id) for f in failed] == [
            ("rotation_cancel", "NOT_FOUND", (), "req-9")
        ]
        assert failed[0].context == {"previewId": second}


class TestLogLines:
    """The reactions log today's event names with today's fields."""

    async def test_preview_commit_and_cancel(self, rig: Rig) -> None:
        rig.add_v2(API_IDS)
        with capture_logs() as logs:
            preview_id = await rig.preview()
            await rig.service.commit(preview_id, actor="tester", correlation_id=None)
            other = await rig.preview("zk_seeds", "1")
            await rig.service.cancel(other, actor="tester", correlation_id=None)
        lines = [line for line in logs if line["event"].startswith("rotation.")]
        assert lines == [
            {
                "event": "rotation.previewed",
                "log_level": "info",
                "group": "api_credentials",
                "preview_id": preview_id,
                "ready": True,
                "failed_checks": [],
            },
            {
                "event": "rotation.committed",
                "log_level": "info",
                "group": "api_credentials",
                "preview_id": preview_id,
                "versions": {"api_key": "2", "api_secret": "2", "api_passphrase": "2"},
            },
            {
                "event": "rotation.previewed",
                "log_level": "info",
                "group": "zk_keys",
                "preview_id": other,
                "ready": False,
                "failed_checks": ["candidates_newer", "candidates_differ"],
            },
            {
                "event": "rotation.cancelled",
                "log_level": "info",
                "group": "zk_keys",
                "preview_id": other,
            },
        ]

    async def test_refresh_failure_after_commit(self, rig: Rig) -> None:
        rig.add_v2(API_IDS)
        preview_id = await rig.preview()
        _fail_access_after_the_moves(rig)
        with capture_logs() as logs:
            await rig.service.commit(preview_id, actor="tester", correlation_id=None)
        failed = [line for line in logs if line["event"] == "rotation.refresh_after_commit_failed"]
        assert failed == [
            {
                "event": "rotation.refresh_after_commit_failed",
                "log_level": "warning",
                "group": "api_credentials",
                "secret_types": ["api_key", "api_secret", "api_passphrase"],
            }
        ]


def _fail_access_after_the_moves(rig: Rig) -> None:
    """GSM fails every read that follows the commit's alias moves (the commit's own re-reads
    of the candidates come before them)."""
    move = rig.store.update_aliases
    moved: list[str] = []

    async def then_fail(secret_id: str, aliases: Any, etag: str) -> Any:
        info = await move(secret_id, aliases, etag)
        moved.append(secret_id)
        if len(moved) == len(API_IDS):
            rig.store.fail_next("access", "UNAVAILABLE", count=10)
        return info

    rig.store.update_aliases = then_fail  # type: ignore[method-assign]


def _commit_events(rig: Rig) -> list[OmniSecretAccessEvent]:
    return [e for e in rig.db.db.committed.events if e.action == "rotation_commit"]


def _resolved(sink: RecordingAlertSink, name: str) -> bool:
    return any(e.alert.name == name and e.action == "resolve" for e in sink.delivered)


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


class TestStatusRotationColumn:
    """Status reuses a type's rotation view between calls: it must still change exactly when the
    clock crosses a boundary, a preview opens or ends, or the pins are re-read."""

    @staticmethod
    def column(rig: Rig) -> tuple[str, int | None, bool]:
        rotation = next(
            s.rotation for s in rig.secrets.status_view().secrets if s.secret_type == "api_key"
        )
        return rotation.status, rotation.days_until_due, rotation.preview_open

    async def test_the_column_follows_the_clock_across_each_boundary(self, rig: Rig) -> None:
        assert self.column(rig) == ("ok", 365, False)
        assert self.column(rig) == ("ok", 365, False)  # the reused view
        rig.clock.advance(1e-6)  # right after the 365-day rotation: still 365 (issue 26)
        assert self.column(rig) == ("ok", 365, False)
        rig.clock.advance(timedelta(days=1).total_seconds() - 2e-6)
        assert self.column(rig) == ("ok", 365, False)
        rig.clock.advance(1e-6)  # a whole day later
        assert self.column(rig) == ("ok", 364, False)
        rig.clock.advance(timedelta(days=334).total_seconds() - 1e-6)
        assert self.column(rig) == ("ok", 31, False)
        rig.clock.advance(1e-6)  # the warning window opens: 30 days before the due date
        assert self.column(rig) == ("due_soon", 30, False)
        rig.clock.advance(timedelta(days=30).total_seconds())
        assert self.column(rig) == ("overdue", 0, False)
        rig.clock.advance(1e-6)
        assert self.column(rig) == ("overdue", -1, False)

    async def test_the_column_shows_a_preview_while_it_is_open(self, rig: Rig) -> None:
        assert self.column(rig)[2] is False
        rig.add_v2(API_IDS)
        await rig.preview()
        assert self.column(rig)[2] is True
        rig.clock.advance(timedelta(minutes=15).total_seconds())
        assert self.column(rig)[2] is False


class TestStatusSharing:
    """Status calls of the same millisecond share one view, unless the cache changed between
    them; every call is still audited on its own."""

    @staticmethod
    async def status_rows(rig: Rig) -> int:
        for _ in range(100):  # the batching writer commits in the background
            await asyncio.sleep(0)
        return sum(1 for e in rig.db.db.committed.events if e.action == "status_view")

    async def test_calls_in_one_millisecond_share_the_view_and_each_is_audited(
        self, rig: Rig
    ) -> None:
        before = await self.status_rows(rig)
        first = await rig.secrets.status(actor="tester", correlation_id="req-1")
        second = await rig.secrets.status(actor="tester", correlation_id="req-2")
        assert second is first
        assert await self.status_rows(rig) == before + 2
        rig.clock.advance(0.001)
        third = await rig.secrets.status(actor="tester", correlation_id="req-3")
        assert third is not first
        assert third.secrets[0].age_seconds == pytest.approx(first.secrets[0].age_seconds + 0.001)

    async def test_a_cache_change_is_shown_at_once(self, rig: Rig) -> None:
        first = await rig.secrets.status(actor="tester", correlation_id="req-1")
        rig.add_v2(API_IDS)
        await rig.secrets.cache.refresh([SecretType.API_KEY], force_new=True)
        second = await rig.secrets.status(actor="tester", correlation_id="req-2")
        assert second is not first
        assert second.secrets[0].age_seconds == 0.0
