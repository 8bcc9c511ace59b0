"""The CLI's typed API client, the common options it is reached through, and the shared paths."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from omni_secrets.api import break_glass, consumer, health, paths, refresh, rotation, secrets
from omni_secrets.api.scopes import Scope
from omni_secrets.cli import _exit_code_for_api_error
from omni_secrets.cli._api_options import ApiOptions, api_command
from omni_secrets.cli.client import (
    ApiClient,
    ApiError,
    ApiStatusError,
    ApiUnreachable,
    UnexpectedAnswer,
)

BASE = "http://127.0.0.1:9"
TOKEN = "fake-bearer-token"


def status_body() -> dict[str, Any]:
    return {
        "environment": "development",
        "gcpProjectId": "omni-dev",
        "cache": {
            "state": "ready",
            "ttlSeconds": 300,
            "hydratedAt": "2026-12-07T10:00:00.123456Z",
            "lastRefreshAt": None,
        },
        "secrets": [
            {
                "secretType": "api_secret",
                "required": True,
                "cacheSource": "break_glass",
                "version": "3",
                "ageSeconds": 12.5,
                "expiresAt": "2026-12-07T10:05:00Z",
                "stale": False,
                "lastError": None,
                "rotation": {"status": "ok", "daysUntilDue": 364},
                "breakGlass": {
                    "active": True,
                    "overrideId": "fake-override-1",
                    "actor": "oncall@example.com",
                    "activatedAt": "2026-12-07T10:00:00Z",
                    "expiresAt": "2026-12-07T10:15:00Z",
                    "reason": "drill",
                },
            }
        ],
    }


Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> ApiClient:
    return ApiClient(BASE, TOKEN, transport=httpx.MockTransport(handler))


def answer(status: int, body: Any) -> Handler:
    return lambda request: httpx.Response(status, json=body)


class TestApiClient:
    def test_status_is_parsed_and_keeps_the_body(self) -> None:
        """status() reads the status route with the bearer token and keeps the body for --json."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=status_body())

        with client(handler) as api:
            report = api.status()
        assert seen[0].url.path == paths.STATUS_PATH
        assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
        assert report.ready
        assert report.document == status_body()
        [secret] = report.secrets
        assert secret.override is not None
        assert secret.override.override_id == "fake-override-1"
        assert str(secret.expires_at) == "2026-12-07T10:05:00Z"  # the API's text, verbatim

    def test_ids_are_quoted_into_the_path(self) -> None:
        """An id with a slash stays one path segment."""
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.url.raw_path.decode())
            return httpx.Response(204)

        with client(handler) as api:
            api.cancel_rotation("a/b")
            api.revoke_break_glass("c d")
        assert seen == [
            f"{paths.SECRETS_PREFIX}/rotations/a%2Fb",
            f"{paths.BREAK_GLASS_PATH}/c%20d",
        ]

    def test_a_refresh_of_every_type_posts_an_empty_object(self) -> None:
        """No --secret-type sends {} (every type), as the route expects."""
        bodies: list[Any] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            queued = {"requestId": "r1", "status": "queued", "secretTypes": ["api_key"]}
            return httpx.Response(202, json=queued)

        with client(handler) as api:
            queued = api.request_refresh(None)
            api.request_refresh(["api_key"])
        assert bodies == [{}, {"secretTypes": ["api_key"]}]
        assert queued.request_id == "r1"

    def test_the_activation_document_leads_with_the_key_id(self) -> None:
        """push --json prints the key it sealed to, then the API's answer."""
        body = {"overrideId": "o1", "secretType": "api_secret", "expiresAt": "2026-12-07T10:15Z"}
        with client(answer(201, body)) as api:
            activation = api.activate_break_glass(
                secret_type="api_secret", key_id="k1", ciphertext="c", ttl_seconds=60, reason="r"
            )
        assert list(activation.document) == ["keyId", "overrideId", "secretType", "expiresAt"]

    def test_an_error_envelope_becomes_a_status_error(self) -> None:
        """The envelope's code, message, details and correlation id make the one line."""
        envelope = {
            "error": {
                "code": "ROTATION_IN_PROGRESS",
                "message": "locked",
                "correlationId": "c1",
                "details": {"previewId": "p1"},
            }
        }
        with client(answer(409, envelope)) as api, pytest.raises(ApiStatusError) as raised:
            api.preview_rotation("api_key")
        assert raised.value.status_code == 409
        assert raised.value.code == "ROTATION_IN_PROGRESS"
        assert raised.value.message == (
            "ROTATION_IN_PROGRESS: locked (previewId=p1) (HTTP 409, correlation id c1)"
        )

    def test_an_answer_without_an_envelope_names_the_status(self) -> None:
        """A proxy's error page still becomes one line."""
        proxy_page = client(lambda r: httpx.Response(502, text="<html>"))
        with proxy_page as api, pytest.raises(ApiStatusError) as raised:
            api.status()
        assert raised.value.message == "HTTP 502 from the API"

    def test_no_answer_is_unreachable(self) -> None:
        """A transport failure names the URL and the failure's kind, never the token."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        with client(handler) as api, pytest.raises(ApiUnreachable) as raised:
            api.status()
        assert raised.value.message == (
            f"cannot reach {BASE}: could not connect (refused): check that the service is running "
            "and that --url or OMNI_URL points at it (after `make run`: source .omni-dev/env)"
        )
        assert TOKEN not in raised.value.message

    @pytest.mark.parametrize(
        "body", [[], {"environment": "x"}, {**status_body(), "cache": {"state": 1}}]
    )
    def test_a_body_off_the_contract_is_unexpected(self, body: Any) -> None:
        """A success the contract does not describe is one UnexpectedAnswer, not a KeyError."""
        with client(answer(200, body)) as api, pytest.raises(UnexpectedAnswer) as raised:
            api.status()
        assert raised.value.message == "the API did not answer with a usable status document"

    def test_a_url_that_is_not_http_is_misuse(self) -> None:
        """The CLI checks the URL first; the client refuses anything else outright."""
        with pytest.raises(ValueError, match="http"):
            ApiClient("ftp://example.com", TOKEN)


class TestExitCodes:
    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (ApiStatusError(401), 1),
            (ApiStatusError(403), 1),
            (ApiStatusError(404), 1),
            (ApiStatusError(409), 1),
            (ApiStatusError(422), 2),
            (ApiStatusError(400), 2),
            (ApiStatusError(502), 3),
            (ApiStatusError(503), 3),
            (ApiUnreachable(BASE, "ConnectError"), 3),
            (UnexpectedAnswer("status document"), 1),
        ],
    )
    def test_each_api_error_has_its_exit_code(self, error: ApiError, code: int) -> None:
        """A refusal exits as its status's category would locally; no answer at all is 3."""
        assert _exit_code_for_api_error(error) == code


