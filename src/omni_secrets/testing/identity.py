"""A fake identity provider: a real JWKS endpoint, Google- and Okta-shaped tokens, a token endpoint.

:class:`FakeIdentityProvider` serves, over real HTTP on loopback:

- ``GET /certs``: the JWK set of its current signing keys (RS256 and ES256, each with a ``kid``);
  :meth:`~FakeIdentityProvider.publish` replaces the set (key rotation) and ``jwks_fetches``
  counts the requests;
- ``POST /token``: Google's OAuth token endpoint for a service account's ID-token grant
  (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``; the assertion is verified against
  the service account key it issued with :meth:`~FakeIdentityProvider.write_service_account_file`,
  and the answer is ``{"id_token": …}`` for the assertion's ``target_audience``), which is
  what google-auth's ``fetch_id_token`` calls.

Tokens are shaped like the real ones: a Google ID token has ``iss``
``https://accounts.google.com``, ``email``, ``email_verified`` and no scope; an Okta access token
carries its scopes in an ``scp`` array and groups in ``groups``. Keys are generated per instance;
nothing here is a real credential.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from omni_secrets.testing._http import HttpReply, LoopbackServer, json_reply

GOOGLE_ISSUER = "https://accounts.google.com"
OKTA_ISSUER = "https://fake-okta.example.com/oauth2/default"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth addresses a service account's grant assertion to Google's token endpoint
# whatever the key file's token_uri says; the fake checks exactly that.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key of the provider: its ``kid``, algorithm and private half."""

    kid: str
    algorithm: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        jwk: dict[str, Any]
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims), self.private_key, algorithm=self.algorithm, headers={"kid": self.kid}
        )


class FakeIdentityProvider:
    """See the module docstring. ``start()`` before use, ``stop()`` after."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        self._lock = threading.Lock()
        self._keys: tuple[SigningKey, ...] = tuple(keys)
        self._service_accounts: dict[str, rsa.RSAPublicKey] = {}
        self.jwks_fetches = 0
        self.token_requests: list[str] = []
        self._server = LoopbackServer(self._handle)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def jwks_url(self) -> str:
        return f"{self._server.base_url}/certs"

    @property
    def token_url(self) -> str:
        return f"{self._server.base_url}/token"

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        with self._lock:
            return self._keys

    def publish(self, keys: Sequence[SigningKey]) -> None:
        """Replace the published key set (a rotation: keys left out are withdrawn)."""
        with self._lock:
            self._keys = tuple(keys)

    # -- tokens ------------------------------------------------------------------------------

    def google_id_token(
        self,
        key: SigningKey,
        *,
        email: str,
        audience: str,
        email_verified: bool = True,
        subject: str | None = None,
        issuer: str = GOOGLE_ISSUER,
        ttl_seconds: int = 300,
        **extra: Any,
    ) -> str:
        """An ID token shaped like Google's (``gcloud auth print-identity-token``, Workload
        Identity): ``email``/``email_verified``, a numeric ``sub``, ``azp``, no scope."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "azp": _numeric_id(f"azp:{email}"),
            "sub": subject or _numeric_id(f"sub:{email}"),
            "email": email,
            "email_verified": email_verified,
            "iat": now,
            "exp": now + ttl_seconds,
            **extra,
        }
        return key.sign(claims)

    def okta_access_token(
        self,
        key: SigningKey,
        *,
        subject: str,
        audience: str,
        scp: Any = None,
        groups: Sequence[str] | None = None,
        issuer: str = OKTA_ISSUER,
        ttl_seconds: int = 300,
        **extra: Any,
    ) -> str:
        """An access token shaped like Okta's: scopes in an ``scp`` array, ``cid``, ``groups``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "ver": 1,
            "jti": f"AT.{uuid.uuid4().hex}",
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "cid": "0oa-fake-client-id",
            "uid": "00u-fake-user-id",
            "iat": now,
            "exp": now + ttl_seconds,
            **extra,
        }
        if scp is not None:
            claims["scp"] = scp
        if groups is not None:
            claims["groups"] = list(groups)
        return key.sign(claims)

    # -- service accounts (google-auth's fetch_id_token) ------------------------------------

    def write_service_account_file(self, path: Path, *, email: str) -> Path:
        """Write a service account key file whose ``token_uri`` is this provider's ``/token``.

        The private key is made here, for this test only; it is written with mode 0600.
        """
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with self._lock:
            self._service_accounts[email] = private.public_key()
        info = {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": uuid.uuid4().hex,
            "private_key": pem,
            "client_email": email,
            "client_id": "100000000000000000000",
            "token_uri": self.token_url,
        }
        path.write_text(json.dumps(info), encoding="utf-8")
        path.chmod(0o600)
        return path

    # -- HTTP --------------------------------------------------------------------------------

    def _handle(
        self, method: str, path: str, _headers: Mapping[str, str], body: bytes
    ) -> HttpReply:
        if method == "GET" and path == "/certs":
            with self._lock:
                self.jwks_fetches += 1
                keys = [k.public_jwk() for k in self._keys]
            return json_reply(200, {"keys": keys})
        if method == "POST" and path == "/token":
            return self._token(body)
        return json_reply(404, {"error": "not_found"})

    def _token(self, body: bytes) -> HttpReply:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != JWT_BEARER_GRANT or "assertion" not in form:
            return json_reply(400, {"error": "unsupported_grant_type"})
        assertion = form["assertion"]
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        email = unverified.get("iss")
        with self._lock:
            public = self._service_accounts.get(str(email))
            signer = self._keys[0]
        if public is None:
            return json_reply(
                400, {"error": "invalid_grant", "error_description": "unknown account"}
            )
        try:
            claims = jwt.decode(
                assertion, public, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE
            )
        except jwt.PyJWTError:
            return json_reply(400, {"error": "invalid_grant", "error_description": "bad assertion"})
        audience = claims.get("target_audience")
        if not isinstance(audience, str) or not audience:
            return json_reply(400, {"error": "invalid_request", "error_description": "no audience"})
        self.token_requests.append(audience)
        token = self.google_id_token(signer, email=str(email), audience=audience)
        return json_reply(200, {"id_token": token})


def _numeric_id(seed: str) -> str:
    # Google's sub/azp are 21-digit numbers; derive a stable fake one from the email.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed).int % 10**21).rjust(21, "1")
