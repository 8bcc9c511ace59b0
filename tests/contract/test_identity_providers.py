"""Contract section 14 through the real app: Google ID tokens, Okta access tokens, the policy.

A :class:`FakeIdentityProvider` publishes a real JWKS over HTTP (one RS256 and one ES256 key,
each with its ``kid``) and issues Google-shaped ID tokens (``iss`` https://accounts.google.com,
``email``, ``email_verified``, no scope) and Okta-shaped access tokens (``scp`` array,
``groups``). The app verifies them against that JWKS with PyJWT, exactly as in production; the
policy file maps an email and a group to scopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omni_secrets.api.auth import JwksVerifier
from omni_secrets.api.auth_policy import AuthPolicySource, PolicyVerifier
from omni_secrets.testing.identity import (
    OKTA_ISSUER,
    FakeIdentityProvider,
    SigningKey,
)
from tests.contract.conftest import OmniStack, StackFactory

STATUS = "/ops/apex-omni/secrets/status"
ROTATION_PREVIEW = "/ops/apex-omni/secrets/rotation-preview"
WORKLOAD = "trading-engine@fake-project.iam.gserviceaccount.com"
OPERATOR_GROUP = "omni-operators"
POLICY = f"""\
grants:
  - principal: email:{WORKLOAD}
    scopes: [omni-secrets:read]
  - principal: group:{OPERATOR_GROUP}
    scopes: [omni-secrets:read, omni-secrets:rotate]
