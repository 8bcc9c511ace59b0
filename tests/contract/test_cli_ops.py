"""`omni-secrets token`, `status` and `refresh` against a served stack (contract section 1)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

from tests.contract.conftest import CANARIES, HS256_SECRET, OmniStack, StackFactory
from tests.contract.serving import cli, over_tcp


@pytest.fixture
async def served(omni_stack_factory: StackFactory) -> AsyncIterator[tuple[OmniStack, str]]:
    stack = await omni_stack_factory()
    async with over_tcp(stack.app) as url:
        yield stack, url


def assert_no_canary(*texts: str) -> None:
    for canary in CANARIES:
        assert all(canary not in text for text in texts)


class TestToken:
    async def test_prints_a_verifiable_token(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """token signs an HS256 token with the configured secret, scopes and subject."""
        monkeypatch.setenv("OMNI_AUTH_HS256_SECRET", HS256_SECRET)
        monkeypatch.setenv("OMNI_ENVIRONMENT", "development")
        code, out, _ = await cli(
            "token",
            "--scope",
            "omni-secrets:read",
            "--scope",
            "apex-omni:read",
            "--subject",
            "ops-1",
        )
        assert code == 0
        claims = jwt.decode(
            out.strip(), HS256_SECRET, algorithms=["HS256"], audience="omni-secrets"
        )
        assert claims["sub"] == "ops-1"
        assert claims["scope"] == "omni-secrets:read apex-omni:read"
        assert claims["exp"] - claims["iat"] == 3600

    async def test_refuses_in_production(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """token exits 2 with one line when OMNI_ENVIRONMENT=production."""
        monkeypatch.setenv("OMNI_AUTH_HS256_SECRET", HS256_SECRET)
        monkeypatch.setenv("OMNI_ENVIRONMENT", "production")
        code, out, err = await cli("token", "--scope", "omni-secrets:read")
        assert code == 2
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert "production" in err

    async def test_unknown_scope(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A mistyped scope is refused rather than minted."""
        monkeypatch.setenv("OMNI_AUTH_HS256_SECRET", HS256_SECRET)
        code, _, err = await cli("token", "--scope", "omni-secrets:reed")
        assert code == 2
        assert "unknown scope" in err

    @pytest.mark.parametrize(
        ("secret", "subject", "fragment"),
        [
            ("fake-short-hs256-secret", "ops-1", "shorter than 32 bytes"),
            (HS256_SECRET, "system", "reserved"),
            (HS256_SECRET, "x" * 256, "longer than 255"),
        ],
    )
    async def test_refuses_what_the_service_would_refuse(
        self, monkeypatch: pytest.MonkeyPatch, secret: str, subject: str, fragment: str
    ) -> None:
        monkeypatch.setenv("OMNI_AUTH_HS256_SECRET", secret)
        monkeypatch.setenv("OMNI_ENVIRONMENT", "development")
        code, out, err = await cli("token", "--scope", "omni-secrets:read", "--subject", subject)
        assert (code, out) == (2, "")
        assert len(err.strip().splitlines()) == 1
        assert fragment in err
        assert secret not in err


