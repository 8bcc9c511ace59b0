"""Bearer JWT authentication and scope checks (contract section 4).

Two modes, fixed by configuration and never by the token: HS256 with a shared secret (not in
production) and RS256/ES256 against a JWKS. ``exp`` and ``sub`` are required, ``aud`` must match,
``iss`` must match when configured (one issuer or several), leeway is small. Scopes come from
the space-separated ``scope`` claim (RFC 8693) and from ``scp`` (a space-separated string, or an
array of strings as Okta and Azure AD issue it); the auth policy (``api/auth_policy.py``) adds
grants on top (contract section 14).

Missing/invalid/expired token → :class:`Unauthenticated` (401 with ``WWW-Authenticate: Bearer``);
a valid token without the scope → :class:`Forbidden` (403); the JWKS endpoint unreachable →
:class:`AuthUnavailable` (503 ``AUTH_UNAVAILABLE``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import jwt
import structlog

from omni_secrets.api.scopes import Scope as Scope  # re-exported: callers import it from here
from omni_secrets.api.subject import SubjectRefused, checked_subject

LEEWAY_SECONDS = 30
HS256_ALGORITHMS = ("HS256",)
JWKS_ALGORITHMS = ("RS256", "ES256")
# An unknown ``kid`` forces at most one JWKS refetch per this many seconds, so a flood of tokens
# with made-up key ids cannot turn into a flood of requests to the identity provider.
JWKS_REFETCH_COOLDOWN_SECONDS = 30.0
JWKS_CACHE_SECONDS = 300
# An email is at most 254 characters (RFC 5321).
MAX_EMAIL_LENGTH = 254

log = structlog.get_logger("omni_secrets.auth")


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
    """Who called: the token's ``sub``, its scopes and the identity claims policies match on.

    ``email`` is set only when the token says ``email_verified: true``; an unverified address
    is not an identity. ``groups`` is the token's ``groups`` array (strings only).
    """

    subject: str
    scopes: frozenset[str]
    email: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """The name audit rows record: the verified email when there is one, else ``sub``."""
        return self.email or self.subject

    def with_scopes(self, extra: frozenset[str]) -> Principal:
        """This principal with ``extra`` scopes added (grants of the auth policy)."""
        if extra <= self.scopes:
            return self
        return Principal(self.subject, self.scopes | extra, self.email, self.groups)

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
    return Principal(
        subject=subject,
        scopes=_scopes_from(claims),
        email=_verified_email(claims),
        groups=_groups_from(claims),
    )


def _scopes_from(claims: dict[str, Any]) -> frozenset[str]:
    scope_claim = claims.get("scope", "")
    if not isinstance(scope_claim, str):
        raise Unauthenticated("token scope claim must be a space-separated string")
    scopes = set(scope_claim.split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        scopes.update(scp.split())
    elif isinstance(scp, list) and all(isinstance(item, str) for item in scp):
        scopes.update(item for item in scp if item)
    elif scp is not None:
        raise Unauthenticated("token scp claim must be a string or an array of strings")
    return frozenset(scopes)


def _verified_email(claims: dict[str, Any]) -> str | None:
    # Only a JSON true counts: a string "true" or a missing claim is not a verification.
    # The email becomes the audit actor, so it must pass the same checks as a subject; one that
    # does not is ignored (the caller is then known by its sub), not a reason to refuse the token.
    email = claims.get("email")
    if claims.get("email_verified") is not True or not isinstance(email, str):
        return None
    if len(email) > MAX_EMAIL_LENGTH:
        return None
    try:
        return checked_subject(email)
    except SubjectRefused:
        return None


def _groups_from(claims: dict[str, Any]) -> frozenset[str]:
    # A malformed groups claim grants nothing rather than failing the token: scopes it carries
    # by itself still work, and no policy entry can match a group it did not name properly.
    groups = claims.get("groups")
    if not isinstance(groups, list):
        return frozenset()
    return frozenset(g for g in groups if isinstance(g, str) and g)


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
        claims = _decode_checked(
            token,
            self._secret,
            algorithm=HS256_ALGORITHMS[0],
            audience=self._audience,
            issuer=self._issuer,
        )
        return _principal_from(claims)


class JwksVerifier:
    """Verifies RS256/ES256 tokens against a JWKS.

    The key set is cached for ``JWKS_CACHE_SECONDS`` and refetched early when a token names an
    unknown ``kid`` (at most once per ``refetch_cooldown_seconds``). Keys are looked up in the
    cached set on every call, never in a per-key cache that would outlive the set: a key the
    provider withdrew stops verifying at the next refetch. The fetch is blocking I/O, so it runs
    in a worker thread.

    Args:
        jwks_url: where the key set is published.
        audience: the required ``aud``.
        issuer: the accepted ``iss`` (one, or several: Google signs with two spellings).
        refetch_cooldown_seconds: minimum time between refetches forced by an unknown ``kid``.
    """

    def __init__(
        self,
        *,
        jwks_url: str,
        audience: str,
        issuer: str | Sequence[str] | None = None,
        refetch_cooldown_seconds: float = JWKS_REFETCH_COOLDOWN_SECONDS,
    ) -> None:
        self._client = jwt.PyJWKClient(
            jwks_url,
            cache_keys=False,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=5,
            cooldown_duration=refetch_cooldown_seconds,
        )
        self._audience = audience
        self._issuer: str | tuple[str, ...] | None = (
            issuer if issuer is None or isinstance(issuer, str) else tuple(issuer)
        )

    def __repr__(self) -> str:
        return f"JwksVerifier(audience={self._audience!r}, issuer={self._issuer!r})"

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_describe(exc)) from None
        algorithm = header.get("alg")
        if algorithm not in JWKS_ALGORITHMS:
            raise Unauthenticated("token algorithm not allowed")
        try:
            signing_key = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            raise AuthUnavailable("the token signing keys could not be fetched") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_describe(exc)) from None
        except (ValueError, OSError):
            # The key set endpoint answered something that is not JSON (a proxy's HTML page) or
            # dropped the connection mid-body: the keys could not be fetched, as above.
            raise AuthUnavailable("the token signing keys could not be fetched") from None
        # The key named by ``kid`` decides the algorithm, never the token: an ES256 token naming
        # an RSA key (or the reverse) is refused here, before the signature check would fail
        # with a TypeError deep inside PyJWT (a 500, contract section 17).
        if signing_key.algorithm_name != algorithm:
            raise Unauthenticated("token algorithm does not match its signing key")
        claims = _decode_checked(
            token,
            signing_key.key,
            algorithm=algorithm,
            audience=self._audience,
            issuer=self._issuer,
        )
        return _principal_from(claims)


def _decode_checked(
    token: str,
    key: Any,
    *,
    algorithm: str,
    audience: str,
    issuer: str | Sequence[str] | None,
) -> dict[str, Any]:
    """``jwt.decode`` with the house options; any failure of the token is :class:`Unauthenticated`.

    PyJWT raises :class:`jwt.PyJWTError` for what it anticipates; anything else it raises while
    checking a token (a key it cannot use with the algorithm, say) is still a token that did not
    verify, so a 401 and never a 500. Such a case is logged by type so it can be looked into.
    """
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options=_decode_options(),
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(_describe(exc)) from None
    except Exception as exc:
        log.warning("auth.token_unverifiable", algorithm=algorithm, error_type=type(exc).__name__)
        raise Unauthenticated("token invalid") from None


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
