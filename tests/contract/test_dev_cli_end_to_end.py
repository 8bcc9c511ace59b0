"""``omni-secrets dev`` (what ``make run`` runs) driven by every CLI verb through its env file.

One real ``dev`` process on a free port in a temp dir; each command runs in ``bash`` after
``source <data-dir>/env`` with no other OMNI_* variable and no ``--url``/``--token``, as an
operator would after ``make run``. Includes a full rotation of ``api_credentials`` through
``gsm versions add`` -> ``rotation preview`` -> ``rotation commit`` with the ApeX self-test
passing against the dev fake ApeX.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_secrets import __version__
from tests.ports import free_port

CLI = shutil.which("omni-secrets", path=str(Path(sys.executable).parent)) or "omni-secrets"
NEW_VALUES = {
    "api_key": "fake-rotated-api-key",
    "api_secret": "fake-rotated-api-secret",
    "api_passphrase": "fake-rotated-api-passphrase",
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class DevService:
    data_dir: Path
    cwd: Path
    port: int
    env: dict[str, str]

    def run(self, command: str, *, stdin: str | None = None, source: bool = True) -> Result:
        """Run ``omni-secrets <command>`` in bash, after sourcing the env file."""
        prefix = f"source {shlex.quote(str(self.data_dir / 'env'))} && " if source else ""
        done = subprocess.run(
            ["bash", "-c", f"{prefix}{shlex.quote(CLI)} {command}"],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Result(done.returncode, done.stdout, done.stderr)


def clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    env.update({"GRPC_VERBOSITY": "ERROR", "COLUMNS": "80", "NO_COLOR": "1"})
    return env


@pytest.fixture(scope="module")
def dev_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevService]:
    cwd = tmp_path_factory.mktemp("operator")
    data_dir = cwd / ".omni-dev"
    port = free_port()
    env = clean_environment()
    proc = subprocess.Popen(
        [CLI, "dev", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dev exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("dev did not become ready within 60 s")
            time.sleep(0.1)
        yield DevService(data_dir=data_dir, cwd=cwd, port=port, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class TestDevEnvFile:
    def test_exports_every_documented_variable_privately(self, dev_service: DevService) -> None:
        """The env file exports the contract's variables, one token per scope, mode 0600."""
        env_file = dev_service.data_dir / "env"
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        exported = {
            line.split("=", 1)[0].removeprefix("export ")
            for line in env_file.read_text().splitlines()
            if line.startswith("export ")
        }
        assert {
            "OMNI_URL",
            "OMNI_DATABASE_URL",
            "OMNI_AUTH_HS256_SECRET",
            "OMNI_INTEGRITY_KEY_FILE",
            "OMNI_GSM_ENDPOINT",
            "GCP_PROJECT_ID",
            "OMNI_ENVIRONMENT",
            "OMNI_TOKEN_OMNI_SECRETS_READ",
            "OMNI_TOKEN_OMNI_SECRETS_ROTATE",
            "OMNI_TOKEN_OMNI_SECRETS_BREAK_GLASS",
            "OMNI_TOKEN_OMNI_SECRETS_REFRESH",
            "OMNI_TOKEN_APEX_OMNI_READ",
        } <= exported
        on_path = dev_service.run("--version", source=True)
        assert on_path.code == 0
        bare = subprocess.run(
            ["bash", "-c", f"source {shlex.quote(str(env_file))} && command -v omni-secrets"],
            env={k: v for k, v in dev_service.env.items() if k != "PATH"}
            | {"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert bare.stdout.strip() == CLI, bare.stderr
        key_file = dev_service.data_dir / "integrity.key"
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert len(key_file.read_text().strip()) >= 44  # base64 of >= 32 bytes

    def test_a_busy_port_fails_before_printing_anything(self, dev_service: DevService) -> None:
        """A second dev on the same port: exit 2, nothing on stdout, one line on stderr."""
        result = dev_service.run(f"dev --port {dev_service.port} --data-dir other", source=False)
        assert result.code == 2
        assert result.out == ""
        assert result.err.count("\n") == 1
        assert str(dev_service.port) in result.err


class TestEveryVerb:
    def test_version(self, dev_service: DevService) -> None:
        """--version prints the package version."""
        result = dev_service.run("--version")
        assert (result.code, result.out.strip()) == (0, f"omni-secrets {__version__}")

    def test_status_table_and_json_agree(self, dev_service: DevService) -> None:
        """status with no flags after sourcing; the table's days equal the JSON's daysUntilDue."""
        as_json = dev_service.run("status --json")
        assert as_json.code == 0, as_json.err
        body = as_json.json()
        assert body["cache"]["state"] == "ready"
        table = dev_service.run("status")
        assert table.code == 0, table.err
        assert max(len(line) for line in table.out.splitlines()) <= 80
        for item in body["secrets"]:
            days = item["rotation"]["daysUntilDue"]
            row = next(
                line for line in table.out.splitlines() if line.startswith(item["secretType"] + " ")
            )
            assert f"due in {days}d" in row

    def test_token_from_the_env_file(self, dev_service: DevService) -> None:
        """token works after sourcing (the HS256 secret is in the env file)."""
        result = dev_service.run("token --scope omni-secrets:read")
        assert result.code == 0, result.err
        assert result.out.count(".") == 2

    def test_token_without_sourcing_points_at_the_env_file(self, dev_service: DevService) -> None:
        """Without the env file loaded, token says to source it (one line, exit 2)."""
        result = dev_service.run("token --scope omni-secrets:read", source=False)
        assert result.code == 2
        assert "source .omni-dev/env" in result.err
        assert result.err.count("\n") == 1

    def test_refresh_then_refresh_status(self, dev_service: DevService) -> None:
        """refresh queues (json), refresh status looks it up, --wait waits."""
        queued = dev_service.run("refresh --json")
        assert queued.code == 0, queued.err
        request_id = queued.json()["requestId"]
        looked_up = dev_service.run(f"refresh status {request_id} --wait --json")
        assert looked_up.code == 0, looked_up.err
        assert looked_up.json()["status"] == "succeeded"
        table = dev_service.run(f"refresh status {request_id}")
        assert table.code == 0 and "succeeded" in table.out
        unknown = dev_service.run("refresh status fake-unknown-id")
        assert unknown.code == 1 and "NOT_FOUND" in unknown.err

    def test_rotation_check_and_audit_verify_read_the_dev_database(
        self, dev_service: DevService
    ) -> None:
        """Both DB commands use the sourced OMNI_DATABASE_URL, and find it even unsourced."""
        for source in (True, False):
            check = dev_service.run("rotation check --json", source=source)
            assert check.code == 0, check.err
            assert check.json()["status"] == "ok"
            verify = dev_service.run("audit verify", source=source)
            assert verify.code == 0, verify.err
            # Anchored once the service has written its first anchor (within 60 s), else a
            # warning: never "intact" without an anchor (contract section 17).
            assert verify.out.startswith(("audit chain intact", "audit chain verified, no anchor"))
            assert ("intact" in verify.out) != ("no anchor" in verify.err)
        assert not (dev_service.cwd / "omni-secrets.db").exists()

    def test_db_commands(self, dev_service: DevService) -> None:
        """db current is at head; db seed keeps the existing rows."""
        current = dev_service.run("db current")
        assert current.code == 0 and "(head)" in current.out
        seeded = dev_service.run("db seed")
        assert seeded.code == 0, seeded.err
        assert "0 inserted" in seeded.out

    def test_break_glass_keygen_push_list_revoke(self, dev_service: DevService) -> None:
        """push seals to the served key (id printed and checked), list shows it, revoke ends it."""
        keygen = dev_service.run(f"break-glass keygen --private-key-out {dev_service.cwd}/bg.key")
        assert keygen.code == 0 and keygen.out.startswith("OMNI_BREAKGLASS_PUBLIC_KEY=")
        pushed = dev_service.run(
            "break-glass push --secret-type zk_seeds --value-stdin --ttl 5m "
            "--reason 'rehearsal' --json",
            stdin="fake-break-glass-zk-seeds\n",
        )
        assert pushed.code == 0, pushed.err
        body = pushed.json()
        assert "fake-break-glass-zk-seeds" not in pushed.out + pushed.err
        listed = dev_service.run("break-glass list --json")
        assert [o["overrideId"] for o in listed.json()["overrides"]] == [body["overrideId"]]
        refused = dev_service.run(
            "break-glass push --secret-type zk_seeds --value-stdin --ttl 5m --reason x "
            "--key-id 0000000000000000",
            stdin="fake-break-glass-zk-seeds\n",
        )
        assert refused.code == 2 and body["keyId"] in refused.err
        revoked = dev_service.run(f"break-glass revoke {body['overrideId']}")
        assert revoked.code == 0, revoked.err
        assert dev_service.run("break-glass list --json").json() == {"overrides": []}

    def test_full_rotation_of_api_credentials(self, dev_service: DevService) -> None:
        """gsm versions add x3 -> rotation preview (self-test passes) -> commit -> served."""
        before = {
            item["secretType"]: item["version"]
            for item in dev_service.run("status --json").json()["secrets"]
        }
        for secret_type, value in NEW_VALUES.items():
            added = dev_service.run(
                f"gsm versions add --secret-type {secret_type} --value-stdin --json", stdin=value
            )
            assert added.code == 0, added.err
            assert value not in added.out + added.err
            assert added.json()["state"] == "ENABLED"
        listed = dev_service.run("gsm versions list --secret-type api_key --json")
        assert listed.json()["versions"][0]["state"] == "ENABLED"

        preview = dev_service.run("rotation preview --secret-type api_key --json")
        assert preview.code == 0, preview.err
        body = preview.json()
        assert body["ready"] is True, body["checks"]
        assert {c["name"]: c["ok"] for c in body["checks"]}["apex_self_test"] is True

        # A second preview meets the lock; cancel releases it; a new preview gets it again.
        blocked = dev_service.run("rotation preview --secret-type api_secret")
        assert blocked.code == 1 and "ROTATION_IN_PROGRESS" in blocked.err
        cancelled = dev_service.run(f"rotation cancel {body['previewId']} --json")
        assert cancelled.json() == {"previewId": body["previewId"], "cancelled": True}
        preview = dev_service.run("rotation preview --secret-type api_secret --json")
        assert preview.code == 0, preview.err

        committed = dev_service.run(f"rotation commit {preview.json()['previewId']} --json")
        assert committed.code == 0, committed.err
        active = {m["secretType"]: m["activeVersion"] for m in committed.json()["members"]}
        after = {
            item["secretType"]: item["version"]
            for item in dev_service.run("status --json").json()["secrets"]
        }
        for secret_type in NEW_VALUES:
            assert active[secret_type] == after[secret_type]
            assert int(after[secret_type]) == int(before[secret_type]) + 1

        # The dev fake ApeX accepts the new set: the served credentials sign successfully.
        self_test = dev_service.run("self-test --json")
        assert self_test.code == 0, self_test.err
        assert self_test.json()["ok"] is True

    def test_disable_and_enable_a_version(self, dev_service: DevService) -> None:
        """gsm versions disable/enable change a version's state; the served (aliased) one only
        with --force."""
        refused = dev_service.run("gsm versions disable --secret-type zk_l2_key 1")
        assert refused.code == 1 and "alias 'current'" in refused.err, refused.err
        disabled = dev_service.run("gsm versions disable --secret-type zk_l2_key 1 --force --json")
        assert disabled.code == 0, disabled.err
        assert disabled.json()["state"] == "DISABLED"
        enabled = dev_service.run("gsm versions enable --secret-type zk_l2_key 1")
        assert enabled.code == 0 and "ENABLED" in enabled.out
        missing = dev_service.run("gsm versions enable --secret-type zk_l2_key 99")
        assert missing.code == 1 and "NOT_FOUND" in missing.err