class TestStatus:
    async def test_json(self, served: tuple[OmniStack, str]) -> None:
        """status --json prints the endpoint's JSON; exit 0 when ready."""
        stack, url = served
        code, out, err = await cli(
            "status", "--url", url, "--token", stack.token("omni-secrets:read"), "--json"
        )
        assert code == 0, err
        body = json.loads(out)
        assert body["cache"]["state"] == "ready"
        assert_no_canary(out, err)

    async def test_table(self, served: tuple[OmniStack, str]) -> None:
        """status renders a table naming every type and its source."""
        stack, url = served
        code, out, _ = await cli(
            "status", "--url", url, "--token", stack.token("omni-secrets:read")
        )
        assert code == 0
        for name in ("api_key", "api_secret", "api_passphrase", "zk_seeds", "zk_l2_key"):
            assert name in out
        assert "gsm" in out
        assert "ready" in out
        assert_no_canary(out)

    async def test_wrong_scope_is_one_line(self, served: tuple[OmniStack, str]) -> None:
        """A 403 becomes one line with the error code, exit 1."""
        stack, url = served
        code, out, err = await cli("status", "--url", url, "--token", stack.token("apex-omni:read"))
        assert code == 1
        assert out == ""
        assert err.strip().count("\n") == 0
        assert "FORBIDDEN" in err
        # Issue 26: which scope was lacking, and where the token came from.
        assert "omni-secrets:read" in err and "the token came from --token" in err

    async def test_a_refusal_names_the_token_source(
        self, served: tuple[OmniStack, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """OMNI_TOKEN silently beat the per-scope dev token; the 403 now says so."""
        stack, url = served
        monkeypatch.setenv("OMNI_TOKEN_OMNI_SECRETS_READ", stack.token("omni-secrets:read"))
        monkeypatch.setenv("OMNI_TOKEN", stack.token("apex-omni:read"))
        code, _, err = await cli("status", "--url", url)
        assert code == 1
        assert err.strip().endswith(
            "the token came from OMNI_TOKEN (which beats OMNI_TOKEN_OMNI_SECRETS_READ)"
        ), err
        assert "lacks scope 'omni-secrets:read'" in err
        monkeypatch.delenv("OMNI_TOKEN")
        token_file = tmp_path / "token"
        token_file.write_text(stack.token("apex-omni:read"))
        monkeypatch.setenv("OMNI_TOKEN_FILE", str(token_file))
        code, _, err = await cli("status", "--url", url)
        assert code == 1 and f"the token came from OMNI_TOKEN_FILE ({token_file})" in err
        monkeypatch.delenv("OMNI_TOKEN_FILE")
        monkeypatch.setenv("OMNI_TOKEN_OMNI_SECRETS_READ", stack.token("apex-omni:read"))
        code, _, err = await cli("status", "--url", url)
        assert code == 1 and "the token came from OMNI_TOKEN_OMNI_SECRETS_READ" in err

    async def test_unreachable_api_exits_3(self) -> None:
        """No server → exit 3 with one line a person can act on, never the URL's user-info."""
        code, _, err = await cli(
            "status", "--url", "http://fake-user:fake-pass@127.0.0.1:9", "--token", "x"
        )
        assert code == 3
        assert err.count("\n") == 1
        assert "cannot reach http://127.0.0.1:9: could not connect" in err
        assert "check that the service is running" in err
        assert "fake-user" not in err and "fake-pass" not in err


class TestRefresh:
    async def test_wait_shows_results(self, served: tuple[OmniStack, str]) -> None:
        """refresh --wait polls until done, prints per-type results, exits 0 when all succeeded."""
        stack, url = served
        code, out, err = await cli(
            "refresh",
            "--url",
            url,
            "--token",
            stack.token("omni-secrets:refresh"),
            "--secret-type",
            "api_key",
            "--secret-type",
            "zk_seeds",
            "--wait",
        )
        assert code == 0, err
        assert "succeeded" in out
        assert "api_key" in out
        assert "zk_seeds" in out
        assert "per replica" in out
        replicas = stack.services.replicas
        assert replicas is not None and replicas.replica_id in out
        assert_no_canary(out, err)

    async def test_without_wait_json_prints_the_request(
        self, served: tuple[OmniStack, str]
    ) -> None:
        """Without --wait, --json prints the queued request as the only stdout document."""
        stack, url = served
        code, out, _ = await cli(
            "refresh", "--url", url, "--token", stack.token("omni-secrets:refresh"), "--json"
        )
        assert code == 0
        queued = json.loads(out)
        assert queued["status"] == "queued"
        assert queued["scope"] == "all"

    async def test_without_wait_prints_the_request_id_for_people(
        self, served: tuple[OmniStack, str]
    ) -> None:
        """Without --json, stdout is `requestId=…` and stderr says how to follow it up."""
        stack, url = served
        code, out, err = await cli(
            "refresh", "--url", url, "--token", stack.token("omni-secrets:refresh")
        )
        assert code == 0
        assert out.startswith("requestId=")
        request_id = out.strip().split("=", 1)[1]
        assert f"omni-secrets refresh status {request_id}" in err

    async def test_unknown_type_is_exit_2(self, served: tuple[OmniStack, str]) -> None:
        """The API's 422 becomes exit 2 with one line."""
        stack, url = served
        code, _, err = await cli(
            "refresh",
            "--url",
            url,
            "--token",
            stack.token("omni-secrets:refresh"),
            "--secret-type",
            "nope",
        )
        assert code == 2
        assert "VALIDATION_FAILED" in err
        assert "valid types: api_key, api_secret, api_passphrase, zk_seeds, zk_l2_key" in err


class TestSmallFixes:
    async def test_self_test_refusal_names_the_status_once(
        self, served: tuple[OmniStack, str]
    ) -> None:
        """Issue 26: the refusal printed `HTTP 200` twice (its own and the reason's)."""
        stack, url = served
        stack.apex.set_accepted([])
        code, out, err = await cli(
            "self-test", "--url", url, "--token", stack.token("omni-secrets:rotate")
        )
        assert out.startswith("ApeX refused the served credentials: "), (code, out, err)
        assert out.count("HTTP ") == 1, out

    async def test_a_bad_version_argument_is_a_usage_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`gsm versions disable … abc` is exit 2 (bad argument), before any GSM call."""
        monkeypatch.setenv("GCP_PROJECT_ID", "omni-dev")
        monkeypatch.setenv("OMNI_GSM_ENDPOINT", "127.0.0.1:9")
        for verb in ("disable", "enable"):
            code, _, err = await cli("gsm", "versions", verb, "--secret-type", "api_key", "abc")
            assert code == 2, err
            assert "a version number such as 4 is expected, got 'abc'" in err
