"""The audit anchor: its document, and the writer's rules (never backwards, forged ones ignored)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from omni_secrets.domain.audit_anchor import (
    ANNOTATION,
    AnchorInvalid,
    make_anchor,
    parse_anchor,
)
from omni_secrets.domain.clock import SystemClock
from omni_secrets.domain.integrity import IntegrityKeyring, IntegrityStatus
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.service.audit_anchor import AuditAnchorWriter
from omni_secrets.testing import FakeSecretStore
from omni_secrets.testing.database import InMemoryUnitOfWorkFactory

KEY = b"fake-integrity-key-for-anchor-tests-01"
OTHER = b"fake-integrity-key-for-anchor-tests-02"
ANCHOR = "apex-omni-audit-anchor"
T0 = datetime(2026, 12, 7, 16, tzinfo=UTC)


async def append(uows: InMemoryUnitOfWorkFactory, count: int) -> None:
    async with uows() as uow:
        for n in range(count):
            await uow.audit.append(
                NewAccessEvent(
                    occurred_at=T0, action="status_view", actor="alice", result="success",
                    details={"n": n},
                )
            )  # fmt: skip
        await uow.commit()


def writer(store: FakeSecretStore, uows: InMemoryUnitOfWorkFactory) -> AuditAnchorWriter:
    return AuditAnchorWriter(
        store=store,
        uow_factory=uows,
        keyring=IntegrityKeyring([KEY]),
        clock=SystemClock(),
        secret_id=ANCHOR,
    )


def stored(store: FakeSecretStore) -> dict[str, object]:
    info = store._meta[ANCHOR].info(ANCHOR)
    value: dict[str, object] = json.loads(info.annotations[ANNOTATION])
    return value


class TestDocument:
    def test_round_trip_and_mac(self) -> None:
        ring = IntegrityKeyring([KEY])
        anchor = make_anchor(ring, 7, "a" * 64, T0)
        again = parse_anchor(anchor.document())
        assert again == anchor
        assert again.verify(ring) is IntegrityStatus.VERIFIED
        assert again.verify(IntegrityKeyring([OTHER])) is IntegrityStatus.INVALID
        moved = parse_anchor(anchor.document().replace('"id":7', '"id":8'))
        assert moved.verify(ring) is IntegrityStatus.INVALID

    @pytest.mark.parametrize(
        "text",
        ["not json", "[]", '{"id": 0, "hash": "' + "a" * 64 + '", "at": "x"}',
         '{"id": 1, "hash": "short", "at": "x"}', '{"id": true, "hash": "' + "a" * 64 + '"}',
         "{" + " " * 5000 + "}"],
    )  # fmt: skip
    def test_bad_documents_are_refused(self, text: str) -> None:
        with pytest.raises(AnchorInvalid):
            parse_anchor(text)


class TestWriter:
    async def test_writes_the_head_once_and_never_backwards(self) -> None:
        store, uows = FakeSecretStore(), InMemoryUnitOfWorkFactory()
        store.add_version(ANCHOR, "fake-unused")
        await append(uows, 3)
        first = writer(store, uows)
        anchor = await first.write()
        assert anchor is not None and anchor.id == 3 and stored(store)["id"] == 3
        assert await first.write() is None  # nothing new: no GSM call
        assert store.calls["update_annotations"] == 1
        await append(uows, 2)
        # Another replica (same key) already anchored id 5: this one writes nothing.
        other = writer(store, uows)
        assert (await other.write()) is not None and stored(store)["id"] == 5
        assert await first.write() is None
        assert store.calls["update_annotations"] == 2

    async def test_a_forged_anchor_does_not_hold_anchoring_back(self) -> None:
        store, uows = FakeSecretStore(), InMemoryUnitOfWorkFactory()
        store.add_version(ANCHOR, "fake-unused")
        info = await store.get_secret(ANCHOR)
        forged = make_anchor(IntegrityKeyring([OTHER]), 10**12, "b" * 64, T0)
        await store.update_annotations(ANCHOR, {ANNOTATION: forged.document()}, info.etag)
        await append(uows, 2)
        anchor = await writer(store, uows).write()
        assert anchor is not None and stored(store)["id"] == 2
