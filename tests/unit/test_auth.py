"""JWT verification and scope checks (contract section 4) through a minimal app."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from structlog.testing import capture_logs

from omni_secrets.api.auth import (
    Hs256Verifier,
    JwksVerifier,
    Scope,
    TokenVerifier,
    mint_hs256_token,
)
from omni_secrets.api.deps import ReadPrincipal
from omni_secrets.api.errors import install_error_handlers
from omni_secrets.api.middleware import RequestContextMiddleware

SECRET = "fake-hs256-secret-for-auth-tests"
AUDIENCE = "omni-secrets"


def shell_app(verifier: TokenVerifier) -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = verifier
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)

    @app.get("/ops/probe")
    async def probe(principal: ReadPrincipal) -> dict[str, Any]:
        return {"sub": principal.subject, "scopes": sorted(principal.scopes)}

    return app


def hs_token(**overrides: Any) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": "alice",
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "scope": Scope.READ.value,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture
async def hs_client() -> AsyncIterator[httpx.AsyncClient]:
    app = shell_app(Hs256Verifier(secret=SECRET, audience=AUDIENCE))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client


async def get(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.get("/ops/probe", headers=headers)


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()["error"]
    assert body["code"] == "UNAUTHENTICATED"
    assert body["correlationId"] == response.headers["x-request-id"]


class TestHs256:
    async def test_valid_token_with_scope(self, hs_client: httpx.AsyncClient) -> None:
        """A valid token carrying the route's scope is accepted and its subject seen."""
        response = await get(hs_client, hs_token(scope="omni-secrets:read apex-omni:read"))
        assert response.status_code == 200
        assert response.json() == {
            "sub": "alice",
            "scopes": ["apex-omni:read", "omni-secrets:read"],
        }

    async def test_minted_dev_token_is_accepted(self, hs_client: httpx.AsyncClient) -> None:
        """Tokens from mint_hs256_token verify in HS256 mode."""
        token = mint_hs256_token(
            secret=SECRET,
            scopes=[Scope.READ],
            subject="dev",
            audience=AUDIENCE,
            now=datetime.now(UTC),
            ttl=timedelta(minutes=1),
        )
        assert (await get(hs_client, token)).status_code == 200

    async def test_missing_token(self, hs_client: httpx.AsyncClient) -> None:
        """No Authorization header → 401 with the Bearer challenge."""
        assert_unauthenticated(await get(hs_client, None))

    async def test_not_bearer(self, hs_client: httpx.AsyncClient) -> None:
        """A Basic header is not a bearer token."""
        response = await hs_client.get(
            "/ops/probe", headers={"Authorization": "Basic Zm9vOmJhcg=="}
        )
        assert_unauthenticated(response)

    @pytest.mark.parametrize(
        "token",
        [
            pytest.param(hs_token(exp=int(datetime.now(UTC).timestamp()) - 120), id="expired"),
            pytest.param(hs_token(aud="someone-else"), id="wrong-audience"),
            pytest.param(hs_token(aud=None), id="no-audience"),
            pytest.param(hs_token(exp=None), id="no-exp"),
            pytest.param(hs_token(sub=None), id="no-sub"),
            pytest.param(
                jwt.encode(
                    {"sub": "a", "aud": AUDIENCE, "exp": 4102444800},
                    "other-key-000000000000000000000000",
                ),
                id="bad-signature",
            ),
            pytest.param("not.a.jwt", id="garbage"),
        ],
    )
    async def test_rejected_tokens(self, hs_client: httpx.AsyncClient, token: str) -> None:
        """Expired, wrong-audience, incomplete, forged or garbage tokens → 401."""
        assert_unauthenticated(await get(hs_client, token))

    async def test_alg_none_rejected(self, hs_client: httpx.AsyncClient) -> None:
        """An unsigned token (alg none) is never accepted: algorithms come from the mode."""
        header = jwt.utils.base64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = jwt.utils.base64url_encode(
            json.dumps(
                {"sub": "a", "aud": AUDIENCE, "exp": 4102444800, "scope": "omni-secrets:read"}
            ).encode()
        )
        assert_unauthenticated(await get(hs_client, f"{header.decode()}.{payload.decode()}."))

    async def test_rs256_token_rejected_in_hs256_mode(self, hs_client: httpx.AsyncClient) -> None:
        """A token signed with another algorithm family is refused."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode({"sub": "a", "aud": AUDIENCE, "exp": 4102444800}, key, algorithm="RS256")
        assert_unauthenticated(await get(hs_client, token))

    async def test_wrong_scope_is_403(self, hs_client: httpx.AsyncClient) -> None:
        """A valid token without the route's scope → 403 FORBIDDEN."""
        response = await get(hs_client, hs_token(scope="apex-omni:read"))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"

    async def test_issuer_enforced_when_configured(self) -> None:
        """With an issuer configured, a token from another issuer is refused."""
        app = shell_app(Hs256Verifier(secret=SECRET, audience=AUDIENCE, issuer="https://idp.test"))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            assert_unauthenticated(await get(c, hs_token(iss="https://evil.test")))
            assert (await get(c, hs_token(iss="https://idp.test"))).status_code == 200


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[tuple[str, Any, Any]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, key in (("rsa-1", rsa_key), ("ec-1", ec_key)):
        algo = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algo.to_jwk(key.public_key()))
        jwk["kid"] = kid
        keys.append(jwk)
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", rsa_key, ec_key
    server.shutdown()


