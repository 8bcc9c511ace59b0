"""Break-glass routes through the real app, GSM emulator and database (contract sections 5-7)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from omni_secrets.bootstrap import Overrides
from omni_secrets.domain.break_glass import generate_private_key, seal_payload
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.exchange import ApexCredentials
from tests.contract.conftest import (
    CANARIES,
    FAKE_VALUES,
    BreakGlassKeys,
    OmniStack,
    StackFactory,
)

BREAK_GLASS = "/ops/apex-omni/secrets/break-glass"
PUBLIC_KEY = f"{BREAK_GLASS}/public-key"
STATUS = "/ops/apex-omni/secrets/status"
ACCOUNT = "/apex-omni/account"
OVERRIDE_KEY = "fake-override-api-key-b7c2"
OVERRIDE_SECRET = "fake-override-api-secret-d41f"
SCOPE = ("omni-secrets:break-glass",)


def sealed_request(
    keys: BreakGlassKeys,
    value: str = OVERRIDE_SECRET,
    *,
    secret_type: str = "api_secret",  # noqa: S107 - a type name, not a secret
    inner_type: str | None = None,
    ttl_seconds: int = 600,
    issued_at: datetime | None = None,
    public_key: str | None = None,
    key_id: str | None = None,
) -> dict[str, Any]:
    ciphertext = seal_payload(
        public_key or keys.public_key,
        secret_type=inner_type or secret_type,
        value=value,
        issued_at=issued_at or datetime.now(UTC),
    )
    return {
        "secretType": secret_type,
        "keyId": key_id or keys.key_id,
        "ciphertext": ciphertext,
        "ttlSeconds": ttl_seconds,
        "reason": "GSM outage, INC-42",
        "ticket": "INC-42",
    }


def status_of(body: dict[str, Any], secret_type: str) -> dict[str, Any]:
    return next(s for s in body["secrets"] if s["secretType"] == secret_type)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus exposition ``text``."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    raise AssertionError(f"no sample {name}{labels}")


def sqlite_path(stack: OmniStack) -> Path:
    return Path(stack.database_url.removeprefix("sqlite:///"))


def _query(stack: OmniStack, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(sqlite_path(stack), timeout=30)) as conn, conn:
        return list(conn.execute(sql))


async def query(stack: OmniStack, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the stack's SQLite file off the event loop (the app must keep running)."""
    return await asyncio.to_thread(_query, stack, sql)


async def audit_rows(stack: OmniStack) -> list[tuple[Any, ...]]:
    """(action, secret_type, actor, result, details) of every break-glass audit row."""
    return await query(
        stack,
        "SELECT action, secret_type, actor, result, details FROM omni_secret_access_events "
        "WHERE action LIKE 'break_glass%' ORDER BY id",
    )


async def override_rows(stack: OmniStack) -> list[tuple[Any, ...]]:
    """(override_id, ciphertext, end_reason) of every stored override."""
    return await query(
        stack, "SELECT override_id, ciphertext, end_reason FROM omni_break_glass_overrides"
    )


@pytest.fixture
async def stack(omni_stack_factory: StackFactory, break_glass_keys: BreakGlassKeys) -> OmniStack:
    return await omni_stack_factory(**break_glass_keys.env())


