"""Contract section 9 against real databases: a writer without the integrity key cannot forge
audit rows, break-glass overrides or metadata pins, and the database refuses long overrides."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, pool, select, text

from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import secret_access_events as events
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.domain import audit_chain
from omni_secrets.domain.catalog import RotationGroup, SecretType
from omni_secrets.domain.integrity import IntegrityKeyring, IntegrityStatus, key_id_of
from omni_secrets.domain.models import (
    BreakGlassOverrideRecord,
    NewAccessEvent,
    OmniSecretMetadata,
)
from tests.integration.db.conftest import OmniCli
from tests.integration.db.test_audit_concurrency import ROW_TRIGGER, TABLE

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
FAKE_KEY = b"fake-integrity-key-for-tests-0001"  # 33 bytes, obviously not a real key
OTHER_KEY = b"fake-integrity-key-for-tests-0002"


def key_file(tmp_path: Path, raw: bytes, name: str = "integrity.key") -> str:
    path = tmp_path / name
    path.write_text(base64.b64encode(raw).decode() + "\n")
    return str(path)


def sync_engine(url: str) -> Engine:
    return create_engine(sync_url(url), poolclass=pool.NullPool)


def event(n: int) -> NewAccessEvent:
    return NewAccessEvent(
        occurred_at=T0 + timedelta(seconds=n),
        secret_type="api_key",
        action="refresh",
        actor="system",
        result="success",
        duration_ms=n,
        correlation_id=f"c-{n}",
        details={"n": n},
    )


async def append(url: str, count: int, keyring: IntegrityKeyring | None) -> None:
    engine = create_async_engine(url)
    try:
        async with sql_unit_of_work_factory(engine, keyring=keyring)() as uow:
            await uow.audit.append_many([event(n) for n in range(count)])
            await uow.commit()
    finally:
        await engine.dispose()


def rewrite_without_key(engine: Engine, from_id: int, *, drop_key_id: bool) -> None:
    """The attacker of issue 14, as table owner: trigger off, edit a row, recompute plain SHA-256
    hashes from that row to the end (optionally marking the rows unkeyed), trigger back on."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE {TABLE} DISABLE TRIGGER {ROW_TRIGGER}"))
        else:
            conn.execute(text("DROP TRIGGER omni_secret_access_events_no_update"))
        edit = f"UPDATE {TABLE} SET actor = 'mallory' WHERE id = :id"  # noqa: S608 - constants
        conn.execute(text(edit), {"id": from_id})
        rows = conn.execute(select(events).order_by(events.c.id)).mappings().all()
        prev = audit_chain.GENESIS_HASH
        for row in rows:
            if row["id"] >= from_id:
                fields = dict(row)
                content = NewAccessEvent.model_validate(
                    {k: fields[k] for k in NewAccessEvent.model_fields}
                )
                digest = audit_chain.row_hash(prev, content, row["id"])
                unkey = ", key_id = NULL" if drop_key_id else ""
                rehash = f"UPDATE {TABLE} SET prev_hash = :p, row_hash = :h{unkey} WHERE id = :id"  # noqa: S608
                conn.execute(
                    text(rehash),
                    {"p": prev, "h": digest, "id": row["id"]},
                )
                prev = digest
            else:
                prev = row["row_hash"]
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER {ROW_TRIGGER}"))


