"""A small HTTP client for the CLI commands that talk to a running omni-secrets API.

Non-2xx answers become one line on stderr built from the contract's error envelope
(``CODE: message (correlation id)``) and the exit code ``error_mapping`` gives that status (the
same as the error category behind it raised locally); 3 when the API is unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omni_secrets.cli._common import EXIT_UNAVAILABLE, EXIT_USAGE, fail
from omni_secrets.error_mapping import exit_code_for_http_status

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT_SECONDS = 15.0


class ApiClient:
    """Calls the API at ``base_url`` with a bearer ``token``; never prints the token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        if not base_url.startswith(("http://", "https://")):
            fail(f"--url must start with http:// or https://, got {base_url!r}", code=EXIT_USAGE)
        import httpx  # imported here so that `--help` and local commands never load it

        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, json=json)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self._http.base_url}: {type(exc).__name__}", code=EXIT_UNAVAILABLE)
        if response.is_success:
            return response
        fail(_describe_error(response), code=exit_code_for_http_status(response.status_code))

    def get_json(self, path: str) -> Any:
        return self.request("GET", path).json()

    def post_json(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body).json()


def _describe_error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        text = f"{error['code']}: {error['message']}"
        details = error.get("details")
        if isinstance(details, dict) and details:
            text += " (" + ", ".join(f"{key}={value}" for key, value in details.items()) + ")"
        return f"{text} (HTTP {response.status_code}, correlation id {error['correlationId']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code} from the API"