class TestPublicKey:
    async def test_serves_the_configured_key(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys
    ) -> None:
        """The route answers the key id, the base64 public key and the algorithm."""
        response = await stack.request("GET", PUBLIC_KEY, scopes=SCOPE)
        assert response.status_code == 200
        assert response.json() == {
            "keyId": break_glass_keys.key_id,
            "publicKey": break_glass_keys.public_key,
            "algorithm": "x25519-sealed-box",
        }

    async def test_needs_the_break_glass_scope(self, stack: OmniStack) -> None:
        """A token without omni-secrets:break-glass gets 403 on every break-glass route."""
        scopes = ("omni-secrets:read", "omni-secrets:rotate")
        assert (await stack.request("GET", PUBLIC_KEY, scopes=scopes)).status_code == 403
        assert (await stack.request("POST", BREAK_GLASS, scopes=scopes, json={})).status_code == 403
        assert (await stack.request("DELETE", f"{BREAK_GLASS}/x", scopes=scopes)).status_code == 403

    async def test_disabled_without_keys(
        self, omni_stack_factory: StackFactory, break_glass_keys: BreakGlassKeys
    ) -> None:
        """No key pair configured: public key and activation answer 503 BREAK_GLASS_DISABLED."""
        plain = await omni_stack_factory()
        response = await plain.request("GET", PUBLIC_KEY, scopes=SCOPE)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "BREAK_GLASS_DISABLED"
        response = await plain.request(
            "POST", BREAK_GLASS, scopes=SCOPE, json=sealed_request(break_glass_keys)
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "BREAK_GLASS_DISABLED"


class TestActivate:
    async def test_override_is_served_signed_with_and_revoked(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """201; status shows it with its expiry; ApeX sees the override key; revoke reverts."""
        stack.apex.accept(
            ApexCredentials.of(
                OVERRIDE_KEY,
                FAKE_VALUES["apex-omni-api-secret"],
                FAKE_VALUES["apex-omni-api-passphrase"],
            )
        )
        body = sealed_request(break_glass_keys, OVERRIDE_KEY, secret_type="api_key")
        response = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)
        assert response.status_code == 201, response.text
        activated = response.json()
        assert set(activated) == {
            "overrideId",
            "secretType",
            "cacheSource",
            "activatedAt",
            "expiresAt",
        }
        assert (activated["secretType"], activated["cacheSource"]) == ("api_key", "break_glass")
        start = datetime.fromisoformat(activated["activatedAt"])
        assert datetime.fromisoformat(activated["expiresAt"]) - start == timedelta(seconds=600)

        item = status_of((await stack.request("GET", STATUS)).json(), "api_key")
        assert item["cacheSource"] == "break_glass"
        assert item["expiresAt"] == activated["expiresAt"]
        assert item["breakGlass"] == {
            "active": True,
            "overrideId": activated["overrideId"],
            "actor": "tester",
            "activatedAt": activated["activatedAt"],
            "expiresAt": activated["expiresAt"],
            "reason": "GSM outage, INC-42",
        }

        account = await stack.request("GET", ACCOUNT, scopes=("apex-omni:read",))
        assert account.status_code == 200, account.text
        assert stack.apex.signing_keys()[-1] == OVERRIDE_KEY

        metrics = (await stack.client.get("/metrics")).text
        assert metric(metrics, "omni_secret_break_glass_active", secret_type="api_key") == 1
        assert metric(metrics, "omni_secret_break_glass_active", secret_type="api_secret") == 0
        assert (
            metric(
                metrics,
                "omni_secret_reads_total",
                secret_type="api_key",
                source="break_glass",
                result="success",
            )
            == 1
        )

        revoked = await stack.request(
            "DELETE", f"{BREAK_GLASS}/{activated['overrideId']}", scopes=SCOPE
        )
        assert revoked.status_code == 204
        assert revoked.content == b""
        item = status_of((await stack.request("GET", STATUS)).json(), "api_key")
        assert (item["cacheSource"], item["breakGlass"]) == ("gsm", {"active": False})
        await stack.request("GET", ACCOUNT, scopes=("apex-omni:read",))
        assert stack.apex.signing_keys()[-1] == FAKE_VALUES["apex-omni-api-key"]
        metrics = (await stack.client.get("/metrics")).text
        assert metric(metrics, "omni_secret_break_glass_active", secret_type="api_key") == 0

        again = await stack.request(
            "DELETE", f"{BREAK_GLASS}/{activated['overrideId']}", scopes=SCOPE
        )
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "NOT_FOUND"

        rows = await audit_rows(stack)
        assert [(a, t, actor, r) for a, t, actor, r, _ in rows] == [
            ("break_glass_activate", "api_key", "tester", "success"),
            ("break_glass_revoke", "api_key", "tester", "success"),
        ]
        out, err = capsys.readouterr()
        assert OVERRIDE_KEY not in out + err

    async def test_unknown_override_is_404(self, stack: OmniStack) -> None:
        """DELETE of an id never issued answers 404 in the envelope."""
        response = await stack.request("DELETE", f"{BREAK_GLASS}/no-such-override", scopes=SCOPE)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"


class TestRejections:
    async def test_each_refusal_has_its_code_and_audit_row(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys
    ) -> None:
        """TTL, type, key, integrity, mismatch and freshness failures answer their 422 codes."""
        _, other_public, other_id = generate_private_key()
        good = sealed_request(break_glass_keys)
        tampered = bytearray(base64.b64decode(good["ciphertext"]))
        tampered[40] ^= 0x01
        stale = datetime.now(UTC) - timedelta(minutes=6)
        cases: list[tuple[dict[str, Any], str]] = [
            ({**good, "ttlSeconds": 1801}, "TTL_TOO_LONG"),
            ({**good, "ttlSeconds": 59}, "VALIDATION_FAILED"),
            ({**good, "secretType": "not_a_type"}, "VALIDATION_FAILED"),
            ({**good, "ciphertext": base64.b64encode(tampered).decode()}, "CIPHERTEXT_INVALID"),
            ({**good, "ciphertext": "%%% not base64 %%%"}, "CIPHERTEXT_INVALID"),
            (sealed_request(break_glass_keys, public_key=other_public), "CIPHERTEXT_INVALID"),
            (sealed_request(break_glass_keys, key_id=other_id), "UNKNOWN_KEY_ID"),
            (sealed_request(break_glass_keys, issued_at=stale), "PAYLOAD_EXPIRED"),
            (sealed_request(break_glass_keys, inner_type="api_key"), "PAYLOAD_MISMATCH"),
        ]
        for body, code in cases:
            response = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)
            assert response.status_code == 422, (code, response.text)
            assert response.json()["error"]["code"] == code

        rows = await audit_rows(stack)
        assert [r[0] for r in rows] == ["break_glass_rejected"] * len(cases)
        assert {r[3] for r in rows} == {"denied"}
        assert [f'"code": "{code}"' in r[4] for r, (_, code) in zip(rows, cases, strict=True)] == [
            True
        ] * len(cases)
        assert await override_rows(stack) == []
        item = status_of((await stack.request("GET", STATUS)).json(), "api_secret")
        assert (item["cacheSource"], item["breakGlass"]) == ("gsm", {"active": False})

        metrics = (await stack.client.get("/metrics")).text
        for code, count in (("TTL_TOO_LONG", 1), ("CIPHERTEXT_INVALID", 3), ("PAYLOAD_EXPIRED", 1)):
            labels = {"secret_type": "api_secret", "operation": "break_glass", "reason": code}
            assert metric(metrics, "omni_secret_failures_total", **labels) == count

    async def test_schema_violations_are_validation_failed(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys
    ) -> None:
        """An empty reason or a missing field is 422 VALIDATION_FAILED before the service runs."""
        for body in (
            {**sealed_request(break_glass_keys), "reason": "  "},
            {k: v for k, v in sealed_request(break_glass_keys).items() if k != "keyId"},
        ):
            response = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)
            assert response.status_code == 422
            assert response.json()["error"]["code"] == "VALIDATION_FAILED"

    async def test_replay_is_409(self, stack: OmniStack, break_glass_keys: BreakGlassKeys) -> None:
        """The same ciphertext twice: 201 then 409 REPLAY_DETECTED, audited as a conflict."""
        body = sealed_request(break_glass_keys)
        first = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)
        assert first.status_code == 201
        second = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "REPLAY_DETECTED"
        assert [(r[0], r[3]) for r in await audit_rows(stack)] == [
            ("break_glass_activate", "success"),
            ("break_glass_rejected", "conflict"),
        ]
        assert len(await override_rows(stack)) == 1