"""


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    provider = FakeIdentityProvider([SigningKey.rsa("rsa-2026-11"), SigningKey.ec("ec-2026-11")])
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "auth-policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


async def google_stack(
    factory: StackFactory, idp: FakeIdentityProvider, policy_file: Path
) -> OmniStack:
    # The google preset, with the JWKS pointed at the fake: an explicit variable wins.
    return await factory(
        OMNI_AUTH_PROVIDER="google",
        OMNI_AUTH_JWKS_URL=idp.jwks_url,
        OMNI_AUTH_POLICY_FILE=str(policy_file),
        OMNI_AUTH_HS256_SECRET="",
    )


async def get_status(stack: OmniStack, token: str) -> httpx.Response:
    response = await stack.client.get(STATUS, headers={"Authorization": f"Bearer {token}"})
    stack.responses.append(response)
    return response


def status_actors(stack: OmniStack) -> list[str]:
    path = stack.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT actor FROM omni_secret_access_events WHERE action = 'status_view' ORDER BY id"
        ).fetchall()
    return [row[0] for row in rows]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    return error


class TestGoogleIdTokens:
    async def test_granted_email_gets_200_with_either_key_and_issuer(
        self,
        omni_stack_factory: StackFactory,
        idp: FakeIdentityProvider,
        policy_file: Path,
    ) -> None:
        """An ID token without scope, for a verified email the policy grants read: 200 on status,
        signed RS256 or ES256, with either spelling of Google's issuer; the audit actor is the
        email, not the numeric ``sub``."""
        stack = await google_stack(omni_stack_factory, idp, policy_file)
        rsa_key, ec_key = idp.keys
        for key, issuer in (
            (rsa_key, "https://accounts.google.com"),
            (ec_key, "accounts.google.com"),
        ):
            token = idp.google_id_token(key, email=WORKLOAD, audience="omni-secrets", issuer=issuer)
            response = await get_status(stack, token)
            assert response.status_code == 200, response.text
        await stack.wait_for(lambda: len(status_actors(stack)) >= 2, what="status audit rows")
        assert status_actors(stack) == [WORKLOAD, WORKLOAD]

    async def test_other_email_and_other_scope_get_403(
        self,
        omni_stack_factory: StackFactory,
        idp: FakeIdentityProvider,
        policy_file: Path,
    ) -> None:
        """A verified email the policy does not name → 403; the granted email lacks rotate → 403."""
        stack = await google_stack(omni_stack_factory, idp, policy_file)
        stranger = idp.google_id_token(
            idp.keys[0],
            email="someone@fake-project.iam.gserviceaccount.com",
            audience="omni-secrets",
        )
        assert_error(await get_status(stack, stranger), 403, "FORBIDDEN")
        workload = idp.google_id_token(idp.keys[0], email=WORKLOAD, audience="omni-secrets")
        response = await stack.client.post(
            ROTATION_PREVIEW,
            json={"secretType": "api_key"},
            headers={"Authorization": f"Bearer {workload}"},
        )
        stack.responses.append(response)
        assert_error(response, 403, "FORBIDDEN")

    async def test_unverified_email_gets_403(
        self,
        omni_stack_factory: StackFactory,
        idp: FakeIdentityProvider,
        policy_file: Path,
    ) -> None:
        """``email_verified: false``: the email grants nothing, so the caller gets 403."""
        stack = await google_stack(omni_stack_factory, idp, policy_file)
        token = idp.google_id_token(
            idp.keys[1], email=WORKLOAD, audience="omni-secrets", email_verified=False
        )
        assert_error(await get_status(stack, token), 403, "FORBIDDEN")

    @pytest.mark.parametrize(
        ("claims", "message"),
        [
            ({"audience": "someone-else"}, "token audience not accepted"),
            ({"audience": "omni-secrets", "issuer": OKTA_ISSUER}, "token issuer not accepted"),
            ({"audience": "omni-secrets", "ttl_seconds": -120}, "token expired"),
        ],
    )
    async def test_wrong_audience_issuer_or_expired_is_401(
        self,
        omni_stack_factory: StackFactory,
        idp: FakeIdentityProvider,
        policy_file: Path,
        claims: dict[str, Any],
        message: str,
    ) -> None:
        """The policy never rescues a token that does not verify: 401, whatever it grants."""
        stack = await google_stack(omni_stack_factory, idp, policy_file)
        token = idp.google_id_token(idp.keys[0], email=WORKLOAD, **claims)
        error = assert_error(await get_status(stack, token), 401, "UNAUTHENTICATED")
        assert error["message"] == message

    async def test_key_rotation_mid_test(
        self,
        omni_stack_factory: StackFactory,
        idp: FakeIdentityProvider,
        policy_file: Path,
    ) -> None:
        """The provider rotates its RSA key: a token under the new ``kid`` is accepted once the
        set is refetched, a token under the withdrawn ``kid`` is refused, the EC key keeps
        working throughout."""
        stack = await google_stack(omni_stack_factory, idp, policy_file)
        # The production verifier waits 30 s between forced refetches; this test's verifier is
        # built the same way with no cooldown, so the rotation is visible without a 30 s sleep.
        source: AuthPolicySource = stack.app.state.auth_policy
        stack.app.state.token_verifier = PolicyVerifier(
            JwksVerifier(
                jwks_url=idp.jwks_url,
                audience="omni-secrets",
                issuer=stack.settings.effective_auth_issuers,
                refetch_cooldown_seconds=0,
            ),
            source,
        )
        old_rsa, ec_key = idp.keys
        before = idp.google_id_token(old_rsa, email=WORKLOAD, audience="omni-secrets")
        assert (await get_status(stack, before)).status_code == 200
        fetches_before = idp.jwks_fetches

        new_rsa = SigningKey.rsa("rsa-2026-12")
        idp.publish([new_rsa, ec_key])
        after = idp.google_id_token(new_rsa, email=WORKLOAD, audience="omni-secrets")
        assert (await get_status(stack, after)).status_code == 200
        assert idp.jwks_fetches == fetches_before + 1

        withdrawn = idp.google_id_token(old_rsa, email=WORKLOAD, audience="omni-secrets")
        assert_error(await get_status(stack, withdrawn), 401, "UNAUTHENTICATED")
        still = idp.google_id_token(ec_key, email=WORKLOAD, audience="omni-secrets")
        assert (await get_status(stack, still)).status_code == 200

    async def test_production_verifier_unknown_kid_within_cooldown_is_401(
        self,
        omni_stack_factory: StackFactory,
        idp: FakeIdentityProvider,
        policy_file: Path,
    ) -> None:
        """Tokens with made-up ``kid``s cannot make the service hammer the JWKS endpoint: the
        configured verifier refetches at most once per cooldown."""
        stack = await google_stack(omni_stack_factory, idp, policy_file)
        good = idp.google_id_token(idp.keys[0], email=WORKLOAD, audience="omni-secrets")
        assert (await get_status(stack, good)).status_code == 200
        fetches = idp.jwks_fetches
        for n in range(5):
            forged = idp.google_id_token(
                SigningKey.ec(f"made-up-{n}"), email=WORKLOAD, audience="omni-secrets"
            )
            assert_error(await get_status(stack, forged), 401, "UNAUTHENTICATED")
        assert idp.jwks_fetches <= fetches + 1


class TestOktaAccessTokens:
    async def okta_stack(
        self, factory: StackFactory, idp: FakeIdentityProvider, policy_file: Path
    ) -> OmniStack:
        return await factory(
            OMNI_AUTH_JWKS_URL=idp.jwks_url,
            OMNI_AUTH_ISSUER=OKTA_ISSUER,
            OMNI_AUTH_AUDIENCE="api://omni-secrets",
            OMNI_AUTH_POLICY_FILE=str(policy_file),
            OMNI_AUTH_HS256_SECRET="",
        )

    async def test_scp_array_grants_by_itself(
        self, omni_stack_factory: StackFactory, idp: FakeIdentityProvider, policy_file: Path
    ) -> None:
        """An ``scp`` array with the route's scope → 200 without any policy entry; actor = sub."""
        stack = await self.okta_stack(omni_stack_factory, idp, policy_file)
        token = idp.okta_access_token(
            idp.keys[1],
            subject="svc-reporting",
            audience="api://omni-secrets",
            scp=["openid", "omni-secrets:read"],
        )
        assert (await get_status(stack, token)).status_code == 200
        await stack.wait_for(lambda: bool(status_actors(stack)), what="status audit row")
        assert status_actors(stack) == ["svc-reporting"]

    async def test_group_grant_and_non_member(
        self, omni_stack_factory: StackFactory, idp: FakeIdentityProvider, policy_file: Path
    ) -> None:
        """A member of the granted group gets read and rotate; a non-member with no scp → 403."""
        stack = await self.okta_stack(omni_stack_factory, idp, policy_file)
        member = idp.okta_access_token(
            idp.keys[0],
            subject="alice",
            audience="api://omni-secrets",
            scp=["openid"],
            groups=["everyone", OPERATOR_GROUP],
        )
        assert (await get_status(stack, member)).status_code == 200
        outsider = idp.okta_access_token(
            idp.keys[0],
            subject="bob",
            audience="api://omni-secrets",
            scp=["openid"],
            groups=["everyone"],
        )
        assert_error(await get_status(stack, outsider), 403, "FORBIDDEN")

    @pytest.mark.parametrize("scp", [7, {"omni-secrets:read": True}, ["omni-secrets:read", 1]])
    async def test_malformed_scp_is_401(
        self,
        omni_stack_factory: StackFactory,
        idp: FakeIdentityProvider,
        policy_file: Path,
        scp: Any,
    ) -> None:
        """An ``scp`` that is neither a string nor an array of strings → 401, clear message."""
        stack = await self.okta_stack(omni_stack_factory, idp, policy_file)
        token = idp.okta_access_token(
            idp.keys[0],
            subject="alice",
            audience="api://omni-secrets",
            scp=scp,
            groups=[OPERATOR_GROUP],
        )
        error = assert_error(await get_status(stack, token), 401, "UNAUTHENTICATED")
        assert error["message"] == "token scp claim must be a string or an array of strings"


async def test_reload_through_the_app_state(
    omni_stack_factory: StackFactory,
    idp: FakeIdentityProvider,
    policy_file: Path,
) -> None:
    """Reloading the app's policy source grants a new email at the next request (the SIGHUP
    path against a real process is in ``test_auth_policy_serve.py``)."""
    stack = await google_stack(omni_stack_factory, idp, policy_file)
    newcomer = "oncall@example.com"
    token = idp.google_id_token(idp.keys[0], email=newcomer, audience="omni-secrets")
    assert_error(await get_status(stack, token), 403, "FORBIDDEN")
    policy_file.write_text(
        POLICY + f"  - principal: email:{newcomer}\n    scopes: [omni-secrets:read]\n",
        encoding="utf-8",
    )
    assert await asyncio.to_thread(stack.app.state.auth_policy.reload) is True
    assert (await get_status(stack, token)).status_code == 200
