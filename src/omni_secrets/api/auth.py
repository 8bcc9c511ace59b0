"""Bearer JWT authentication and scope checks (contract section 4).

Two modes, fixed by configuration and never by the token: HS256 with a shared secret (not in
production) and RS256/ES256 against a JWKS. ``exp`` and ``sub`` are required, ``aud`` must match,
``iss`` must match when configured, leeway is small. Scopes come from the space-separated
``scope`` claim (RFC 8693).

Missing/invalid/expired token → :class:`Unauthenticated` (401 with ``WWW-Authenticate: Bearer``);
a valid token without the scope → :class:`Forbidden` (403); the JWKS endpoint unreachable →
:class:`AuthUnavailable` (503 ``AUTH_UNAVAILABLE``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import jwt

from omni_secrets.api.subject import SubjectRefused, checked_subject

LEEWAY_SECONDS = 30
HS256_ALGORITHMS = ("HS256",)
JWKS_ALGORITHMS = ("RS256", "ES256")


class Scope(StrEnum):
    READ = "omni-secrets:read"
    ROTATE = "omni-secrets:rotate"
    BREAK_GLASS = "omni-secrets:break-glass"
    REFRESH = "omni-secrets:refresh"
    APEX_READ = "apex-omni:read"


class AuthError(Exception):
    """Base of authentication/authorization failures (API layer, not domain)."""

    code = "UNAUTHENTICATED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(AuthError):
    """Raised when a request has no bearer token, or one that does not verify."""

    code = "UNAUTHENTICATED"


class Forbidden(AuthError):
    """Raised when a verified token lacks the scope the route requires."""

    code = "FORBIDDEN"


class AuthUnavailable(AuthError):
    """The token could not be checked because the JWKS endpoint did not answer (503).

    Not the caller's fault, so not a 401: a client that treats 401 as "get a new token" would
    otherwise hammer the identity provider while the JWKS host is down.
    """

    code = "AUTH_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: the token's ``sub`` and its scopes."""

    subject: str
    scopes: frozenset[str]

    def require(self, scope: Scope) -> None:
        """Raises: Forbidden: the principal lacks ``scope``."""
        if scope.value not in self.scopes:
            raise Forbidden(f"token lacks scope {scope.value!r}")


class TokenVerifier(Protocol):
    """Turns a bearer token into a :class:`Principal` or raises :class:`Unauthenticated`."""

    async def verify(self, token: str) -> Principal: ...


def _principal_from(claims: dict[str, Any]) -> Principal:
    try:
        subject = checked_subject(claims.get("sub"))
    except SubjectRefused as exc:
        raise Unauthenticated(str(exc)) from None
    scope_claim = claims.get("scope", "")
    if not isinstance(scope_claim, str):
        raise Unauthenticated("token scope claim must be a space-separated string")
    return Principal(subject=subject, scopes=frozenset(scope_claim.split()))


def _decode_options() -> jwt.types.Options:
    return {"require": ["exp", "sub"], "verify_aud": True, "verify_exp": True}


class Hs256Verifier:
    """Verifies HS256 tokens signed with a shared secret.

    Args:
        secret: the shared secret (``OMNI_AUTH_HS256_SECRET``).
        audience: the required ``aud``.
        issuer: the required ``iss`` when not None.
    """

    def __init__(self, *, secret: str, audience: str, issuer: str | None = None) -> None:
        self._secret = secret
        self._audience = audience
        self._issuer = issuer

    def __repr__(self) -> str:
        return f"Hs256Verifier(audience={self._audience!r}, issuer={self._issuer!r})"

    async def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=list(HS256_ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options=_decode_options(),
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_describe(exc)) from None
        return _principal_from(claims)


class JwksVerifier:
    """Verifies RS256/ES256 tokens against a JWKS (cached by PyJWKClient, refetched on new kid).

    The JWKS fetch is blocking I/O, so it runs in a worker thread.
    """

    def __init__(self, *, jwks_url: str, audience: str, issuer: str | None = None) -> None:
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)
        self._audience = audience
        self._issuer = issuer

    def __repr__(self) -> str:
        return f"JwksVerifier(audience={self._audience!r}, issuer={self._issuer!r})"

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_describe(exc)) from None
        if header.get("alg") not in JWKS_ALGORITHMS:
            raise Unauthenticated("token algorithm not allowed")
        try:
            signing_key = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=list(JWKS_ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options=_decode_options(),
            )
        except jwt.PyJWKClientConnectionError:
            raise AuthUnavailable("the token signing keys could not be fetched") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_describe(exc)) from None
        return _principal_from(claims)


def _describe(exc: jwt.PyJWTError) -> str:
    # PyJWT messages name claims, never token contents; keep them short and generic.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token audience not accepted"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token issuer not accepted"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks required claim {exc.claim!r}"
    return "token invalid"


def mint_hs256_token(
    *,
    secret: str,
    scopes: Iterable[str],
    subject: str,
    audience: str,
    now: datetime,
    ttl: timedelta,
    issuer: str | None = None,
) -> str:
    """Sign a development token (``omni-secrets token``, ``dev``, tests).

    .. warning:: HS256 tokens are refused in production by the environment guard.
    """
    claims: dict[str, Any] = {
        "sub": subject,
        "aud": audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
        "scope": " ".join(scopes),
    }
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