class TestAuditFailClosed:
    async def test_unwritable_audit_activates_nothing(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys
    ) -> None:
        """With the audit table refusing inserts: 503 AUDIT_UNAVAILABLE and no override anywhere."""
        await query(
            stack,
            "CREATE TRIGGER test_audit_down BEFORE INSERT ON omni_secret_access_events "
            "BEGIN SELECT RAISE(ABORT, 'audit down for this test'); END",
        )
        response = await stack.request(
            "POST", BREAK_GLASS, scopes=SCOPE, json=sealed_request(break_glass_keys)
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "AUDIT_UNAVAILABLE"
        assert await override_rows(stack) == []
        assert await query(stack, "SELECT COUNT(*) FROM omni_break_glass_nonces") == [(0,)]
        window = await query(
            stack,
            "SELECT break_glass_expires_at FROM omni_secret_metadata "
            "WHERE secret_type = 'api_secret'",
        )
        assert window == [(None,)]
        item = status_of((await stack.request("GET", STATUS)).json(), "api_secret")
        assert (item["cacheSource"], item["breakGlass"]) == ("gsm", {"active": False})
        metrics = (await stack.client.get("/metrics")).text
        labels = {"secret_type": "api_secret", "operation": "break_glass"}
        assert (
            metric(metrics, "omni_secret_failures_total", **labels, reason="AUDIT_UNAVAILABLE") == 1
        )
        assert metric(metrics, "omni_audit_write_failures_total") >= 1


class TestLeaks:
    async def test_database_holds_ciphertext_only(
        self, stack: OmniStack, break_glass_keys: BreakGlassKeys
    ) -> None:
        """After activate, reject and revoke no value is in the audit table or the DB file."""
        body = sealed_request(break_glass_keys)
        activated = (await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)).json()
        rejected = await stack.request(
            "POST", BREAK_GLASS, scopes=SCOPE, json={**body, "ttlSeconds": 5000}
        )
        assert rejected.status_code == 422
        await stack.request("DELETE", f"{BREAK_GLASS}/{activated['overrideId']}", scopes=SCOPE)
        await stack.services.auditor.stop()  # flush queued rows to the file

        [(override_id, ciphertext, end_reason)] = await override_rows(stack)
        assert (override_id, end_reason) == (activated["overrideId"], "revoked")
        assert ciphertext == body["ciphertext"]
        assert len(base64.b64decode(ciphertext, validate=True)) > 48  # a sealed box, base64
        actions = [r[0] for r in await audit_rows(stack)]
        assert actions == ["break_glass_activate", "break_glass_rejected", "break_glass_revoke"]
        dump = ""
        for sql in (
            "SELECT * FROM omni_secret_access_events",
            "SELECT * FROM omni_break_glass_overrides",
            "SELECT * FROM omni_break_glass_nonces",
            "SELECT * FROM omni_secret_metadata",
        ):
            dump += "\n".join(str(row) for row in await query(stack, sql))
        for secret in (OVERRIDE_SECRET, *CANARIES):
            assert secret not in dump
        path = sqlite_path(stack)
        for file in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-journal"),
        ):
            if file.exists():
                raw = file.read_bytes()
                for secret in (OVERRIDE_SECRET, *CANARIES):
                    assert secret.encode() not in raw


