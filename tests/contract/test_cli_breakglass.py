"""`omni-secrets break-glass keygen|push|revoke` (contract section 1), as an operator runs them.

``keygen`` and the local validation of ``push`` run through the console script's ``main``
in-process. ``push``/``revoke`` against a service run as real subprocesses of the installed
``omni-secrets`` script, talking HTTP to the contract stack's app served by uvicorn on a free
port in the test's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import socket
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from omni_secrets.bootstrap import Overrides
from omni_secrets.cli import main
from omni_secrets.domain.break_glass import generate_private_key, load_key_pair
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.exchange import ApexCredentials
from tests.contract.conftest import FAKE_VALUES, BreakGlassKeys, OmniStack, StackFactory
from tests.contract.serving import cli, over_tcp

STATUS = "/ops/apex-omni/secrets/status"
OVERRIDE_KEY = "fake-cli-override-api-key-6a90"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


class TestKeygen:
    def test_writes_a_0600_key_and_prints_the_public_key(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """keygen writes a mode-0600 private key and prints the matching public key and key id."""
        key_file = tmp_path / "breakglass.key"
        code, out, _ = run(["break-glass", "keygen", "--private-key-out", str(key_file)], capsys)
        assert code == 0
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        match = re.fullmatch(
            r"OMNI_BREAKGLASS_PUBLIC_KEY=([A-Za-z0-9+/]{43}=)\n# key id: ([0-9a-f]{16})\n", out
        )
        assert match is not None, out
        public_b64, printed_id = match.groups()
        assert printed_id == hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]

        private_text = key_file.read_text()
        assert private_text.endswith("\n")
        pair = load_key_pair(public_b64, private_text)
        assert pair.key_id == printed_id
        assert private_text.strip() not in out

    def test_mode_is_0600_even_under_a_permissive_umask(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The key file is 0600 whatever the umask (no group or world bits)."""
        key_file = tmp_path / "k"
        previous = os.umask(0o000)
        try:
            code, _, _ = run(["break-glass", "keygen", "--private-key-out", str(key_file)], capsys)
        finally:
            os.umask(previous)
        assert code == 0
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    def test_refuses_to_overwrite(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An existing file is left untouched and the command exits 2 with one clear line."""
        key_file = tmp_path / "existing.key"
        key_file.write_text("fake-existing-key\n")
        code, out, err = run(["break-glass", "keygen", "--private-key-out", str(key_file)], capsys)
        assert code == 2
        assert out == ""
        assert err == f"omni-secrets: {key_file} already exists; refusing to overwrite a key file\n"
        assert key_file.read_text() == "fake-existing-key\n"

    def test_refuses_a_symlink(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A symlink at the path (even a dangling one) is not followed."""
        target = tmp_path / "elsewhere"
        link = tmp_path / "link.key"
        link.symlink_to(target)
        code, _, err = run(["break-glass", "keygen", "--private-key-out", str(link)], capsys)
        assert code == 2
        assert "already exists" in err
        assert not target.exists()

    def test_missing_directory(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A path in a directory that does not exist exits 2 with one line, no traceback."""
        code, _, err = run(
            ["break-glass", "keygen", "--private-key-out", str(tmp_path / "no" / "k")], capsys
        )
        assert code == 2
        assert err.count("\n") == 1
        assert "cannot create" in err

    def test_requires_the_output_option(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --private-key-out the command is a usage error (exit 2)."""
        code, _, err = run(["break-glass", "keygen"], capsys)
        assert code == 2
        assert "--private-key-out" in err


# --- push and revoke ---------------------------------------------------------------------------


@contextlib.contextmanager
def silent_listener() -> Iterator[tuple[str, socket.socket]]:
    """A loopback port that accepts nothing on its own; shows whether anyone connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", sock
    finally:
        sock.close()


def was_contacted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def parse_push(out: str) -> dict[str, str]:
    match = re.fullmatch(r"keyId=([0-9a-f]{16})\noverrideId=(\S+)\nexpiresAt=(\S+)\n", out)
    assert match is not None, out
    return {"keyId": match.group(1), "overrideId": match.group(2), "expiresAt": match.group(3)}


def push_args(url: str, token: str, value_file: Path, *extra: str) -> list[str]:
    return [
        "break-glass",
        "push",
        "--url",
        url,
        "--token",
        token,
        "--secret-type",
        "api_key",
        "--value-file",
        str(value_file),
        "--reason",
        "GSM outage",
        *extra,
    ]


def status_item(body: dict[str, Any], secret_type: str) -> dict[str, Any]:
    return next(s for s in body["secrets"] if s["secretType"] == secret_type)


class TestPushLocalChecks:
    @pytest.mark.parametrize("ttl", ["31m", "1801", "1801s", "90m"])
    def test_ttl_over_30m_exits_2_before_any_network_call(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], ttl: str
    ) -> None:
        """A TTL over 30 minutes exits 2 with one line and never connects to the API."""
        value = tmp_path / "value"
        value.write_text(OVERRIDE_KEY + "\n")
        with silent_listener() as (url, sock):
            code, out, err = run([*push_args(url, "fake-token", value), "--ttl", ttl], capsys)
            assert not was_contacted(sock)
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1
        assert "exceeds the maximum of 1800s" in err

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"--ttl": "1h"}, "invalid duration"),
            ({"--ttl": "30s"}, "below the minimum"),
            ({"--secret-type": "nope"}, "unknown secret type"),
            ({"--reason": "  "}, "--reason must not be empty"),
            ({"value": ""}, "the value is empty"),
            ({"value": "\n"}, "the value is empty"),
            ({"value": b"\xff\xfe"}, "not UTF-8"),
            ({"--public-key": "not-a-key"}, "--public-key"),
            ({"--value-stdin": ""}, "exactly one of"),
        ],
    )
    def test_bad_input_exits_2_without_contact(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        change: dict[str, Any],
        expected: str,
    ) -> None:
        """Bad TTL, type, reason, value or key: exit 2, one line, no network call, no value."""
        value = tmp_path / "value"
        raw = change.pop("value", OVERRIDE_KEY)
        value.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
        options = {"--ttl": "10m", "--secret-type": "api_key", "--reason": "GSM outage"}
        options.update(change)
        with silent_listener() as (url, sock):
            argv = ["break-glass", "push", "--url", url, "--token", "fake-token"]
            argv += ["--value-file", str(value)]
            for name, option_value in options.items():
                argv += [name, option_value] if option_value != "" else [name]
            code, _, err = run(argv, capsys)
            assert not was_contacted(sock)
        assert code == 2, err
        assert err.count("\n") == 1
        assert expected in err
        assert OVERRIDE_KEY not in err

    def test_key_id_mismatch_with_a_given_key_exits_2_without_contact(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--public-key whose id is not --key-id: exit 2 naming both ids, nothing sent."""
        _, public_b64, key_id = generate_private_key()
        value = tmp_path / "value"
        value.write_text(OVERRIDE_KEY)
        with silent_listener() as (url, sock):
            argv = [*push_args(url, "fake-token", value), "--ttl", "10m"]
            argv += ["--public-key", public_b64, "--key-id", "0000000000000000"]
            code, out, err = run(argv, capsys)
            assert not was_contacted(sock)
        assert (code, out) == (2, "")
        assert err.count("\n") == 1
        assert key_id in err and "0000000000000000" in err

    @pytest.mark.parametrize("url", ["http://10.0.0.8:8080", "http://omni-secrets.internal"])
    def test_plain_http_to_a_remote_host_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
    ) -> None:
        """A non-loopback http:// URL is refused before anything is read or sent."""
        value = tmp_path / "value"
        value.write_text(OVERRIDE_KEY)
        code, out, err = run([*push_args(url, "fake-token", value), "--ttl", "10m"], capsys)
        assert (code, out) == (2, "")
        assert "--insecure" in err
        assert err.count("\n") == 1

    def test_missing_file_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unreadable value file exits 2 with one line."""
        with silent_listener() as (url, sock):
            argv = [*push_args(url, "fake-token", tmp_path / "missing"), "--ttl", "10m"]
            code, _, err = run(argv, capsys)
            assert not was_contacted(sock)
        assert code == 2
        assert "cannot read" in err


@pytest.fixture
async def served_stack(
    omni_stack_factory: StackFactory, break_glass_keys: BreakGlassKeys
) -> AsyncIterator[tuple[OmniStack, ManualClock, str]]:
    """A break-glass-enabled stack on a manual clock, served over TCP."""
    clock = ManualClock(datetime.now(UTC))
    stack = await omni_stack_factory(
        overrides=Overrides(clock=clock, break_glass_expiry_interval_seconds=0.05),
        OMNI_CACHE_TTL_SECONDS="86400",
        **break_glass_keys.env(),
    )
    async with over_tcp(stack.app) as url:
        yield stack, clock, url


class TestPushAndRevoke:
    async def test_push_serves_signs_then_expires_back_to_gsm(
        self, served_stack: tuple[OmniStack, ManualClock, str], tmp_path: Path
    ) -> None:
        """push --ttl 10m: served and signed with; after expiry GSM again, audited by system."""
        stack, clock, url = served_stack
        stack.apex.accept(
            ApexCredentials.of(
                OVERRIDE_KEY,
                FAKE_VALUES["apex-omni-api-secret"],
                FAKE_VALUES["apex-omni-api-passphrase"],
            )
        )
        value = tmp_path / "value"
        value.write_text(OVERRIDE_KEY + "\n")
        token = stack.token("omni-secrets:break-glass", subject="oncall")
        code, out, err = await cli(
            *push_args(url, token, value, "--ttl", "10m", "--ticket", "INC-9")
        )
        assert code == 0, err
        pushed = parse_push(out)
        assert OVERRIDE_KEY not in out + err
        expires_at = datetime.fromisoformat(pushed["expiresAt"])
        assert expires_at == clock.now() + timedelta(minutes=10)

        item = status_item((await stack.request("GET", STATUS)).json(), "api_key")
        assert item["cacheSource"] == "break_glass"
        assert item["expiresAt"] == pushed["expiresAt"]
        assert item["breakGlass"]["overrideId"] == pushed["overrideId"]
        assert item["breakGlass"]["actor"] == "oncall"
        account = await stack.request("GET", "/apex-omni/account", scopes=("apex-omni:read",))
        assert account.status_code == 200, account.text
        assert stack.apex.signing_keys()[-1] == OVERRIDE_KEY
        assert (
            'omni_secret_break_glass_active{secret_type="api_key"} 1.0'
            in (await stack.client.get("/metrics")).text
        )

        clock.advance(10 * 60)
        item = status_item((await stack.request("GET", STATUS)).json(), "api_key")
        assert (item["cacheSource"], item["version"]) == ("gsm", "1")
        assert item["breakGlass"] == {"active": False}

        async def expired_rows() -> list[Any]:
            async with stack.services.uow_factory() as uow:
                return [e for e in await uow.audit.recent(50) if e.action == "break_glass_expire"]

        for _ in range(200):
            rows = await expired_rows()
            if rows:
                break
            await asyncio.sleep(0.05)
        [row] = rows
        assert (row.actor, row.secret_type) == ("system", "api_key")
        assert row.details["overrideId"] == pushed["overrideId"]
        async with stack.services.uow_factory() as uow:
            record = await uow.overrides.get(pushed["overrideId"])
        assert record is not None
        assert record.end_reason == "expired"
        metrics = (await stack.client.get("/metrics")).text
        assert 'omni_secret_break_glass_active{secret_type="api_key"} 0.0' in metrics
        await stack.request("GET", "/apex-omni/account", scopes=("apex-omni:read",))
        assert stack.apex.signing_keys()[-1] == FAKE_VALUES["apex-omni-api-key"]

        await stack.services.auditor.stop()  # flush queued rows to the file
        db_file = Path(stack.database_url.removeprefix("sqlite:///"))
        assert OVERRIDE_KEY.encode() not in await asyncio.to_thread(db_file.read_bytes)

    async def test_stdin_with_a_given_public_key_then_revoke(
        self, served_stack: tuple[OmniStack, ManualClock, str], break_glass_keys: BreakGlassKeys
    ) -> None:
        """--value-stdin and --public-key work; revoke ends it, a second revoke exits 1 (404)."""
        stack, _, url = served_stack
        token = stack.token("omni-secrets:break-glass")
        code, out, err = await cli(
            "break-glass",
            "push",
            "--url",
            url,
            "--token",
            token,
            "--secret-type",
            "api_secret",
            "--value-stdin",
            "--ttl",
            "900",
            "--reason",
            "GSM outage",
            "--public-key",
            break_glass_keys.public_key,
            stdin=b"fake-cli-stdin-secret\n",
        )
        assert code == 0, err
        override_id = parse_push(out)["overrideId"]
        assert stack.services.cache.get(SecretType.API_SECRET).value.reveal() == (  # type: ignore[union-attr]
            "fake-cli-stdin-secret"
        )

        code, out, err = await cli(
            "break-glass", "revoke", "--url", url, "--token", token, override_id
        )
        assert (code, out) == (0, f"revoked {override_id}\n"), err
        item = status_item((await stack.request("GET", STATUS)).json(), "api_secret")
        assert item["cacheSource"] == "gsm"

        code, out, err = await cli(
            "break-glass", "revoke", "--url", url, "--token", token, override_id
        )
        assert code == 1
        assert err.startswith("omni-secrets: NOT_FOUND: ")
        assert err.count("\n") == 1

    async def test_key_id_is_printed_and_checked_against_the_server(
        self,
        served_stack: tuple[OmniStack, ManualClock, str],
        break_glass_keys: BreakGlassKeys,
        tmp_path: Path,
    ) -> None:
        """push prints the key id it sealed to; a wrong --key-id sends nothing (exit 2)."""
        stack, _, url = served_stack
        value = tmp_path / "value"
        value.write_text(OVERRIDE_KEY)
        token = stack.token("omni-secrets:break-glass")
        code, out, err = await cli(
            *push_args(url, token, value, "--ttl", "10m", "--key-id", "ffffffffffffffff")
        )
        assert (code, out) == (2, ""), err
        assert break_glass_keys.key_id in err
        item = status_item((await stack.request("GET", STATUS)).json(), "api_key")
        assert item["breakGlass"] == {"active": False}

        code, out, err = await cli(
            *push_args(url, token, value, "--ttl", "10m", "--key-id", break_glass_keys.key_id)
        )
        assert code == 0, err
        pushed = parse_push(out)
        assert pushed["keyId"] == break_glass_keys.key_id

        read = stack.token("omni-secrets:read")
        code, out, err = await cli("break-glass", "list", "--url", url, "--token", read, "--json")
        assert code == 0, err
        [listed] = json.loads(out)["overrides"]
        assert listed["overrideId"] == pushed["overrideId"]
        assert listed["secretType"] == "api_key"
        assert listed["reason"] == "GSM outage"
        code, out, err = await cli("break-glass", "list", "--url", url, "--token", read)
        assert code == 0, err
        assert pushed["overrideId"] in out
        assert OVERRIDE_KEY not in out + err

        code, out, err = await cli(
            "break-glass", "revoke", "--url", url, "--token", token, "--json", pushed["overrideId"]
        )
        assert code == 0, err
        assert json.loads(out) == {"overrideId": pushed["overrideId"], "revoked": True}

    async def test_server_refusals_become_one_line(
        self, served_stack: tuple[OmniStack, ManualClock, str], tmp_path: Path
    ) -> None:
        """A key the service does not hold is refused (422 UNKNOWN_KEY_ID): exit 2, one line."""
        stack, _, url = served_stack
        _, other_public, _ = generate_private_key()
        value = tmp_path / "value"
        value.write_text(OVERRIDE_KEY)
        token = stack.token("omni-secrets:break-glass")
        code, out, err = await cli(
            *push_args(url, token, value, "--ttl", "10m", "--public-key", other_public)
        )
        assert (code, out) == (2, "")
        assert err.startswith("omni-secrets: UNKNOWN_KEY_ID: ")
        assert err.count("\n") == 1
        assert OVERRIDE_KEY not in err

    async def test_disabled_service_exits_3(
        self, omni_stack_factory: StackFactory, tmp_path: Path
    ) -> None:
        """Against a service without keys the public-key fetch answers 503: exit 3."""
        stack = await omni_stack_factory()
        value = tmp_path / "value"
        value.write_text(OVERRIDE_KEY)
        async with over_tcp(stack.app) as url:
            token = stack.token("omni-secrets:break-glass")
            code, _, err = await cli(*push_args(url, token, value, "--ttl", "10m"))
        assert code == 3
        assert "BREAK_GLASS_DISABLED" in err
