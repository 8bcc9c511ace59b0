"""``BreakGlassService`` and the expiry job, with in-memory fakes and a manual clock."""

from __future__ import annotations

import ast
import base64
import secrets as pysecrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from omni_secrets.domain import break_glass
from omni_secrets.domain.break_glass import BreakGlassKeyPair, load_key_pair, seal_payload
from omni_secrets.domain.cache import CacheSource, OmniSecretCache
from omni_secrets.domain.catalog import Catalog, RotationGroup, SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import (
    AuditUnavailable,
    BreakGlassDisabled,
    CiphertextInvalid,
    InvalidInput,
    OverrideNotFound,
    PayloadExpired,
    PayloadMismatch,
    ReplayDetected,
    TtlTooLong,
    UnknownKeyId,
    UnknownSecretType,
)
from omni_secrets.domain.models import OmniSecretMetadata
from omni_secrets.domain.observations import (
    ObserverFanOut,
    OperationFailed,
    SecretRead,
    ServiceEvent,
    ValueRetired,
    ValueSeen,
)
from omni_secrets.domain.secret_store import AccessedSecret
from omni_secrets.domain.values import SecretValue
from omni_secrets.jobs.break_glass_expiry import BreakGlassExpiryJob
from omni_secrets.observability.alert_catalog import BREAK_GLASS_ALERT
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.break_glass import (
    ActivatedOverride,
    BreakGlassService,
    break_glass_reactions,
    build_break_glass,
)
from omni_secrets.service.break_glass.events import (
    OverrideActivated,
    OverrideCommitted,
    OverridesChanged,
)
from omni_secrets.service.messagebus import Dispatcher, RecordingBus
from omni_secrets.testing import InMemoryDatabase, InMemoryUnitOfWorkFactory, RecordingAlertSink

OVERRIDE_VALUE = "fake-break-glass-value-5e1d"
ALERT_KEY = f"omni-secrets/test/{BREAK_GLASS_ALERT}/api_secret"


def make_pair() -> tuple[BreakGlassKeyPair, str]:
    private_b64, public_b64, _ = break_glass.generate_private_key()
    return load_key_pair(public_b64, private_b64), public_b64


