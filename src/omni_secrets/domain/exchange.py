"""The ApeX Omni exchange as the service sees it: credentials, results and the ``ApexGateway`` port.

The service needs two things from ApeX: the consumer route ``GET /apex-omni/account`` (a signed
``GET /api/v3/account`` whose ``data`` is returned as is) and the credential self-test that the
rotation preview and ``POST /ops/apex-omni/secrets/self-test`` run. The production adapter is
``adapters/apex.py`` (HMAC signing per ``apex-omni-signing.md``); tests use the fake ApeX server in
``omni_secrets.testing``.

Credentials travel as :class:`~omni_secrets.domain.values.SecretValue` so that no repr, log line or
exception ever shows them; only the signer calls ``reveal()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from omni_secrets.domain.values import SecretValue

#: ApeX ``code`` values with a known meaning (apex-omni-signing.md, "Responses").
APEX_CODE_WRONG_API_KEY = 10002
APEX_CODE_TOO_MANY_REQUESTS = 10003
APEX_CODE_SIGNATURE_ERROR = 20006

_KNOWN_APEX_CODES: Mapping[int, str] = {
    APEX_CODE_WRONG_API_KEY: "wrong API key",
    APEX_CODE_TOO_MANY_REQUESTS: "too many requests",
    APEX_CODE_SIGNATURE_ERROR: "signature error (wrong secret or passphrase, or clock skew)",
}


def describe_apex_code(code: int) -> str:
    """A short, safe description of an ApeX error ``code`` (``"ApeX code N"`` when unknown)."""
    return _KNOWN_APEX_CODES.get(code, f"ApeX code {code}")


@dataclass(frozen=True, slots=True)
class ApexCredentials:
    """The three values that sign ApeX Omni private REST requests (issued together by ApeX).

    ``repr`` shows only redacted placeholders; equality compares in constant time.

    Attributes:
        key: the API key (sent as ``APEX-API-KEY``).
        secret: the HMAC secret (never sent; its base64 encoding is the HMAC key).
        passphrase: sent as ``APEX-PASSPHRASE``.
    """

    key: SecretValue
    secret: SecretValue
    passphrase: SecretValue

    @classmethod
    def of(cls, key: str, secret: str, passphrase: str) -> ApexCredentials:
        """Wrap three plaintext strings (for tests, the CLI and the composition root)."""
        return cls(SecretValue(key), SecretValue(secret), SecretValue(passphrase))

    def __repr__(self) -> str:
        # Spelled out rather than generated so that a future field cannot leak by default.
        return "ApexCredentials(key=<redacted>, secret=<redacted>, passphrase=<redacted>)"


@dataclass(frozen=True, slots=True)
class ApexAccount:
    """ApeX's answer to ``GET /api/v3/account``.

    Attributes:
        data: the response's ``data`` object, unchanged: a plain ``dict`` (a copy owned by this
            value) so the API layer can return it as JSON as is.
        account_id: ``data["id"]`` as a string when ApeX sent one, else None.
    """

    data: dict[str, Any]
    account_id: str | None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ApexAccount:
        """Build from a ``data`` object, picking the account id out of its ``id`` field."""
        raw_id = data.get("id")
        account_id = str(raw_id) if raw_id is not None and raw_id != "" else None
        return cls(data=dict(data), account_id=account_id)


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    """Outcome of a credential self-test (contract: ``POST /ops/apex-omni/secrets/self-test``).

    Attributes:
        ok: True when ApeX accepted the signed ``GET /api/v3/account``.
        http_status: the account call's HTTP status, None when no response arrived.
        apex_code: ApeX's non-zero ``code`` when it refused, else None.
        skew_ms: ApeX server time minus our clock, in milliseconds (positive: ApeX is ahead),
            measured with the public ``GET /api/v3/time``; None when that call failed.
        account_id: the account id when ok and ApeX sent one.
        reason: None when ok; otherwise a short sentence safe to show (no header, no value).
    """

    ok: bool
    http_status: int | None
    apex_code: int | None
    skew_ms: int | None
    account_id: str | None
    reason: str | None


class ApexGateway(Protocol):
    """Signed access to the ApeX Omni private REST API."""

    async def get_account(self, credentials: ApexCredentials) -> ApexAccount:
        """Fetch the account with a signed ``GET /api/v3/account``.

        Args:
            credentials: the key, secret and passphrase to sign with.

        Returns:
            The account (ApeX's ``data`` object and its id).

        Raises:
            ApexUpstreamError: a network error or timeout, a non-2xx status, a body that is not
                a JSON object with a ``data`` object, or a non-zero ApeX ``code``. The message is
                safe to show; ``details`` carries ``httpStatus``/``apexCode`` where known and never
                a header or credential value.
        """
        ...

    async def self_test(self, credentials: ApexCredentials) -> SelfTestResult:
        """Check credentials against ApeX: clock skew via ``GET /api/v3/time``, then the account.

        Never raises for anything ApeX or the network does: a refusal (e.g. code 10002 wrong key,
        20006 signature error, HTTP 403 rate-limited), a timeout or a garbled answer yield
        ``ok=False`` with the reason.

        Args:
            credentials: the candidate or served credentials.

        Returns:
            The self-test outcome.
        """
        ...
