"""``omni-secrets audit verify --json`` and ``audit list`` (contract section 16) against real
SQLite and PostgreSQL databases, through the console-script entry point."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from omni_secrets.adapters.db.engine import create_engine as create_async_engine
from omni_secrets.adapters.db.unit_of_work import sql_unit_of_work_factory
from omni_secrets.domain.integrity import IntegrityKeyring
from omni_secrets.domain.models import NewAccessEvent
from omni_secrets.domain.repositories import AuditFilter
from tests.integration.db.conftest import OmniCli
from tests.integration.db.test_integrity import FAKE_KEY, key_file

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

EVENTS = [
    # (minutes after T0, type, action, actor, result)
    (0, "api_key", "hydrate", "system", "success"),
    (1, "api_secret", "break_glass_activate", "alice@example.test", "success"),
    (2, "api_secret", "break_glass_revoke", "bob@example.test", "success"),
    (3, None, "cache_refresh_requested", "alice@example.test", "success"),
    (4, "api_key", "rotation_preview", "alice@example.test", "conflict"),
]


def new_event(n: int) -> NewAccessEvent:
    minutes, secret_type, action, actor, result = EVENTS[n]
    return NewAccessEvent(
        occurred_at=T0 + timedelta(minutes=minutes),
        secret_type=secret_type,
        action=action,  # type: ignore[arg-type]
        actor=actor,
        result=result,  # type: ignore[arg-type]
        correlation_id=f"fake-corr-{n + 1}",
        details={"n": n + 1},
    )


async def append_events(url: str, keyring: IntegrityKeyring | None = None) -> None:
    engine = create_async_engine(url)
    try:
        async with sql_unit_of_work_factory(engine, keyring=keyring)() as uow:
            await uow.audit.append_many([new_event(n) for n in range(len(EVENTS))])
            await uow.commit()
    finally:
        await engine.dispose()


async def search(url: str, where: AuditFilter, limit: int) -> list[int]:
    engine = create_async_engine(url)
    try:
        async with sql_unit_of_work_factory(engine)() as uow:
            return [e.id for e in await uow.audit.search(where, limit)]
    finally:
        await engine.dispose()


class TestAuditSearch:
    def test_filters_and_order(self, database_url: str) -> None:
        """Newest first; each filter narrows; the limit keeps the newest."""
        asyncio.run(append_events(database_url))
        run = lambda where, limit=10: asyncio.run(search(database_url, where, limit))  # noqa: E731
        assert run(AuditFilter()) == [5, 4, 3, 2, 1]
        assert run(AuditFilter(), 2) == [5, 4]
        assert run(AuditFilter(secret_type="api_secret")) == [3, 2]
        assert run(AuditFilter(action="hydrate")) == [1]
        assert run(AuditFilter(actor="alice@example.test")) == [5, 4, 2]
        assert run(AuditFilter(since=T0 + timedelta(minutes=2))) == [5, 4, 3]
        both = AuditFilter(actor="alice@example.test", secret_type="api_key")
        assert run(both) == [5]


class TestAuditListCli:
    def test_lines_newest_first_with_every_field(
        self, database_url: str, omni_cli: OmniCli
    ) -> None:
        asyncio.run(append_events(database_url))
        result = omni_cli("audit", "list", "--limit", "3", OMNI_DATABASE_URL=database_url)
        assert result.code == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 3
        assert lines[0].split() == [
            "5", "2026-12-01", "09:04:00Z", "api_key", "rotation_preview", "by",
            "alice@example.test", "conflict", "correlation", "fake-corr-5",
        ]  # fmt: skip
        assert lines[1].split()[:4] == ["4", "2026-12-01", "09:03:00Z", "-"]
        assert lines[2].startswith("3 ")

    def test_json_with_filters_carries_details(self, database_url: str, omni_cli: OmniCli) -> None:
        asyncio.run(append_events(database_url))
        result = omni_cli(
            "audit", "list", "--json", "--secret-type", "api_secret", "--actor",
            "bob@example.test", "--since", "2026-12-01T09:01:00", OMNI_DATABASE_URL=database_url,
        )  # fmt: skip
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout) == {
            "events": [
                {
                    "id": 3,
                    "occurredAt": "2026-12-01T09:02:00Z",
                    "secretType": "api_secret",
                    "action": "break_glass_revoke",
                    "actor": "bob@example.test",
                    "result": "success",
                    "durationMs": None,
                    "correlationId": "fake-corr-3",
                    "details": {"n": 3},
                }
            ]
        }
        by_action = omni_cli(
            "audit", "list", "--json", "--action", "hydrate", OMNI_DATABASE_URL=database_url
        )
        assert [e["id"] for e in json.loads(by_action.stdout)["events"]] == [1]

    def test_bad_filters_are_usage_errors_naming_the_valid_values(
        self, database_url: str, omni_cli: OmniCli
    ) -> None:
        bad_type = omni_cli(
            "audit", "list", "--secret-type", "api_keys", OMNI_DATABASE_URL=database_url
        )
        assert bad_type.code == 2
        assert "api_key, api_secret, api_passphrase, zk_seeds, zk_l2_key" in bad_type.stderr
        bad_action = omni_cli("audit", "list", "--action", "nope", OMNI_DATABASE_URL=database_url)
        assert bad_action.code == 2 and "break_glass_activate" in bad_action.stderr
        bad_since = omni_cli(
            "audit", "list", "--since", "yesterday", OMNI_DATABASE_URL=database_url
        )
        assert bad_since.code == 2 and "ISO 8601" in bad_since.stderr

    def test_missing_sqlite_file_is_not_created(self, omni_cli: OmniCli, tmp_path: Path) -> None:
        missing = tmp_path / "nope.db"
        result = omni_cli("audit", "list", OMNI_DATABASE_URL=f"sqlite:///{missing}")
        assert result.code == 3 and not missing.exists()


class TestAuditVerifyJsonAndMissingKey:
    def test_json_counts_and_verdict(
        self, database_url: str, omni_cli: OmniCli, tmp_path: Path
    ) -> None:
        asyncio.run(append_events(database_url, IntegrityKeyring([FAKE_KEY])))
        result = omni_cli(
            "audit", "verify", "--json", OMNI_DATABASE_URL=database_url,
            OMNI_INTEGRITY_KEY_FILE=key_file(tmp_path, FAKE_KEY),
        )  # fmt: skip
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout) == {
            "verdict": "no_anchor", "ok": True, "checked": 5, "keyed": 5, "unkeyed": 0,
            "firstBadId": None, "reason": None,
            "anchor": {
                "source": None, "status": "absent", "id": None, "hash": None, "at": None,
                "keyId": None, "detail": "GCP_PROJECT_ID is not set, GSM was not asked",
            },
        }  # fmt: skip

    def test_keyed_chain_without_key_is_a_setup_error(
        self, database_url: str, omni_cli: OmniCli
    ) -> None:
        """Exit 3 and one line naming OMNI_INTEGRITY_KEY_FILE, not 'broken' and exit 1."""
        asyncio.run(append_events(database_url, IntegrityKeyring([FAKE_KEY])))
        text = omni_cli("audit", "verify", OMNI_DATABASE_URL=database_url)
        assert text.code == 3
        assert text.stderr.strip().splitlines() == [
            "omni-secrets: the audit chain is keyed (event id 1 onwards) and no integrity key is "
            "configured: set OMNI_INTEGRITY_KEY_FILE to the key file that signed it"
        ]
        as_json = omni_cli("audit", "verify", "--json", OMNI_DATABASE_URL=database_url)
        assert as_json.code == 3
        document = json.loads(as_json.stdout)
        assert document["verdict"] == "key_missing" and document["firstBadId"] == 1
