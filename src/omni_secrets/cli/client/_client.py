"""The CLI's one client of a running omni-secrets API: a method per route, typed answers.

Paths come from :mod:`omni_secrets.api.paths`, the module the routes are declared with. httpx is
imported when a client is made, so ``--help`` and the local commands never load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from omni_secrets.api import paths
from omni_secrets.cli.client._exceptions import ApiStatusError, ApiUnreachable, UnexpectedAnswer
from omni_secrets.cli.client._models import (
    ApexSelfTest,
    BreakGlassActivation,
    BreakGlassPublicKey,
    CommitAnswer,
    RefreshProgress,
    RefreshRequested,
    RollbackAnswer,
    RotationPreview,
    StatusReport,
)

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT_SECONDS = 15.0


class ApiClient:
    """Calls the API at ``base_url`` with a bearer ``token`` (never shown, never logged).

    Use it as a context manager; it closes its connections on exit. Every method raises
    :class:`~omni_secrets.cli.client.ApiError` when the call gives no usable answer:
    :class:`ApiUnreachable`, :class:`ApiStatusError` (the API refused, with the envelope's code
    and correlation id) or :class:`UnexpectedAnswer`.

    Args:
        base_url: ``http(s)://host[:port]``, no path (the resolved ``--url``).
        token: the bearer token.
        token_source: where the token came from (``OMNI_TOKEN``, ``--token``, …): a 401 or 403
            says it, so a person knows which token to replace.
        timeout: seconds for each request.
        transport: an httpx transport to use instead of the network (tests).

    Raises:
        ValueError: ``base_url`` is not an http(s) URL (the CLI checks it before).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        token_source: str = "",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the API URL must start with http:// or https://, got {base_url!r}")
        import httpx  # here, so that `--help` and local commands never load it

        self._token_source = token_source
        self._timeout = timeout

        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- secrets -------------------------------------------------------------------------------

    def status(self) -> StatusReport:
        """The cache, rotation and break-glass state of every type (scope omni-secrets:read)."""
        return StatusReport.parse(self._json("GET", paths.STATUS_PATH))

    def self_test(self) -> ApexSelfTest:
        """Have ApeX judge the credentials served now (scope omni-secrets:rotate)."""
        return ApexSelfTest.parse(self._json("POST", paths.SELF_TEST_PATH))

    # --- rotation ------------------------------------------------------------------------------

    def preview_rotation(
        self, secret_type: str, candidate_version: str | None = None
    ) -> RotationPreview:
        """Check the candidate versions of ``secret_type``'s group; a preview locks the group."""
        body: dict[str, Any] = {"secretType": secret_type}
        if candidate_version is not None:
            body["candidateVersion"] = candidate_version
        return RotationPreview.parse(self._json("POST", paths.ROTATION_PREVIEW_PATH, body))

    def commit_rotation(self, preview_id: str) -> CommitAnswer:
        """Serve a ready preview's candidate versions."""
        path = paths.fill(paths.ROTATION_COMMIT_PATH, previewId=preview_id)
        return CommitAnswer.parse(self._json("POST", path))

    def rollback_rotation(self, secret_type: str) -> RollbackAnswer:
        """Move ``secret_type``'s group back to its ``previous`` versions."""
        body = {"secretType": secret_type}
        return RollbackAnswer.parse(self._json("POST", paths.ROTATION_ROLLBACK_PATH, body))

    def cancel_rotation(self, preview_id: str) -> None:
        """Cancel an open preview, releasing its group's lock."""
        self._send("DELETE", paths.fill(paths.ROTATION_PATH, previewId=preview_id))

    # --- break-glass ---------------------------------------------------------------------------

    def break_glass_public_key(self) -> BreakGlassPublicKey:
        """The key to seal break-glass payloads to, as served (the caller checks it)."""
        return BreakGlassPublicKey.parse(self._json("GET", paths.BREAK_GLASS_PUBLIC_KEY_PATH))

    def activate_break_glass(
        self,
        *,
        secret_type: str,
        key_id: str,
        ciphertext: str,
        ttl_seconds: int,
        reason: str,
        ticket: str | None = None,
    ) -> BreakGlassActivation:
        """Serve a sealed value for ``secret_type`` instead of GSM for ``ttl_seconds``."""
        body: dict[str, Any] = {
            "secretType": secret_type,
            "keyId": key_id,
            "ciphertext": ciphertext,
            "ttlSeconds": ttl_seconds,
            "reason": reason,
        }
        if ticket is not None:
            body["ticket"] = ticket
        answer = self._json("POST", paths.BREAK_GLASS_PATH, body)
        return BreakGlassActivation.parse(answer, key_id=key_id)

    def revoke_break_glass(self, override_id: str) -> None:
        """End an override early."""
        self._send("DELETE", paths.fill(paths.BREAK_GLASS_OVERRIDE_PATH, overrideId=override_id))

    # --- cache refresh -------------------------------------------------------------------------

    def request_refresh(self, secret_types: Sequence[str] | None = None) -> RefreshRequested:
        """Queue a refresh of every type, or of ``secret_types``, on every live replica."""
        body = {"secretTypes": list(secret_types)} if secret_types else {}
        return RefreshRequested.parse(self._json("POST", paths.CACHE_REFRESH_PATH, body))

    def refresh_progress(self, request_id: str) -> RefreshProgress:
        """A refresh request's state, per type and per replica."""
        path = paths.fill(paths.CACHE_REFRESH_REQUEST_PATH, requestId=request_id)
        return RefreshProgress.parse(self._json("GET", path))

    # --- transport -----------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = self._send(method, path, body)
        try:
            return response.json()
        except ValueError:
            raise UnexpectedAnswer(f"JSON answer to {method} {path}") from None

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ApiUnreachable(str(self._http.base_url), _why(exc, self._timeout)) from None
        if not response.is_success:
            raise _status_error(response, self._token_source)
        return response


def _status_error(response: httpx.Response, token_source: str = "") -> ApiStatusError:
    """The error for a 4xx/5xx answer, with the contract's envelope when the body is one."""
    if response.status_code in (401, 403) and token_source:
        return _with_token_source(_status_error(response), token_source)
    try:
        error = response.json()["error"]
        details = error.get("details")
        return ApiStatusError(
            response.status_code,
            code=str(error["code"]),
            error_message=str(error["message"]),
            correlation_id=str(error["correlationId"]),
            details=details if isinstance(details, dict) else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiStatusError(response.status_code)


def _with_token_source(error: ApiStatusError, token_source: str) -> ApiStatusError:
    """``error`` saying where the refused token came from."""
    return ApiStatusError(
        error.status_code,
        code=error.code,
        error_message=error.error_message,
        correlation_id=error.correlation_id,
        details=error.details,
        token_source=token_source,
    )


def _why(exc: Exception, timeout: float) -> str:
    """What a person can do about a failed connection (the exception's own words in brackets,
    never a URL: httpx's messages name the error, not the request)."""
    import httpx

    said = " ".join(str(exc).split())[:160] or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return (
            f"no answer within {timeout:g} s ({type(exc).__name__}): is the service overloaded, "
            "or a firewall dropping the connection?"
        )
    if isinstance(exc, httpx.ConnectError):
        return (
            f"could not connect ({said}): check that the service is running and that --url or "
            "OMNI_URL points at it (after `make run`: source .omni-dev/env)"
        )
    return f"{type(exc).__name__}: {said}"