@dataclass
class Rig:
    """A break-glass service over an in-memory database, a real cache and a manual clock."""

    clock: ManualClock
    db: InMemoryDatabase
    auditor: Auditor
    alerts: AlertDispatcher
    sink: RecordingAlertSink
    pair: BreakGlassKeyPair | None
    public_b64: str
    cache: OmniSecretCache = field(init=False)
    service: BreakGlassService = field(init=False)
    reads: list[tuple[str, str, bool]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    values: list[SecretValue] = field(default_factory=list)
    forgotten: list[SecretValue] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    publish_fails: bool = False

    def __post_init__(self) -> None:
        self.restart()

    def restart(self, pair: BreakGlassKeyPair | str | None = "same") -> None:
        """A fresh cache and service over the same database (a process restart)."""
        if pair != "same":
            assert not isinstance(pair, str)
            self.pair = pair

        async def fetch(secret_type: SecretType) -> AccessedSecret:
            return AccessedSecret(
                f"apex-omni-{secret_type.value}", "1", SecretValue(f"fake-gsm-{secret_type}")
            )

        self.cache = OmniSecretCache(
            catalog=Catalog(),
            fetch=fetch,
            ttl_seconds=3600,
            max_stale_seconds=0,
            clock=self.clock,
        )
        reactions = break_glass_reactions(
            observer=self, alerts=self.alerts, auditor=self.auditor, publish=self.publish
        )
        self.service = build_break_glass(
            key_pair=self.pair,
            uow_factory=InMemoryUnitOfWorkFactory(self.db, self.clock),
            auditor=self.auditor,
            cache=self.cache,
            clock=self.clock,
            bus=Dispatcher([reactions]),
        )

    def other_replica(self) -> BreakGlassService:
        """Another replica's service over the same database and alerts, observed by no one."""
        reactions = break_glass_reactions(
            observer=ObserverFanOut([]), alerts=self.alerts, auditor=self.auditor
        )
        return build_break_glass(
            key_pair=self.pair,
            uow_factory=InMemoryUnitOfWorkFactory(self.db, self.clock),
            auditor=self.auditor,
            cache=OmniSecretCache(
                catalog=Catalog(),
                fetch=_never,
                ttl_seconds=60,
                max_stale_seconds=0,
                clock=self.clock,
            ),
            clock=self.clock,
            bus=Dispatcher([reactions]),
        )

    def on_event(self, event: ServiceEvent) -> None:
        """The rig is the service's observer: it records reads, failures and values."""
        match event:
            case SecretRead(secret_type=t, source=source, ok=ok):
                self.reads.append((t, source, ok))
            case OperationFailed(secret_type=t, reason=reason):
                self.failures.append((t, reason))
            case ValueSeen(value=value):
                self.values.append(value)
            case ValueRetired(value=value):
                self.forgotten.append(value)

    async def publish(self, kind: str) -> None:
        if self.publish_fails:
            raise RuntimeError("notify down")
        self.published.append(kind)

    def seal(
        self,
        value: str = OVERRIDE_VALUE,
        *,
        secret_type: str = "api_secret",  # noqa: S107 - a type name, not a secret
        issued_at: datetime | None = None,
        public_b64: str | None = None,
        nonce: bytes | None = None,
    ) -> str:
        return seal_payload(
            public_b64 or self.public_b64,
            secret_type=secret_type,
            value=value,
            issued_at=issued_at or self.clock.now(),
            nonce=nonce,
        )

    async def activate(
        self,
        ciphertext: str | None = None,
        *,
        secret_type: str = "api_secret",  # noqa: S107 - a type name, not a secret
        ttl_seconds: int = 600,
        key_id: str | None = None,
        reason: str = "GSM outage INC-1",
        actor: str = "alice",
    ) -> ActivatedOverride:
        return await self.service.activate(
            secret_type=secret_type,
            key_id=key_id if key_id is not None else (self.pair.key_id if self.pair else "none"),
            ciphertext=ciphertext if ciphertext is not None else self.seal(secret_type=secret_type),
            ttl_seconds=ttl_seconds,
            reason=reason,
            ticket="INC-1",
            actor=actor,
            correlation_id="req-1",
        )

    def actions(self) -> list[tuple[str, str, str]]:
        return [(e.action, e.result, e.actor) for e in self.db.committed.events]

    def served(self, secret_type: SecretType = SecretType.API_SECRET) -> str | None:
        entry = self.cache.get(secret_type)
        return entry.value.reveal() if entry else None


def seed_metadata(db: InMemoryDatabase, clock: ManualClock) -> None:
    now = clock.now()
    for entry in Catalog():
        db.committed.metadata[entry.secret_type.value] = OmniSecretMetadata(
            secret_type=entry.secret_type,
            gsm_secret_id=entry.gsm_secret_id,
            gsm_project_id="omni-test",
            required=entry.required,
            rotation_group=RotationGroup(entry.rotation_group),
            active_version="1",
            last_rotated_at=now,
            rotation_due_at=now + timedelta(days=365),
            created_at=now,
            updated_at=now,
        )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock()
    db = InMemoryDatabase()
    seed_metadata(db, clock)
    auditor = Auditor(uow_factory=InMemoryUnitOfWorkFactory(db, clock))
    auditor.start()
    sink = RecordingAlertSink()
    alerts = AlertDispatcher("test", [sink], clock)
    alerts.start()
    pair, public_b64 = make_pair()
    made = Rig(clock, db, auditor, alerts, sink, pair, public_b64)
    await made.cache.hydrate()
    yield made
    await alerts.stop()
    await auditor.stop()


class TestActivate:
    async def test_serves_the_override_after_storing_ciphertext_and_audit(self, rig: Rig) -> None:
        """Activation stores ciphertext only, audits, then serves the value instead of GSM."""
        ciphertext = rig.seal()
        activated = await rig.activate(ciphertext)

        assert activated.expires_at == rig.clock.now() + timedelta(seconds=600)
        assert rig.served() == OVERRIDE_VALUE
        assert rig.cache.get(SecretType.API_SECRET).source is CacheSource.BREAK_GLASS  # type: ignore[union-attr]
        stored = rig.db.committed.overrides[activated.override_id]
        assert stored.ciphertext == ciphertext
        assert OVERRIDE_VALUE not in stored.model_dump_json()
        meta = rig.db.committed.metadata["api_secret"]
        assert meta.break_glass_expires_at == activated.expires_at
        assert rig.actions() == [("break_glass_activate", "success", "alice")]
        event = rig.db.committed.events[0]
        assert event.details["overrideId"] == activated.override_id
        assert OVERRIDE_VALUE not in event.model_dump_json()
        assert rig.reads == [("api_secret", "break_glass", True)]
        assert [v.reveal() for v in rig.values] == [OVERRIDE_VALUE]

    async def test_raises_the_critical_alert_naming_the_type_only(self, rig: Rig) -> None:
        """The break_glass_active alert is critical, about the type, and carries no value."""
        await rig.activate()
        await rig.alerts.flush()
        [event] = rig.sink.delivered
        assert (event.action, event.alert.name, event.alert.subject) == (
            "trigger",
            BREAK_GLASS_ALERT,
            "api_secret",
        )
        assert event.alert.severity == "critical"
        assert OVERRIDE_VALUE not in repr(event)

    async def test_view_shows_the_active_override(self, rig: Rig) -> None:
        """view() reports id, actor, window and reason of the served override."""
        activated = await rig.activate(actor="bob", reason="GSM down")
        view = rig.service.view(SecretType.API_SECRET)
        assert view.active is True
        assert view.override_id == activated.override_id
        assert (view.actor, view.reason) == ("bob", "GSM down")
        assert view.expires_at == activated.expires_at
        assert rig.service.view(SecretType.API_KEY).active is False

    async def test_disabled_without_a_key_pair(self, rig: Rig) -> None:
        """Without keys, activation and the public key raise BreakGlassDisabled; nothing audited."""
        rig.restart(pair=None)
        with pytest.raises(BreakGlassDisabled):
            await rig.activate(key_id="0" * 16, ciphertext="AAAA")
        with pytest.raises(BreakGlassDisabled):
            rig.service.public_key()
        assert rig.actions() == []

    async def test_public_key(self, rig: Rig) -> None:
        """public_key() gives the key id, base64 key and the algorithm name."""
        assert rig.pair is not None
        info = rig.service.public_key()
        assert (info.key_id, info.public_key) == (rig.pair.key_id, rig.public_b64)
        assert info.algorithm == "x25519-sealed-box"


class TestRejections:
    @pytest.mark.parametrize(
        ("ttl", "error", "code"),
        [(1801, TtlTooLong, "TTL_TOO_LONG"), (59, InvalidInput, "VALIDATION_FAILED")],
    )
    async def test_ttl_out_of_bounds(
        self, rig: Rig, ttl: int, error: type[Exception], code: str
    ) -> None:
        """A TTL outside 60..1800 s is refused, audited as denied and counted."""
        with pytest.raises(error):
            await rig.activate(ttl_seconds=ttl)
        assert rig.actions() == [("break_glass_rejected", "denied", "alice")]
        assert rig.db.committed.events[0].details["code"] == code
        assert rig.failures == [("api_secret", code)]
        assert rig.db.committed.overrides == {}

    async def test_unknown_type(self, rig: Rig) -> None:
        """An unknown type is refused and audited without a type (no metric label for it)."""
        with pytest.raises(UnknownSecretType):
            await rig.activate(secret_type="nope", ciphertext=rig.seal())
        [event] = rig.db.committed.events
        assert (event.action, event.secret_type, event.details["code"]) == (
            "break_glass_rejected",
            None,
            "VALIDATION_FAILED",
        )
        assert rig.failures == []

    async def test_empty_reason(self, rig: Rig) -> None:
        """A blank reason is refused."""
        with pytest.raises(InvalidInput):
            await rig.activate(reason="   ")
        assert rig.actions() == [("break_glass_rejected", "denied", "alice")]

    @pytest.mark.parametrize("reason", ["outage\x00", "outage \ud800"])
    async def test_unstorable_text_is_refused(self, rig: Rig, reason: str) -> None:
        """A NUL or a lone surrogate in the reason is VALIDATION_FAILED, not a database error."""
        with pytest.raises(InvalidInput):
            await rig.activate(reason=reason)
        assert rig.db.committed.events[0].details["code"] == "VALIDATION_FAILED"
        assert rig.db.committed.overrides == {}

    async def test_payload_problems_map_to_their_errors(self, rig: Rig) -> None:
        """Wrong key id, other key, tampering, type mismatch, stale or future issuedAt: refused."""
        _, other_public = make_pair()
        good = rig.seal()
        tampered = bytearray(base64.b64decode(good))
        tampered[-1] ^= 1
        now = rig.clock.now()
        cases: list[tuple[type[Exception], str, dict[str, object]]] = [
            (UnknownKeyId, "UNKNOWN_KEY_ID", {"key_id": "0" * 16}),
            (CiphertextInvalid, "CIPHERTEXT_INVALID", {"ciphertext": "not base64!"}),
            (
                CiphertextInvalid,
                "CIPHERTEXT_INVALID",
                {"ciphertext": base64.b64encode(bytes(tampered)).decode()},
            ),
            (
                CiphertextInvalid,
                "CIPHERTEXT_INVALID",
                {"ciphertext": rig.seal(public_b64=other_public)},
            ),
            (PayloadMismatch, "PAYLOAD_MISMATCH", {"ciphertext": rig.seal(secret_type="api_key")}),
            (
                PayloadExpired,
                "PAYLOAD_EXPIRED",
                {"ciphertext": rig.seal(issued_at=now - timedelta(minutes=6))},
            ),
            (
                PayloadExpired,
                "PAYLOAD_EXPIRED",
                {"ciphertext": rig.seal(issued_at=now + timedelta(minutes=2))},
            ),
        ]
        for error, code, kwargs in cases:
            with pytest.raises(error) as info:
                await rig.activate(**kwargs)  # type: ignore[arg-type]
            assert info.value.code == code  # type: ignore[attr-defined]
        assert [e.details["code"] for e in rig.db.committed.events] == [c for _, c, _ in cases]
        assert {e.action for e in rig.db.committed.events} == {"break_glass_rejected"}
        assert [reason for _, reason in rig.failures] == [c for _, c, _ in cases]
        # Every case but the unknown key id tried a decryption, and none succeeded.
        assert rig.reads == [("api_secret", "break_glass", False)] * (len(cases) - 1)
        assert rig.db.committed.overrides == {}
        assert rig.served() == "fake-gsm-api_secret"

    async def test_replay_is_a_conflict(self, rig: Rig) -> None:
        """The same sealed payload twice: the second is REPLAY_DETECTED, audited as conflict."""
        ciphertext = rig.seal()
        first = await rig.activate(ciphertext)
        with pytest.raises(ReplayDetected):
            await rig.activate(ciphertext)
        assert rig.actions()[-1] == ("break_glass_rejected", "conflict", "alice")
        assert rig.db.committed.events[-1].details["code"] == "REPLAY_DETECTED"
        assert list(rig.db.committed.overrides) == [first.override_id]
        assert rig.failures == [("api_secret", "REPLAY_DETECTED")]

    async def test_rejection_stands_when_its_audit_row_fails(self, rig: Rig) -> None:
        """With the audit down a rejection is still a rejection (its row is best effort)."""
        rig.db.fail_audit_appends = True
        with pytest.raises(TtlTooLong):
            await rig.activate(ttl_seconds=4000)
        assert rig.db.committed.events == []


class TestAuditFailClosed:
    async def test_nothing_is_activated_when_the_audit_fails(self, rig: Rig) -> None:
        """An audit append failure rolls everything back: no row, no window, nothing served."""
        rig.db.fail_audit_appends = True
        with pytest.raises(AuditUnavailable):
            await rig.activate()
        assert rig.db.committed.overrides == {}
        assert rig.db.committed.nonces == {}
        assert rig.db.committed.metadata["api_secret"].break_glass_expires_at is None
        assert rig.served() == "fake-gsm-api_secret"
        assert rig.service.view(SecretType.API_SECRET).active is False
        assert rig.failures == [("api_secret", "AUDIT_UNAVAILABLE")]
        await rig.alerts.flush()
        assert rig.sink.delivered == []

    async def test_database_down_is_audit_unavailable(self, rig: Rig) -> None:
        """A database that cannot be reached fails the activation closed, as AUDIT_UNAVAILABLE."""
        rig.db.unavailable = True
        with pytest.raises(AuditUnavailable):
            await rig.activate()
        assert rig.served() == "fake-gsm-api_secret"


class TestRevoke:
    async def test_revoke_reverts_to_gsm_audits_and_resolves(self, rig: Rig) -> None:
        """Revoke ends the override in the DB, audits it, reverts to GSM and resolves the alert."""
        activated = await rig.activate()
        rig.clock.advance(30)
        await rig.service.revoke(activated.override_id, actor="carol", correlation_id="req-2")

        stored = rig.db.committed.overrides[activated.override_id]
        assert (stored.end_reason, stored.ended_at) == ("revoked", rig.clock.now())
        assert rig.db.committed.metadata["api_secret"].break_glass_expires_at is None
        assert rig.actions()[-1] == ("break_glass_revoke", "success", "carol")
        assert rig.db.committed.events[-1].details["remainingSeconds"] == 570
        assert rig.served() == "fake-gsm-api_secret"
        assert rig.service.view(SecretType.API_SECRET).active is False
        await rig.alerts.flush()
        assert [e.action for e in rig.sink.delivered] == ["trigger", "resolve"]
        assert ALERT_KEY not in rig.alerts.active()

    async def test_unknown_or_ended_is_not_found(self, rig: Rig) -> None:
        """Revoking an unknown id, or the same override twice, raises OverrideNotFound."""
        for unknown in ("nope", "bad\x00id", "x" * 65, ""):
            with pytest.raises(OverrideNotFound):
                await rig.service.revoke(unknown, actor="carol", correlation_id=None)
        activated = await rig.activate()
        await rig.service.revoke(activated.override_id, actor="carol", correlation_id=None)
        with pytest.raises(OverrideNotFound):
            await rig.service.revoke(activated.override_id, actor="carol", correlation_id=None)

    async def test_past_its_expiry_is_not_found(self, rig: Rig) -> None:
        """An override already past its expiry cannot be revoked (it has ended)."""
        activated = await rig.activate(ttl_seconds=60)
        rig.clock.advance(61)
        with pytest.raises(OverrideNotFound):
            await rig.service.revoke(activated.override_id, actor="carol", correlation_id=None)

    async def test_revoke_does_not_fail_closed_on_the_audit(self, rig: Rig) -> None:
        """With the audit failing a revoke still ends the override; its row is written later."""
        activated = await rig.activate()
        rig.db.fail_audit_appends = True
        await rig.service.revoke(activated.override_id, actor="carol", correlation_id=None)
        assert rig.db.committed.overrides[activated.override_id].end_reason == "revoked"
        assert rig.served() == "fake-gsm-api_secret"
        assert [a for a, _, _ in rig.actions()] == ["break_glass_activate"]
        rig.db.fail_audit_appends = False
        await rig.auditor.stop()  # drains the background queue
        assert rig.actions()[-1] == ("break_glass_revoke", "success", "carol")

    async def test_older_override_takes_over_when_the_newer_is_revoked(self, rig: Rig) -> None:
        """Two overrides of one type: the newest is served; revoking it serves the older one."""
        await rig.activate(rig.seal("fake-older-value"))
        rig.clock.advance(5)
        newer = await rig.activate(rig.seal("fake-newer-value"))
        assert rig.served() == "fake-newer-value"
        await rig.service.revoke(newer.override_id, actor="carol", correlation_id=None)
        assert rig.served() == "fake-older-value"
        assert rig.db.committed.metadata["api_secret"].break_glass_expires_at is not None
        assert ALERT_KEY in rig.alerts.active()


class TestExpiry:
    async def test_expire_due_ends_audits_and_resolves(self, rig: Rig) -> None:
        """Past its expiry an override is ended as expired, audited by system, alert resolved."""
        activated = await rig.activate(ttl_seconds=60)
        assert await rig.service.expire_due() == pytest.approx(60)
        rig.clock.advance(60)
        assert rig.served() == "fake-gsm-api_secret"  # the cache stops serving on its own
        assert await rig.service.expire_due() == float("inf")

        stored = rig.db.committed.overrides[activated.override_id]
        assert stored.end_reason == "expired"
        assert rig.actions()[-1] == ("break_glass_expire", "success", "system")
        assert rig.db.committed.metadata["api_secret"].break_glass_expires_at is None
        assert ALERT_KEY not in rig.alerts.active()
        assert await rig.service.expire_due() == float("inf")
        assert [a for a, _, _ in rig.actions()].count("break_glass_expire") == 1

    async def test_expiry_waits_for_the_audit(self, rig: Rig) -> None:
        """When the expire row cannot be written the override stays not ended, then is retried."""
        activated = await rig.activate(ttl_seconds=60)
        rig.clock.advance(61)
        rig.db.fail_audit_appends = True
        await rig.service.expire_due()
        assert rig.db.committed.overrides[activated.override_id].ended_at is None
        rig.db.fail_audit_appends = False
        await rig.service.expire_due()
        assert rig.db.committed.overrides[activated.override_id].end_reason == "expired"

    async def test_job_runs_on_its_injected_sleep(self, rig: Rig) -> None:
        """The job sleeps until the next expiry (capped) and ends the override there."""
        activated = await rig.activate(ttl_seconds=90)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            rig.clock.advance(seconds)
            if len(slept) == 4:
                raise _Stop

        job = BreakGlassExpiryJob(rig.service, max_interval_seconds=40, sleep=sleep)
        with pytest.raises(_Stop):
            await job.run_forever()
        assert slept == [40, 40, 10, 40]
        assert rig.db.committed.overrides[activated.override_id].end_reason == "expired"

    async def test_job_survives_a_database_outage(self, rig: Rig) -> None:
        """A failed pass is logged and retried after the interval."""
        rig.db.unavailable = True
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            raise _Stop

        with pytest.raises(_Stop):
            await BreakGlassExpiryJob(
                rig.service, max_interval_seconds=7, sleep=sleep
            ).run_forever()
        assert slept == [7]


class _Stop(Exception):
    pass


class TestChangeNotifications:
    async def test_activate_revoke_and_expiry_publish_after_commit(self, rig: Rig) -> None:
        """Each committed activation, revoke and expiry publishes ``break_glass`` once."""
        first = await rig.activate(ttl_seconds=60)
        assert rig.published == ["break_glass"]
        assert rig.db.committed.overrides[first.override_id].ended_at is None
        second = await rig.activate(rig.seal(), ttl_seconds=600)
        await rig.service.revoke(second.override_id, actor="bob", correlation_id=None)
        assert rig.published == ["break_glass"] * 3
        rig.clock.advance(60)
        await rig.service.expire_due()
        assert rig.published == ["break_glass"] * 4
        await rig.service.expire_due()
        assert rig.published == ["break_glass"] * 4

    async def test_rejection_publishes_nothing(self, rig: Rig) -> None:
        """A refused activation changed nothing, so nobody is told."""
        with pytest.raises(InvalidInput):
            await rig.activate(reason=" ")
        assert rig.published == []

    async def test_failing_hook_does_not_fail_the_activation(self, rig: Rig) -> None:
        """The override is committed and served even when the notification cannot be sent."""
        rig.publish_fails = True
        activated = await rig.activate()
        assert rig.served() == OVERRIDE_VALUE
        assert rig.db.committed.overrides[activated.override_id].ended_at is None


class TestReload:
    async def test_restart_serves_the_stored_override_until_its_expiry(self, rig: Rig) -> None:
        """After a restart the stored ciphertext is reopened (issuedAt not re-checked vs now)."""
        activated = await rig.activate(ttl_seconds=1800)
        rig.clock.advance(600)  # the payload's issuedAt is now 10 minutes old
        rig.restart()
        await rig.cache.hydrate()
        assert rig.served() == "fake-gsm-api_secret"
        await rig.service.reload()
        assert rig.served() == OVERRIDE_VALUE
        assert rig.service.view(SecretType.API_SECRET).expires_at == activated.expires_at
        assert rig.reads[-1] == ("api_secret", "break_glass", True)
        assert ALERT_KEY in rig.alerts.active()

    async def test_revoked_elsewhere_is_dropped(self, rig: Rig) -> None:
        """An override ended by another replica stops being served at the next reload."""
        activated = await rig.activate()
        other = rig.other_replica()
        await other.revoke(activated.override_id, actor="carol", correlation_id=None)
        assert rig.served() == OVERRIDE_VALUE
        await rig.service.reload()
        assert rig.served() == "fake-gsm-api_secret"
        assert ALERT_KEY not in rig.alerts.active()

    async def test_activated_elsewhere_is_installed(self, rig: Rig) -> None:
        """An override activated on another replica is served here after a reload."""
        other = rig.other_replica()
        await other.activate(
            secret_type="api_key",
            key_id=rig.pair.key_id,  # type: ignore[union-attr]
            ciphertext=rig.seal("fake-elsewhere", secret_type="api_key"),
            ttl_seconds=300,
            reason="outage",
            ticket=None,
            actor="dave",
            correlation_id=None,
        )
        await rig.service.reload()
        assert rig.served(SecretType.API_KEY) == "fake-elsewhere"
        assert rig.service.view(SecretType.API_KEY).actor == "dave"

    async def test_unreadable_row_is_not_served_and_reported_once(self, rig: Rig) -> None:
        """A stored override sealed to another key is skipped, counted once, never served."""
        activated = await rig.activate()
        rig.restart(pair=make_pair()[0])
        await rig.cache.hydrate()
        await rig.service.reload()
        await rig.service.reload()
        assert rig.served() == "fake-gsm-api_secret"
        assert rig.failures == [("api_secret", "UNKNOWN_KEY_ID")]
        assert rig.db.committed.overrides[activated.override_id].ended_at is None

    async def test_swapped_ciphertext_is_refused(self, rig: Rig) -> None:
        """A row whose ciphertext was replaced by another valid payload is not served."""
        activated = await rig.activate()
        record = rig.db.committed.overrides[activated.override_id]
        forged = rig.seal("fake-forged", nonce=pysecrets.token_bytes(32))
        rig.db.committed.overrides[activated.override_id] = record.model_copy(
            update={"ciphertext": forged}
        )
        rig.restart()
        await rig.cache.hydrate()
        await rig.service.reload()
        assert rig.served() == "fake-gsm-api_secret"
        assert rig.failures == [("api_secret", "CIPHERTEXT_INVALID")]

    async def test_disabled_after_restart_serves_nothing(self, rig: Rig) -> None:
        """Without keys the stored override cannot be opened; it is not served."""
        await rig.activate()
        rig.restart(pair=None)
        await rig.cache.hydrate()
        await rig.service.reload()
        assert rig.served() == "fake-gsm-api_secret"


async def _never(secret_type: SecretType) -> AccessedSecret:
    raise AssertionError("not fetched in this test")


class TestRedactorRegistration:
    """The log redactor learns a value only once its override is committed, and forgets it at
    the end: a refused payload must not choose words to mask out of every later log line."""

    async def test_refused_payloads_are_never_registered(self, rig: Rig) -> None:
        ciphertext = rig.seal("fake-replayed-value-0001")
        await rig.activate(ciphertext)
        assert [v.reveal() for v in rig.values] == ["fake-replayed-value-0001"]
        with pytest.raises(ReplayDetected):
            await rig.activate(ciphertext)
        with pytest.raises(PayloadMismatch):
            await rig.activate(rig.seal("fake-mismatch-value-0002", secret_type="api_key"))
        rig.db.fail_audit_appends = True
        with pytest.raises(AuditUnavailable):
            await rig.activate(rig.seal("fake-unaudited-value-0003"))
        assert [v.reveal() for v in rig.values] == ["fake-replayed-value-0001"]

    async def test_revoked_and_expired_values_are_forgotten(self, rig: Rig) -> None:
        revoked = await rig.activate(rig.seal("fake-revoked-value-0004"))
        await rig.activate(rig.seal("fake-expiring-value-0005"), ttl_seconds=60)
        await rig.service.revoke(revoked.override_id, actor="carol", correlation_id=None)
        assert [v.reveal() for v in rig.forgotten] == ["fake-revoked-value-0004"]
        rig.clock.advance(61)
        await rig.service.expire_due()
        assert [v.reveal() for v in rig.forgotten] == [
            "fake-revoked-value-0004",
            "fake-expiring-value-0005",
        ]


class TestDecideThenReact:
    """The service emits what it decided; the reactions keep today's order and log lines."""

    async def test_value_is_learnt_before_it_is_served_and_announced_last(self, rig: Rig) -> None:
        """OverrideCommitted precedes the cache install; the announcement is the last event."""
        served_when_learnt: list[str | None] = []
        watch = Dispatcher(
            [{OverrideCommitted: [lambda _: served_when_learnt.append(rig.served())]}]
        )
        bus = RecordingBus(then=watch)
        service = build_break_glass(
            key_pair=rig.pair,
            uow_factory=InMemoryUnitOfWorkFactory(rig.db, rig.clock),
            auditor=rig.auditor,
            cache=rig.cache,
            clock=rig.clock,
            bus=bus,
        )
        assert rig.pair is not None
        await service.activate(
            secret_type="api_secret",
            key_id=rig.pair.key_id,
            ciphertext=rig.seal(),
            ttl_seconds=600,
            reason="GSM outage INC-1",
            ticket=None,
            actor="alice",
            correlation_id=None,
        )
        assert served_when_learnt == ["fake-gsm-api_secret"]
        assert rig.served() == OVERRIDE_VALUE
        assert [type(e) for e in bus.events] == [
            OverrideCommitted,
            OverrideActivated,
            OverridesChanged,
        ]

    async def test_log_lines_keep_their_names_and_fields(self, rig: Rig) -> None:
        """Activation, rejection and revoke log the same event names and fields as before."""
        with capture_logs() as logs:
            activated = await rig.activate()
            with pytest.raises(InvalidInput):
                await rig.activate(reason=" ")
            await rig.service.revoke(activated.override_id, actor="carol", correlation_id=None)
        lines = [e for e in logs if e["event"].startswith("break_glass.")]
        assert [(e["event"], e["log_level"]) for e in lines] == [
            ("break_glass.activated", "warning"),
            ("break_glass.rejected", "warning"),
            ("break_glass.revoked", "warning"),
        ]
        assert set(lines[0]) == {
            "event",
            "log_level",
            "secret_type",
            "override_id",
            "actor",
            "ticket",
            "expires_at",
        }
        assert (lines[1]["secret_type"], lines[1]["code"], lines[1]["actor"]) == (
            "api_secret",
            "VALIDATION_FAILED",
            "alice",
        )
        assert lines[2]["remaining_seconds"] == 600
        assert all(OVERRIDE_VALUE not in repr(e) for e in logs)


_DECIDING_MODULES = ("service", "ledger", "request", "served_overrides", "events", "audit_rows")
_REACTING_ONLY = ("structlog", "omni_secrets.observability", "omni_secrets.adapters")


@pytest.mark.parametrize("module", _DECIDING_MODULES)
def test_deciding_modules_do_not_log_count_alert_or_notify(module: str) -> None:
    """Only reactions.py reaches the logger, metrics, alerts and the notifier."""
    import omni_secrets.service.break_glass as package

    tree = ast.parse((Path(package.__file__).parent / f"{module}.py").read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith(_REACTING_ONLY)]
