"""Contract section 17, the anchor: the chain head in GSM, and ``audit verify`` against it.

The service (real app, real gRPC to the emulator) writes ``{"id", "hash", "keyId", "at",
"mac"}`` to the annotation of ``apex-omni-audit-anchor``; then someone with owner rights
disables the append-only triggers and deletes the tail, then the whole table: ``audit verify``
fails (exit 1) naming the anchor, from GSM and from a saved ``--anchor`` file. Without an anchor
it says "no anchor" instead of "intact". SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, pool, select, text

from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import secret_access_events
from omni_secrets.bootstrap import Overrides
from omni_secrets.domain.audit_anchor import ANNOTATION, parse_anchor
from tests.contract.conftest import PROJECT, OmniStack, StackFactory
from tests.contract.serving import CLI
from tests.contract.test_rotation import ROTATE, STATUS, commit_path, ready_api_preview
from tests.integration.db.conftest import PostgresDatabases

ANCHOR_ID = "apex-omni-audit-anchor"
SOURCE = f"gsm:projects/{PROJECT}/secrets/{ANCHOR_ID}"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    databases = PostgresDatabases(request.getfixturevalue("postgres_url"))
    try:
        yield databases.create()
    finally:
        databases.close()


def annotation(stack: OmniStack) -> str | None:
    secret = stack.emulator.state.get_secret(f"projects/{PROJECT}/secrets/{ANCHOR_ID}")
    value = dict(secret.annotations).get(ANNOTATION)
    return None if value is None else str(value)


def head_id(stack: OmniStack) -> int:
    engine = create_engine(sync_url(stack.database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.max(secret_access_events.c.id))).scalar() or 0)
    finally:
        engine.dispose()


async def anchored_at_least(stack: OmniStack, wanted: int, timeout: float = 15.0) -> dict[str, Any]:
    """Poll (with a deadline) until the anchor in GSM names ``wanted`` or a later id."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text_ = annotation(stack)
        if text_ is not None and json.loads(text_)["id"] >= wanted:
            document: dict[str, Any] = json.loads(text_)
            return document
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no anchor at id >= {wanted} within {timeout} s: {text_}")
        await asyncio.sleep(0.05)


async def verify(stack: OmniStack, *args: str, gsm: bool = True) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env.update(
        OMNI_ENVIRONMENT="test",
        OMNI_DATABASE_URL=stack.database_url,
        OMNI_INTEGRITY_KEY_FILE=",".join(stack.settings.integrity_key_files),
    )
    if gsm:
        env.update(GCP_PROJECT_ID=PROJECT, OMNI_GSM_ENDPOINT=stack.emulator.address)
    proc = await asyncio.create_subprocess_exec(
        CLI,
        "audit",
        "verify",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def delete_as_owner(url: str, where: str) -> None:
    """The owner disables the append-only triggers and deletes rows (``where``)."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    table = secret_access_events.name
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
                conn.execute(text(f"DELETE FROM {table} WHERE {where}"))  # noqa: S608
            else:
                names = conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                    {"t": table},
                ).scalars()
                for name in list(names):
                    conn.execute(text(f'DROP TRIGGER "{name}"'))
                conn.execute(text(f"DELETE FROM {table} WHERE {where}"))  # noqa: S608
    finally:
        engine.dispose()


async def anchored_stack(
    factory: StackFactory, database_url: str | None, key: str, interval: float
) -> OmniStack:
    stack = await factory(
        database_url=database_url,
        overrides=Overrides(
            reconcile_interval_seconds=3600, audit_anchor_interval_seconds=interval
        ),
        OMNI_INTEGRITY_KEY_FILE=key,
    )
    stack.emulator.create_secret(PROJECT, ANCHOR_ID)
    return stack


class TestAnchor:
    async def test_truncated_and_deleted_chains_fail_naming_the_anchor(
        self,
        database_url: str | None,
        omni_stack_factory: StackFactory,
        integrity_key_file: str,
        tmp_path: Path,
    ) -> None:
        stack = await anchored_stack(omni_stack_factory, database_url, integrity_key_file, 0.3)
        for _ in range(3):
            assert (await stack.request("GET", STATUS)).status_code == 200
        await asyncio.sleep(0.2)  # the status rows are written by the background audit writer
        document = await anchored_at_least(stack, head_id(stack))
        assert set(document) == {"id", "hash", "keyId", "at", "mac"}
        assert document["mac"].startswith(document["keyId"] + ":")
        saved = tmp_path / "anchor.json"
        saved.write_text(json.dumps(document))

        code, out, err = await verify(stack)
        assert code == 0, err
        assert out.startswith("audit chain intact:") and f"anchored at id {document['id']}" in out
        code, out, _ = await verify(stack, "--json")
        body = json.loads(out)
        assert (code, body["verdict"], body["anchor"]["status"]) == (0, "intact", "matched")
        assert body["anchor"]["source"] == SOURCE and body["anchor"]["id"] == document["id"]

        # The tail: the anchored row and what follows it.
        delete_as_owner(stack.database_url, f"id >= {document['id'] - 1}")
        code, out, err = await verify(stack)
        assert code == 1, out
        assert SOURCE in err and "truncated, deleted or replaced" in err
        assert "Traceback" not in err
        code, out, err = await verify(stack, "--anchor", str(saved))
        assert code == 1 and f"file:{saved}" in err
        code, out, _ = await verify(stack, "--json")
        body = json.loads(out)
        assert (code, body["verdict"], body["anchor"]["status"]) == (1, "broken", "not_in_chain")

        # The whole table: a fresh chain from id 1 would verify on its own.
        delete_as_owner(stack.database_url, "1 = 1")
        code, _, err = await verify(stack)
        assert code == 1 and SOURCE in err
        code, _, err = await verify(stack, "--anchor", str(saved))
        assert code == 1 and f"file:{saved}" in err

    async def test_a_commit_is_anchored_at_once_and_no_anchor_is_not_intact(
        self,
        database_url: str | None,
        omni_stack_factory: StackFactory,
        integrity_key_file: str,
        tmp_path: Path,
    ) -> None:
        """With the 60 s interval far away, a rotation commit pokes the anchor; without GSM
        (no anchor) verify warns "no anchor" and its JSON verdict is ``no_anchor``."""
        stack = await anchored_stack(omni_stack_factory, database_url, integrity_key_file, 3600)
        assert annotation(stack) is None
        body = await ready_api_preview(stack)
        response = await stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 200, response.text
        document = await anchored_at_least(stack, 1)
        anchor = parse_anchor(json.dumps(document))
        assert anchor.id >= 1

        code, out, err = await verify(stack, gsm=False)
        assert code == 0, err
        assert out.startswith("audit chain verified, no anchor:")
        assert "intact" not in out and "no anchor" in err
        code, out, _ = await verify(stack, "--json", gsm=False)
        body = json.loads(out)
        assert (code, body["verdict"], body["anchor"]["status"]) == (0, "no_anchor", "absent")

        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps({**document, "mac": "0" * 16 + ":" + "0" * 64}))
        code, _, err = await verify(stack, "--anchor", str(forged))
        assert code == 1 and "not signed by a configured integrity key" in err
        bad = tmp_path / "bad.json"
        bad.write_text("not json")
        code, _, err = await verify(stack, "--anchor", str(bad))
        assert code == 2 and "--anchor" in err and len(err.strip().splitlines()) == 1
