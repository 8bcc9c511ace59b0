"""What can go wrong when the CLI calls the API, as one small tree (modelled on httpx's)::

    ApiError                    the call did not give the CLI a usable answer
    ├── ApiUnreachable          no answer at all: refused, timed out, TLS failed
    ├── ApiStatusError          the API answered with an error status (the contract's envelope)
    └── UnexpectedAnswer        a success whose body is not what the contract describes

The client only raises; it never prints or exits. ``omni_secrets.cli.main`` turns each error into
one line on stderr and the exit code ``error_mapping`` gives it (an :class:`ApiStatusError` the
code of its HTTP status, so a refusal exits as the same error raised locally would). Every
``message`` is safe to show: it never quotes the bearer token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def without_user_info(url: str) -> str:
    """``url`` without ``user:password@`` (contract section 17: user-info is never printed)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<the API URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class ApiError(Exception):
    """Base of every failed API call. ``message`` is one line, safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiUnreachable(ApiError):
    """Raised when no HTTP answer came back (connection refused, timeout, TLS, DNS)."""

    def __init__(self, base_url: str, reason: str) -> None:
        base_url = without_user_info(base_url)
        super().__init__(f"cannot reach {base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason


class ApiStatusError(ApiError):
    """Raised when the API answered 4xx or 5xx.

    ``code``, ``correlation_id`` and ``details`` come from the error envelope (contract section
    5); they are None (``details`` empty) when the body was not an envelope, e.g. a proxy's page.
    """

    def __init__(
        self,
        status_code: int,
        *,
        code: str | None = None,
        error_message: str | None = None,
        correlation_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        token_source: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.token_source = token_source
        self.code = code
        self.error_message = error_message
        self.correlation_id = correlation_id
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self._describe())

    def _describe(self) -> str:
        source = f"; the token came from {self.token_source}" if self.token_source else ""
        if self.code is None or self.correlation_id is None:
            return f"HTTP {self.status_code} from the API{source}"
        text = f"{self.code}: {self.error_message}"
        if self.details:
            text += " (" + ", ".join(f"{key}={value}" for key, value in self.details.items()) + ")"
        return f"{text} (HTTP {self.status_code}, correlation id {self.correlation_id}){source}"


class UnexpectedAnswer(ApiError):
    """Raised when a success's body lacks what the contract promises (e.g. an older server)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the API did not answer with a usable {what}")
        self.what = what