class TestKeyedAuditChain:
    def test_keyed_rows_verify_and_are_counted(
        self, database_url: str, omni_cli: OmniCli, tmp_path: Path
    ) -> None:
        """Rows written with the key verify as keyed, with key_id = sha256(key)[:16]."""
        asyncio.run(append(database_url, 12, IntegrityKeyring([FAKE_KEY])))
        with sync_engine(database_url).connect() as conn:
            query = text("SELECT DISTINCT key_id FROM omni_secret_access_events")
            ids = {r[0] for r in conn.execute(query)}
        assert ids == {hashlib.sha256(FAKE_KEY).hexdigest()[:16]} == {key_id_of(FAKE_KEY)}
        result = omni_cli(
            "audit",
            "verify",
            OMNI_DATABASE_URL=database_url,
            OMNI_INTEGRITY_KEY_FILE=key_file(tmp_path, FAKE_KEY),
        )
        assert result.code == 0, result.stderr
        assert "12 events verified (12 keyed, 0 unkeyed)" in result.stdout

    @pytest.mark.parametrize("drop_key_id", [False, True], ids=["keep-key-id", "mark-unkeyed"])
    def test_chain_rewritten_without_the_key_fails_at_the_edited_row(
        self, database_url: str, omni_cli: OmniCli, tmp_path: Path, drop_key_id: bool
    ) -> None:
        """Edit row 7 and recompute every hash after it without the key: verify exits 1 at 7."""
        asyncio.run(append(database_url, 12, IntegrityKeyring([FAKE_KEY])))
        rewrite_without_key(sync_engine(database_url), 7, drop_key_id=drop_key_id)
        result = omni_cli(
            "audit",
            "verify",
            OMNI_DATABASE_URL=database_url,
            OMNI_INTEGRITY_KEY_FILE=key_file(tmp_path, FAKE_KEY),
        )
        assert result.code == 1
        assert "event id 7" in result.stderr
        assert "6 keyed" in result.stderr
        assert "Traceback" not in result.stderr

    def test_legacy_unkeyed_rows_then_keyed_rows(
        self, database_url: str, omni_cli: OmniCli, tmp_path: Path
    ) -> None:
        """Rows from before the key stay verifiable as unkeyed; the keyed chain continues them."""
        asyncio.run(append(database_url, 5, None))
        asyncio.run(append(database_url, 4, IntegrityKeyring([FAKE_KEY])))
        env = {"OMNI_DATABASE_URL": database_url}
        result = omni_cli(
            "audit", "verify", OMNI_INTEGRITY_KEY_FILE=key_file(tmp_path, FAKE_KEY), **env
        )
        assert result.code == 0, result.stderr
        assert "9 events verified (4 keyed, 5 unkeyed)" in result.stdout
        strict = omni_cli(
            "audit",
            "verify",
            "--max-unkeyed-id",
            "3",
            OMNI_INTEGRITY_KEY_FILE=key_file(tmp_path, FAKE_KEY),
            **env,
        )
        assert strict.code == 1 and "event id 4" in strict.stderr

    def test_rotated_keys_verify_with_every_listed_key(
        self, database_url: str, omni_cli: OmniCli, tmp_path: Path
    ) -> None:
        """Rows signed with an old key verify while it is still listed after the new one."""
        asyncio.run(append(database_url, 3, IntegrityKeyring([OTHER_KEY])))
        asyncio.run(append(database_url, 3, IntegrityKeyring([FAKE_KEY, OTHER_KEY])))
        both = f"{key_file(tmp_path, FAKE_KEY)},{key_file(tmp_path, OTHER_KEY, 'old.key')}"
        result = omni_cli(
            "audit", "verify", OMNI_DATABASE_URL=database_url, OMNI_INTEGRITY_KEY_FILE=both
        )
        assert result.code == 0, result.stderr
        assert "6 keyed" in result.stdout

    def test_a_key_that_does_not_verify_is_reported_with_the_row_id(
        self, database_url: str, omni_cli: OmniCli, tmp_path: Path
    ) -> None:
        """The wrong key (or none) fails at the first keyed row, one line, no traceback."""
        asyncio.run(append(database_url, 2, None))
        asyncio.run(append(database_url, 3, IntegrityKeyring([OTHER_KEY])))
        wrong = omni_cli(
            "audit",
            "verify",
            OMNI_DATABASE_URL=database_url,
            OMNI_INTEGRITY_KEY_FILE=key_file(tmp_path, FAKE_KEY),
        )
        assert wrong.code == 1
        assert "event id 3" in wrong.stderr and key_id_of(OTHER_KEY) in wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1
        none = omni_cli("audit", "verify", OMNI_DATABASE_URL=database_url)
        assert none.code == 1 and "event id 3" in none.stderr
        assert "Traceback" not in wrong.stderr + none.stderr

    @pytest.mark.parametrize(
        ("content", "needle"),
        [(b"", "holds 0 bytes"), (base64.b64encode(b"fake-short"), "holds 10 bytes")],
        ids=["empty", "short"],
    )
    def test_bad_key_file_is_one_line(
        self, database_url: str, omni_cli: OmniCli, tmp_path: Path, content: bytes, needle: str
    ) -> None:
        """A short key file, or one that does not exist, is one stderr line naming the variable."""
        path = tmp_path / "bad.key"
        path.write_bytes(content)
        for value, expected in ((str(path), needle), (str(tmp_path / "nope.key"), "cannot read")):
            result = omni_cli(
                "audit", "verify", OMNI_DATABASE_URL=database_url, OMNI_INTEGRITY_KEY_FILE=value
            )
            assert result.code == 2
            assert "OMNI_INTEGRITY_KEY_FILE" in result.stderr and expected in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1