class TestJwks:
    @pytest.mark.parametrize(("kid", "alg"), [("rsa-1", "RS256"), ("ec-1", "ES256")])
    async def test_valid_tokens(
        self, jwks_server: tuple[str, Any, Any], kid: str, alg: str
    ) -> None:
        """RS256 and ES256 tokens signed by a JWKS key verify."""
        url, rsa_key, ec_key = jwks_server
        key = rsa_key if alg == "RS256" else ec_key
        token = jwt.encode(
            {
                "sub": "svc",
                "aud": AUDIENCE,
                "iss": "https://idp.test",
                "exp": 4102444800,
                "scope": "omni-secrets:read",
            },
            key,
            algorithm=alg,
            headers={"kid": kid},
        )
        app = shell_app(JwksVerifier(jwks_url=url, audience=AUDIENCE, issuer="https://idp.test"))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            response = await get(c, token)
        assert response.status_code == 200
        assert response.json()["sub"] == "svc"

    async def test_hs256_token_rejected_in_jwks_mode(
        self, jwks_server: tuple[str, Any, Any]
    ) -> None:
        """HS256 tokens are refused in JWKS mode, whatever key they use (no key confusion)."""
        url, _, _ = jwks_server
        app = shell_app(JwksVerifier(jwks_url=url, audience=AUDIENCE))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            assert_unauthenticated(await get(c, hs_token()))

    async def test_unknown_kid_rejected(self, jwks_server: tuple[str, Any, Any]) -> None:
        """A token signed by a key not in the JWKS is refused."""
        url, _, _ = jwks_server
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(
            {"sub": "svc", "aud": AUDIENCE, "exp": 4102444800},
            other,
            algorithm="RS256",
            headers={"kid": "nope"},
        )
        app = shell_app(JwksVerifier(jwks_url=url, audience=AUDIENCE))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            assert_unauthenticated(await get(c, token))

    async def test_unreachable_jwks_is_503_auth_unavailable(
        self, jwks_server: tuple[str, Any, Any]
    ) -> None:
        """The JWKS host not answering is the service's problem (503), not a bad token (401)."""
        _, rsa_key, _ = jwks_server
        token = jwt.encode(
            {"sub": "svc", "aud": AUDIENCE, "exp": 4102444800, "scope": "omni-secrets:read"},
            rsa_key,
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        )
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/jwks.json"
        app = shell_app(JwksVerifier(jwks_url=dead_url, audience=AUDIENCE))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            response = await get(c, token)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "AUTH_UNAVAILABLE"
        assert "www-authenticate" not in response.headers


class TestEveryTokenFailureIs401:
    """Contract section 17: a token that does not verify is 401, never 500."""

    @pytest.mark.parametrize(
        ("alg", "kid"),
        [
            pytest.param("ES256", "rsa-1", id="es256-naming-an-rsa-key"),
            pytest.param("RS256", "ec-1", id="rs256-naming-an-ec-key"),
        ],
    )
    async def test_algorithm_naming_a_key_of_the_other_type(
        self, jwks_server: tuple[str, Any, Any], alg: str, kid: str
    ) -> None:
        """Signed by the key of its own algorithm but naming the other key's ``kid``: PyJWT
        raised TypeError (a 500 with a traceback); now a clean 401."""
        url, rsa_key, ec_key = jwks_server
        token = jwt.encode(
            {"sub": "svc", "aud": AUDIENCE, "exp": 4102444800, "scope": "omni-secrets:read"},
            ec_key if alg == "ES256" else rsa_key,
            algorithm=alg,
            headers={"kid": kid},
        )
        app = shell_app(JwksVerifier(jwks_url=url, audience=AUDIENCE))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://t",
        ) as c:
            response = await get(c, token)
        assert_unauthenticated(response)
        assert response.json()["error"]["message"] == (
            "token algorithm does not match its signing key"
        )

    async def test_unexpected_verifier_error_is_401(
        self, monkeypatch: pytest.MonkeyPatch, hs_client: httpx.AsyncClient
    ) -> None:
        """Whatever else PyJWT might raise while checking a token is a 401, logged by type."""

        def broken_decode(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
            raise TypeError("a key the algorithm cannot use")

        monkeypatch.setattr(jwt, "decode", broken_decode)
        with capture_logs() as logs:
            assert_unauthenticated(await get(hs_client, hs_token()))
        [line] = [e for e in logs if e["event"] == "auth.token_unverifiable"]
        assert line["error_type"] == "TypeError"
        assert line["algorithm"] == "HS256"

    async def test_key_set_that_is_not_json_is_503(self) -> None:
        """A key set endpoint answering HTML with 200 (a captive proxy) is the service's
        problem: 503 AUTH_UNAVAILABLE, as when it does not answer; not a 500."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode(
            {"sub": "svc", "aud": AUDIENCE, "exp": 4102444800},
            key,
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        )

        class Html(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<html>sign in to the proxy</html>")

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
            app = shell_app(JwksVerifier(jwks_url=url, audience=AUDIENCE))
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://t",
            ) as c:
                response = await get(c, token)
        finally:
            server.shutdown()
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "AUTH_UNAVAILABLE"


class TestSubjectBounds:
    @pytest.mark.parametrize(
        ("subject", "fragment"),
        [
            ("x" * 256, "longer than 255"),
            ("system", "reserved"),
            ("bad\x00sub", "non-printable"),
        ],
    )
    async def test_unusable_subjects_are_401(
        self, hs_client: httpx.AsyncClient, subject: str, fragment: str
    ) -> None:
        response = await get(hs_client, hs_token(sub=subject))
        assert_unauthenticated(response)
        assert fragment in response.json()["error"]["message"]
