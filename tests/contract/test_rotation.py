"""Rotation preview, commit and cancel through the real app (contract section 5).

The stack is the contract harness: the app over real gRPC to a seeded GSM emulator (version 1 of
every secret), a migrated and seeded SQLite database, and a fake ApeX that checks signatures.
New candidate versions are added to the emulator; the fake ApeX is told which keys it accepts.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, select, update

from omni_secrets.adapters.db.engine import sync_url
from omni_secrets.adapters.db.tables import rotation_previews, secret_access_events, secret_metadata
from omni_secrets.domain.exchange import ApexCredentials
from tests.contract.conftest import CANARIES, FAKE_VALUES, PROJECT, OmniStack

PREVIEW = "/ops/apex-omni/secrets/rotation-preview"
STATUS = "/ops/apex-omni/secrets/status"
ROTATE = ("omni-secrets:rotate",)
CHECK_NAMES = [
    "candidates_enabled",
    "candidates_newer",
    "candidates_differ",
    "checksums_valid",
    "apex_self_test",
]
NEW_API = {
    "apex-omni-api-key": "fake-api-key-rotated-v2-5b1c",
    "apex-omni-api-secret": "fake-api-secret-rotated-v2-77de",
    "apex-omni-api-passphrase": "fake-passphrase-rotated-v2-0a9f",
}
NEW_ZK = {
    "apex-omni-zk-seeds": "fake-zk-seeds-rotated-v2-c3c3",
    "apex-omni-zk-l2-key": "fake-zk-l2-key-rotated-v2-d4d4",
}
NEW_VALUES = (*NEW_API.values(), *NEW_ZK.values())


def new_credentials() -> ApexCredentials:
    return ApexCredentials.of(
        NEW_API["apex-omni-api-key"],
        NEW_API["apex-omni-api-secret"],
        NEW_API["apex-omni-api-passphrase"],
    )


def add_versions(stack: OmniStack, values: dict[str, str]) -> None:
    for secret_id, value in values.items():
        stack.emulator.add_version(PROJECT, secret_id, value)


def assert_no_values(text: str) -> None:
    for value in (*CANARIES, *NEW_VALUES):
        assert value not in text


def commit_path(preview_id: str) -> str:
    return f"/ops/apex-omni/secrets/rotations/{preview_id}/commit"


def cancel_path(preview_id: str) -> str:
    return f"/ops/apex-omni/secrets/rotations/{preview_id}"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def checks_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in body["checks"]}


def audit_rows(stack: OmniStack, action: str) -> list[dict[str, Any]]:
    engine = create_engine(sync_url(stack.database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(secret_access_events)
                .where(secret_access_events.c.action == action)
                .order_by(secret_access_events.c.id)
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


async def expire_preview(stack: OmniStack, preview_id: str) -> None:
    """Move a preview (and its lock) into the past, as if 15 minutes had gone by.

    Runs in a thread: a blocking write on the event loop's thread could wait for the SQLite
    write lock of an app transaction that needs the loop to finish.
    """
    await asyncio.to_thread(_expire_preview, stack.database_url, preview_id)


def _expire_preview(url: str, preview_id: str) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(rotation_previews)
                .where(rotation_previews.c.preview_id == preview_id)
                .values(expires_at=past)
            )
            conn.execute(
                update(secret_metadata)
                .where(secret_metadata.c.preview_id == preview_id)
                .values(preview_expires_at=past)
            )
    finally:
        engine.dispose()


async def preview(
    stack: OmniStack,
    member: str = "api_key",
    candidate: str | None = None,
) -> dict[str, Any]:
    body: dict[str, str] = {"secretType": member}
    if candidate is not None:
        body["candidateVersion"] = candidate
    response = await stack.request("POST", PREVIEW, json=body, scopes=ROTATE)
    assert response.status_code == 200, response.text
    assert_no_values(response.text)
    result: dict[str, Any] = response.json()
    return result


async def ready_api_preview(stack: OmniStack) -> dict[str, Any]:
    add_versions(stack, NEW_API)
    stack.apex.accept(new_credentials())
    body = await preview(stack)
    assert body["ready"] is True, body["checks"]
    return body


class TestPreview:
    async def test_happy_path(self, omni_stack: OmniStack) -> None:
        """A new version of every member → ready, candidates listed, due date a period ahead."""
        before = datetime.now(UTC)
        body = await ready_api_preview(omni_stack)
        assert body["group"] == "api_credentials"
        assert set(body) == {
            "previewId",
            "group",
            "expiresAt",
            "ready",
            "members",
            "currentDueAt",
            "nextDueAtIfCommitted",
            "checks",
        }
        assert body["members"] == [
            {
                "secretType": name,
                "currentVersion": "1",
                "candidateVersion": "2",
                "candidateState": "ENABLED",
            }
            for name in ("api_key", "api_secret", "api_passphrase")
        ]
        assert [c["name"] for c in body["checks"]] == CHECK_NAMES
        assert all(c["ok"] and c["detail"] for c in body["checks"])
        next_due = parse_time(body["nextDueAtIfCommitted"])
        assert abs(next_due - (before + timedelta(days=365))) < timedelta(seconds=30)
        expires = parse_time(body["expiresAt"])
        assert abs(expires - (before + timedelta(minutes=15))) < timedelta(seconds=30)
        assert parse_time(body["currentDueAt"]) > before + timedelta(days=364)
        # The self-test signed with the candidate key, not the served one.
        assert omni_stack.apex.signing_keys()[-1] == NEW_API["apex-omni-api-key"]

    async def test_status_shows_the_open_preview(self, omni_stack: OmniStack) -> None:
        """While a preview is open, status says previewOpen for the group's members only."""
        await ready_api_preview(omni_stack)
        status = (await omni_stack.request("GET", STATUS)).json()
        open_by_type = {s["secretType"]: s["rotation"]["previewOpen"] for s in status["secrets"]}
        assert open_by_type == {
            "api_key": True,
            "api_secret": True,
            "api_passphrase": True,
            "zk_seeds": False,
            "zk_l2_key": False,
        }

    async def test_second_preview_conflicts(self, omni_stack: OmniStack) -> None:
        """A second preview of the same group → 409 naming the holder's preview and expiry."""
        first = await ready_api_preview(omni_stack)
        response = await omni_stack.request(
            "POST", PREVIEW, json={"secretType": "api_passphrase"}, scopes=ROTATE
        )
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "ROTATION_IN_PROGRESS"
        assert error["details"]["previewId"] == first["previewId"]
        assert parse_time(error["details"]["expiresAt"]) == parse_time(first["expiresAt"])
        metrics = (await omni_stack.client.get("/metrics")).text
        assert (
            'omni_secret_failures_total{operation="rotation",reason="ROTATION_IN_PROGRESS",'
            'secret_type="api_key"} 1.0'
        ) in metrics
        await omni_stack.wait_for(
            lambda: any(
                row["result"] == "conflict"
                and row["details"]["error"]["previewId"] == first["previewId"]
                for row in audit_rows(omni_stack, "rotation_preview")
            ),
            what="the conflict audit row (written in the background)",
        )

    async def test_other_group_is_not_blocked(self, omni_stack: OmniStack) -> None:
        """An open api_credentials preview does not lock zk_keys."""
        await ready_api_preview(omni_stack)
        add_versions(omni_stack, NEW_ZK)
        body = await preview(omni_stack, "zk_seeds")
        assert body["group"] == "zk_keys"

    async def test_zk_keys_self_test_not_applicable(self, omni_stack: OmniStack) -> None:
        """zk_keys previews work: the ApeX self-test is reported as not applicable and ok."""
        add_versions(omni_stack, NEW_ZK)
        calls_before = len(omni_stack.apex.requests)
        body = await preview(omni_stack, "zk_l2_key")
        assert body["ready"] is True
        assert [m["secretType"] for m in body["members"]] == ["zk_seeds", "zk_l2_key"]
        self_test = checks_of(body)["apex_self_test"]
        assert self_test["ok"] is True
        assert "does not apply" in self_test["detail"]
        assert len(omni_stack.apex.requests) == calls_before

    async def test_candidate_equal_to_active(self, omni_stack: OmniStack) -> None:
        """No new version: candidates_differ fails, ready is false, commit is 409 not ready."""
        body = await preview(omni_stack)
        assert body["ready"] is False
        differ = checks_of(body)["candidates_differ"]
        assert differ["ok"] is False
        assert "already the active version" in differ["detail"]
        response = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "PREVIEW_NOT_READY"

    async def test_same_payload_under_a_new_version_is_not_ready(
        self, omni_stack: OmniStack
    ) -> None:
        """v2 re-uploading v1's value: candidates_differ compares digests and fails; 409."""
        add_versions(omni_stack, {k: FAKE_VALUES[k] for k in NEW_API})
        body = await preview(omni_stack)
        checks = checks_of(body)
        assert body["ready"] is False
        assert checks["candidates_newer"]["ok"] is True
        assert checks["candidates_differ"]["ok"] is False
        assert "same payload (SHA-256) as active v1" in checks["candidates_differ"]["detail"]
        response = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 409

    async def test_older_candidate_is_not_ready(self, omni_stack: OmniStack) -> None:
        """After rotating to v2, a preview of v1 (a rollback) fails candidates_newer; 409."""
        add_versions(omni_stack, NEW_API)
        omni_stack.apex.accept(new_credentials())
        first = await preview(omni_stack)
        assert first["ready"] is True
        committed = await omni_stack.request("POST", commit_path(first["previewId"]), scopes=ROTATE)
        assert committed.status_code == 200
        body = await preview(omni_stack, candidate="1")
        checks = checks_of(body)
        assert body["ready"] is False
        assert checks["candidates_newer"]["ok"] is False
        assert (
            "candidate v1 is not newer than the active v2" in checks["candidates_newer"]["detail"]
        )
        response = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 409

    async def test_apex_rejects_candidate(self, omni_stack: OmniStack) -> None:
        """ApeX refusing the candidate credentials fails apex_self_test (and only it)."""
        add_versions(omni_stack, NEW_API)  # not accepted by the fake ApeX
        body = await preview(omni_stack)
        checks = checks_of(body)
        assert body["ready"] is False
        assert checks["apex_self_test"]["ok"] is False
        assert "refused" in checks["apex_self_test"]["detail"]
        assert all(checks[name]["ok"] for name in CHECK_NAMES[:4])

    async def test_checksum_mismatch(self, omni_stack: OmniStack) -> None:
        """A candidate whose CRC32C keeps failing fails checksums_valid, not the request."""
        add_versions(omni_stack, NEW_API)
        omni_stack.apex.accept(new_credentials())
        omni_stack.emulator.corrupt_checksum_next(100)
        body = await preview(omni_stack)
        omni_stack.emulator.clear_faults()
        checks = checks_of(body)
        assert body["ready"] is False
        assert checks["checksums_valid"]["ok"] is False
        assert "CRC32C mismatch" in checks["checksums_valid"]["detail"]
        assert checks["apex_self_test"]["ok"] is False

    async def test_explicit_candidate_version(self, omni_stack: OmniStack) -> None:
        """candidateVersion "2" picks version 2 of every member."""
        add_versions(omni_stack, NEW_API)
        add_versions(omni_stack, NEW_API)  # version 3 is newer; we ask for 2
        omni_stack.apex.accept(new_credentials())
        body = await preview(omni_stack, candidate="2")
        assert {m["candidateVersion"] for m in body["members"]} == {"2"}
        assert body["ready"] is True

    @pytest.mark.parametrize("candidate", ["abc", "0", "99", "-1", "2.0"])
    async def test_bad_candidate_version_is_422(
        self, omni_stack: OmniStack, candidate: str
    ) -> None:
        """A malformed or missing candidate version → 422 and the group stays unlocked."""
        response = await omni_stack.request(
            "POST",
            PREVIEW,
            json={"secretType": "api_key", "candidateVersion": candidate},
            scopes=ROTATE,
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "VALIDATION_FAILED"
        await preview(omni_stack)  # nothing was locked

    async def test_disabled_candidate_is_422(self, omni_stack: OmniStack) -> None:
        """A candidate version that is not ENABLED → 422."""
        add_versions(omni_stack, NEW_API)
        omni_stack.emulator.disable(PROJECT, "apex-omni-api-secret", 2)
        response = await omni_stack.request(
            "POST", PREVIEW, json={"secretType": "api_key", "candidateVersion": "2"}, scopes=ROTATE
        )
        assert response.status_code == 422
        assert "DISABLED" in response.json()["error"]["message"]

    async def test_unknown_type_is_422(self, omni_stack: OmniStack) -> None:
        """An unknown secret type → 422 VALIDATION_FAILED."""
        response = await omni_stack.request(
            "POST", PREVIEW, json={"secretType": "nope"}, scopes=ROTATE
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "VALIDATION_FAILED"

    async def test_requires_rotate_scope(self, omni_stack: OmniStack) -> None:
        """omni-secrets:read is not enough to preview."""
        response = await omni_stack.request(
            "POST", PREVIEW, json={"secretType": "api_key"}, scopes=("omni-secrets:read",)
        )
        assert response.status_code == 403

    async def test_audit_row_has_no_values(self, omni_stack: OmniStack) -> None:
        """The rotation_preview audit row names versions and checks, never a value."""
        body = await ready_api_preview(omni_stack)
        rows = audit_rows(omni_stack, "rotation_preview")
        assert len(rows) == 1
        details = rows[0]["details"]
        assert details["previewId"] == body["previewId"]
        assert details["candidateVersions"] == {
            "api_key": "2",
            "api_secret": "2",
            "api_passphrase": "2",
        }
        assert details["ready"] is True
        assert_no_values(json.dumps(rows, default=str))


class TestCommit:
    async def test_commit_pins_new_versions(self, omni_stack: OmniStack) -> None:
        """Commit → new versions active, new due date, and the consumer signs with the new key."""
        body = await ready_api_preview(omni_stack)
        before = datetime.now(UTC)
        response = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 200, response.text
        committed = response.json()
        assert_no_values(response.text)
        assert committed["group"] == "api_credentials"
        assert committed["members"] == [
            {"secretType": t, "activeVersion": "2"}
            for t in ("api_key", "api_secret", "api_passphrase")
        ]
        due = parse_time(committed["dueAt"])
        rotated = parse_time(committed["lastRotatedAt"])
        assert abs(rotated - before) < timedelta(seconds=30)
        assert due - rotated == timedelta(days=365)

        status = (await omni_stack.request("GET", STATUS)).json()
        by_type = {s["secretType"]: s for s in status["secrets"]}
        for name in ("api_key", "api_secret", "api_passphrase"):
            assert by_type[name]["version"] == "2"
            assert parse_time(by_type[name]["rotation"]["dueAt"]) == due
            assert by_type[name]["rotation"]["previewOpen"] is False
        assert by_type["zk_seeds"]["version"] == "1"

        account = await omni_stack.request("GET", "/apex-omni/account")
        assert account.status_code == 200
        assert omni_stack.apex.signing_keys()[-1] == NEW_API["apex-omni-api-key"]

        commits = audit_rows(omni_stack, "rotation_commit")
        assert len(commits) == 1
        assert commits[0]["details"]["activeVersions"]["api_secret"] == "2"
        assert_no_values(json.dumps(commits, default=str))

    async def test_commit_twice_is_404(self, omni_stack: OmniStack) -> None:
        """A committed preview cannot be committed again."""
        body = await ready_api_preview(omni_stack)
        first = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert first.status_code == 200
        second = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert second.status_code == 404
        assert second.json()["error"]["code"] == "NOT_FOUND"

    async def test_unknown_preview_is_404(self, omni_stack: OmniStack) -> None:
        """Commit of an unknown preview id → 404."""
        response = await omni_stack.request("POST", commit_path("no-such-preview"), scopes=ROTATE)
        assert response.status_code == 404

    @pytest.mark.parametrize("preview_id", ["%00", "x" * 300, "a%20b", "%C3%A9"])
    async def test_implausible_preview_id_is_404(
        self, omni_stack: OmniStack, preview_id: str
    ) -> None:
        """Ids this service never issues (NUL bytes, very long, odd characters) are simply 404."""
        for method, path in (
            ("POST", commit_path(preview_id)),
            ("DELETE", cancel_path(preview_id)),
        ):
            response = await omni_stack.request(method, path, scopes=ROTATE)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "NOT_FOUND"

    async def test_expired_preview_is_404(self, omni_stack: OmniStack) -> None:
        """A preview past its 15 minutes cannot be committed, and its lock is free again."""
        body = await ready_api_preview(omni_stack)
        await expire_preview(omni_stack, body["previewId"])
        response = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 404
        again = await preview(omni_stack)
        assert again["previewId"] != body["previewId"]

    async def test_commit_releases_lock(self, omni_stack: OmniStack) -> None:
        """After a commit the group can be previewed again (and the new pin is current)."""
        body = await ready_api_preview(omni_stack)
        await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        again = await preview(omni_stack)
        assert {m["currentVersion"] for m in again["members"]} == {"2"}
        assert again["ready"] is False  # candidate 2 is now the active version


class TestCancel:
    async def test_cancel_frees_the_group(self, omni_stack: OmniStack) -> None:
        """Cancel → 204, then a new preview succeeds; the old one can no longer be committed."""
        body = await ready_api_preview(omni_stack)
        response = await omni_stack.request("DELETE", cancel_path(body["previewId"]), scopes=ROTATE)
        assert response.status_code == 204
        assert response.content == b""
        again = await preview(omni_stack)
        assert again["previewId"] != body["previewId"]
        stale = await omni_stack.request("POST", commit_path(body["previewId"]), scopes=ROTATE)
        assert stale.status_code == 404
        cancels = audit_rows(omni_stack, "rotation_cancel")
        assert [row["details"]["previewId"] for row in cancels] == [body["previewId"]]

    async def test_cancel_unknown_or_twice_is_404(self, omni_stack: OmniStack) -> None:
        """Cancel of an unknown preview, or of one already cancelled → 404."""
        unknown = await omni_stack.request("DELETE", cancel_path("no-such-preview"), scopes=ROTATE)
        assert unknown.status_code == 404
        body = await preview(omni_stack)
        first = await omni_stack.request("DELETE", cancel_path(body["previewId"]), scopes=ROTATE)
        assert first.status_code == 204
        second = await omni_stack.request("DELETE", cancel_path(body["previewId"]), scopes=ROTATE)
        assert second.status_code == 404

    async def test_requires_rotate_scope(self, omni_stack: OmniStack) -> None:
        """Cancel needs omni-secrets:rotate."""
        response = await omni_stack.request(
            "DELETE", cancel_path("whatever"), scopes=("omni-secrets:read",)
        )
        assert response.status_code == 403