def metadata_row(secret_type: SecretType = SecretType.API_KEY) -> OmniSecretMetadata:
    return OmniSecretMetadata(
        secret_type=secret_type,
        gsm_secret_id=f"apex-omni-{secret_type.value.replace('_', '-')}",
        gsm_project_id="omni-test",
        required=True,
        rotation_group=RotationGroup.API_CREDENTIALS,
        active_version="3",
        last_rotated_at=T0,
        rotation_due_at=T0 + timedelta(days=365),
        created_at=T0,
        updated_at=T0,
    )


def override_row(**changes: Any) -> BreakGlassOverrideRecord:
    values: dict[str, Any] = {
        "override_id": "ovr-1",
        "secret_type": SecretType.API_SECRET,
        "key_id": "0123456789abcdef",
        "ciphertext": "ZmFrZS1jaXBoZXJ0ZXh0",
        "nonce": "fake-nonce-1",
        "actor": "alice",
        "reason": "GSM outage drill",
        "activated_at": T0,
        "expires_at": T0 + timedelta(minutes=15),
    }
    values.update(changes)
    return BreakGlassOverrideRecord(**values)


class TestRowMacs:
    async def test_pins_signed_on_write_and_forgery_detected(self, database_url: str) -> None:
        """Seeded, pinned and rotated rows verify; a pin edited in SQL reads as INVALID."""
        keyring = IntegrityKeyring([FAKE_KEY])
        engine = create_async_engine(database_url)
        factory = sql_unit_of_work_factory(engine, keyring=keyring)
        try:
            async with factory() as uow:
                await uow.metadata.insert_missing(
                    [metadata_row(), metadata_row(SecretType.API_SECRET)]
                )
                await uow.metadata.record_rotation(
                    "api_credentials", {"api_key": "4"}, T0, T0 + timedelta(days=365)
                )
                await uow.commit()
            async with factory() as uow:
                rows = {r.secret_type: r for r in await uow.metadata.list_all()}
            assert rows[SecretType.API_KEY].active_version == "4"
            assert {r.pin_integrity for r in rows.values()} == {IntegrityStatus.VERIFIED}
            with sync_engine(database_url).begin() as conn:
                conn.execute(
                    text(
                        "UPDATE omni_secret_metadata SET rotation_due_at = :due "
                        "WHERE secret_type = 'api_key'"
                    ),
                    {"due": T0 + timedelta(days=3650)},
                )
            async with factory() as uow:
                forged = await uow.metadata.get("api_key")
                other = await uow.metadata.get("api_secret")
            assert forged is not None and forged.pin_integrity is IntegrityStatus.INVALID
            assert other is not None and other.pin_integrity is IntegrityStatus.VERIFIED
            async with sql_unit_of_work_factory(engine)() as uow:  # no key: nothing checked
                unchecked = await uow.metadata.get("api_key")
            assert unchecked is not None
            assert unchecked.pin_integrity is IntegrityStatus.UNCHECKED
        finally:
            await engine.dispose()

    async def test_override_inserted_without_mac_or_revived_is_not_servable(
        self, database_url: str
    ) -> None:
        """An override INSERTed in SQL has no MAC; clearing ended_at breaks the MAC."""
        keyring = IntegrityKeyring([FAKE_KEY])
        engine = create_async_engine(database_url)
        factory = sql_unit_of_work_factory(engine, keyring=keyring)
        try:
            async with factory() as uow:
                await uow.overrides.add(override_row())
                await uow.overrides.end("ovr-1", T0 + timedelta(minutes=1), "revoked")
                await uow.commit()
            with sync_engine(database_url).begin() as conn:
                conn.execute(
                    text("INSERT INTO omni_break_glass_nonces (nonce, used_at) VALUES ('n2', :t)"),
                    {"t": T0},
                )
                conn.execute(
                    text(
                        "INSERT INTO omni_break_glass_overrides (override_id, secret_type, key_id,"
                        " ciphertext, nonce, actor, reason, activated_at, expires_at) VALUES "
                        "('ovr-2', 'api_secret', 'k', 'c', 'n2', 'mallory', 'x', :a, :e)"
                    ),
                    {"a": T0, "e": T0 + timedelta(minutes=20)},
                )
                conn.execute(
                    text(
                        "UPDATE omni_break_glass_overrides SET ended_at = NULL, end_reason = NULL"
                        " WHERE override_id = 'ovr-1'"
                    )
                )
            async with factory() as uow:
                active = {r.override_id: r for r in await uow.overrides.list_active(T0)}
            assert active["ovr-2"].integrity is IntegrityStatus.MISSING
            assert active["ovr-1"].integrity is IntegrityStatus.INVALID
        finally:
            await engine.dispose()

    @pytest.mark.parametrize("minutes", [31, 240, 14400, -1], ids=["31m", "4h", "10d", "negative"])
    def test_database_refuses_an_override_window_over_1800s(
        self, database_url: str, minutes: int
    ) -> None:
        """The CHECK constraint refuses any window outside (0, 1800] s, whoever inserts it."""
        from sqlalchemy.exc import IntegrityError

        with sync_engine(database_url).begin() as conn:
            conn.execute(
                text("INSERT INTO omni_break_glass_nonces (nonce, used_at) VALUES ('n9', :t)"),
                {"t": T0},
            )
        insert = text(
            "INSERT INTO omni_break_glass_overrides (override_id, secret_type, key_id, ciphertext,"
            " nonce, actor, reason, activated_at, expires_at) VALUES "
            "('ovr-9', 'api_secret', 'k', 'c', 'n9', 'mallory', 'x', :a, :e)"
        )
        with (
            pytest.raises(IntegrityError, match="window_max_1800s"),
            sync_engine(database_url).begin() as conn,
        ):
            conn.execute(insert, {"a": T0, "e": T0 + timedelta(minutes=minutes)})
        with sync_engine(database_url).begin() as conn:  # exactly 30 minutes is allowed
            conn.execute(insert, {"a": T0, "e": T0 + timedelta(minutes=30)})