def _command(seen: list[ApiOptions]) -> Callable[..., None]:
    def fetch(name: str, api: ApiOptions, wait: bool = False) -> None:
        """Fetch a thing."""
        seen.append(api)

    return api_command(Scope.READ)(fetch)


class TestApiCommand:
    def test_the_options_take_the_markers_place_and_json_comes_last(self) -> None:
        """--help lists the connection options where `api` was, and --json after the rest."""
        wrapped = _command([])
        assert list(inspect.signature(wrapped).parameters) == [
            "name",
            "url",
            "token",
            "token_file",
            "insecure",
            "id_token_audience",
            "wait",
            "as_json",
        ]
        assert wrapped.__doc__ == "Fetch a thing."
        assert wrapped.__name__ == "fetch"

    def test_the_command_gets_one_options_object(self) -> None:
        """The six options arrive as one ApiOptions with the command's scope."""
        seen: list[ApiOptions] = []
        _command(seen)(
            name="n",
            url="http://127.0.0.1:1",
            token=TOKEN,
            token_file=None,
            insecure=False,
            id_token_audience=None,
            wait=True,
            as_json=True,
        )
        assert seen == [ApiOptions(Scope.READ, url="http://127.0.0.1:1", token=TOKEN, as_json=True)]

    def test_under_takes_what_was_not_given_from_the_parent(self) -> None:
        """`refresh --url X status ID`: the group's options fill the gaps, --json excepted."""
        parent = ApiOptions(Scope.REFRESH, url="http://a", token=TOKEN, insecure=True, as_json=True)
        child = ApiOptions(Scope.REFRESH, url="http://b").under(parent)
        assert child == ApiOptions(Scope.REFRESH, url="http://b", token=TOKEN, insecure=True)

    def test_a_command_without_the_marker_is_refused(self) -> None:
        """Forgetting `api` fails at import, not when an operator runs the command."""

        def bare() -> None: ...

        with pytest.raises(TypeError, match="api"):
            api_command(Scope.READ)(bare)


class TestPaths:
    def test_every_path_constant_is_a_served_route(self) -> None:
        """The constants the client requests are exactly the routes the API declares."""
        routers = (break_glass, consumer, health, refresh, rotation, secrets)
        served = {route.path for module in routers for route in module.router.routes}
        declared = {
            value
            for name, value in vars(paths).items()
            if name.endswith("_PATH") and isinstance(value, str)
        }
        assert declared == served

    def test_fill_quotes_each_parameter(self) -> None:
        """A value cannot add a path segment or a query."""
        assert paths.fill(paths.CACHE_REFRESH_REQUEST_PATH, requestId="x/y?z") == (
            f"{paths.CACHE_REFRESH_PATH}/x%2Fy%3Fz"
        )