class TestReplicas:
    async def test_other_replica_follows_through_its_reconcile(
        self, omni_stack_factory: StackFactory, break_glass_keys: BreakGlassKeys
    ) -> None:
        """A second replica on the same database serves, then drops, the first one's override."""
        fast = Overrides(reconcile_interval_seconds=0.05)
        first = await omni_stack_factory(overrides=fast, **break_glass_keys.env())
        second = await omni_stack_factory(
            database_url=first.database_url, overrides=fast, **break_glass_keys.env()
        )
        response = await first.request(
            "POST", BREAK_GLASS, scopes=SCOPE, json=sealed_request(break_glass_keys)
        )
        override_id = response.json()["overrideId"]

        def served_by_second() -> str | None:
            entry = second.services.cache.get(SecretType.API_SECRET)
            return entry.override_id if entry else None

        await second.wait_for(lambda: served_by_second() == override_id, what="reconcile install")
        item = status_of((await second.request("GET", STATUS)).json(), "api_secret")
        assert item["breakGlass"]["overrideId"] == override_id
        assert item["breakGlass"]["actor"] == "tester"

        revoked = await first.request("DELETE", f"{BREAK_GLASS}/{override_id}", scopes=SCOPE)
        assert revoked.status_code == 204
        await second.wait_for(lambda: served_by_second() is None, what="reconcile removal")
        metrics = (await second.client.get("/metrics")).text
        assert metric(metrics, "omni_secret_break_glass_active", secret_type="api_secret") == 0


@pytest.mark.postgres
class TestOnPostgres:
    async def test_activate_revoke_and_reload(
        self, omni_stack_factory: StackFactory, break_glass_keys: BreakGlassKeys, postgres_url: str
    ) -> None:
        """On PostgreSQL: activation, replay refusal, restart reload and revoke behave the same."""
        stack = await omni_stack_factory(database_url=postgres_url, **break_glass_keys.env())
        body = sealed_request(break_glass_keys)
        activated = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)
        assert activated.status_code == 201, activated.text
        replay = await stack.request("POST", BREAK_GLASS, scopes=SCOPE, json=body)
        assert replay.status_code == 409
        override_id = activated.json()["overrideId"]

        restarted = await omni_stack_factory(database_url=postgres_url, **break_glass_keys.env())
        item = status_of((await restarted.request("GET", STATUS)).json(), "api_secret")
        assert item["cacheSource"] == "break_glass"
        assert item["breakGlass"]["overrideId"] == override_id
        assert item["expiresAt"] == activated.json()["expiresAt"]

        for text in ({"ticket": "INC\x00"}, {"reason": "outage\x00"}):
            refused = await restarted.request(
                "POST", BREAK_GLASS, scopes=SCOPE, json={**sealed_request(break_glass_keys), **text}
            )
            assert refused.status_code == 422  # PostgreSQL cannot store NUL: refused up front
        odd = await restarted.request("DELETE", f"{BREAK_GLASS}/bad%00id", scopes=SCOPE)
        assert odd.status_code == 404  # PostgreSQL refuses NUL in text: never asked
        revoked = await restarted.request("DELETE", f"{BREAK_GLASS}/{override_id}", scopes=SCOPE)
        assert revoked.status_code == 204
        await stack.services.break_glass.reload()  # the other replica's reconcile
        item = status_of((await stack.request("GET", STATUS)).json(), "api_secret")
        assert item["cacheSource"] == "gsm"