class TestMigration0005:
    def test_rows_written_before_0005_stay_verifiable_as_unkeyed(
        self, empty_database_url: str, omni_cli: OmniCli, tmp_path: Path
    ) -> None:
        """Rows chained at schema 0004 (no key_id column) verify after upgrading, as unkeyed,
        and keyed rows continue the chain after them."""
        from omni_secrets.adapters.db import migrate

        url = empty_database_url
        migrate.upgrade(url, "0004")
        prev = audit_chain.GENESIS_HASH
        with sync_engine(url).begin() as conn:
            for n in range(1, 4):
                content = event(n)
                digest = audit_chain.row_hash(prev, content, n)
                conn.execute(
                    text(
                        "INSERT INTO omni_secret_access_events (id, occurred_at, secret_type,"
                        " action, actor, result, duration_ms, correlation_id, details, prev_hash,"
                        " row_hash) VALUES (:id, :at, 'api_key', 'refresh', 'system', 'success',"
                        " :ms, :cid, :details, :prev, :hash)"
                    ),
                    {
                        "id": n,
                        "at": content.occurred_at,
                        "ms": n,
                        "cid": f"c-{n}",
                        "details": f'{{"n": {n}}}',
                        "prev": prev,
                        "hash": digest,
                    },
                )
                prev = digest
        migrate.upgrade(url)
        asyncio.run(append(url, 2, IntegrityKeyring([FAKE_KEY])))
        result = omni_cli(
            "audit",
            "verify",
            OMNI_DATABASE_URL=url,
            OMNI_INTEGRITY_KEY_FILE=key_file(tmp_path, FAKE_KEY),
        )
        assert result.code == 0, result.stderr
        assert "5 events verified (2 keyed, 3 unkeyed)" in result.stdout
