"""The one error table: HTTP status and CLI exit code per category, and the generated OpenAPI."""

from __future__ import annotations

import inspect

import pytest

from omni_secrets.api.app import create_app
from omni_secrets.api.errors import error_responses, status_for
from omni_secrets.config import load_settings
from omni_secrets.domain import errors
from omni_secrets.error_mapping import (
    ERROR_TABLE,
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    exit_code_for,
    exit_code_for_http_status,
    http_status_for,
)

DOMAIN_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.OmniSecretsError) and cls.__module__ == errors.__name__
]

# The base (a bug when raised bare) and the startup guard never become an HTTP answer.
ANSWERED_OVER_HTTP = [
    cls
    for cls in DOMAIN_ERRORS
    if cls is not errors.OmniSecretsError and not issubclass(cls, errors.ConfigurationRejected)
]


class TestTable:
    @pytest.mark.parametrize("error_type", DOMAIN_ERRORS, ids=lambda c: c.__name__)
    def test_every_error_has_a_one_line_docstring(self, error_type: type) -> None:
        """Each error class says, in its first docstring line, when it is raised."""
        own = error_type.__dict__.get("__doc__")
        assert own, f"{error_type.__name__} has no docstring of its own"
        assert len(own.strip().splitlines()[0]) <= 96

    @pytest.mark.parametrize("error_type", ANSWERED_OVER_HTTP, ids=lambda c: c.__name__)
    def test_local_error_and_its_http_answer_exit_alike(self, error_type: type) -> None:
        """An error raised in the CLI and the same error answered by the API give one code."""
        assert exit_code_for(error_type) == exit_code_for_http_status(http_status_for(error_type))

    def test_categories(self) -> None:
        """The documented codes: input 2, unavailable 3, not found and conflict 1."""
        assert exit_code_for(errors.TtlTooLong) == EXIT_USAGE
        assert exit_code_for(errors.BreakGlassKeyInvalid) == EXIT_USAGE
        assert exit_code_for(errors.DatabaseUnavailable) == EXIT_UNAVAILABLE
        assert exit_code_for(errors.ApexUpstreamError) == EXIT_UNAVAILABLE
        assert exit_code_for(errors.OverrideNotFound) == EXIT_FAILED
        assert exit_code_for(errors.ReplayDetected) == EXIT_FAILED
        assert exit_code_for(errors.OmniSecretsError) == EXIT_FAILED

    def test_http_statuses(self) -> None:
        """The table's statuses, most specific row first (ApeX 502 before Unavailable 503)."""
        assert status_for(errors.ApexUpstreamError("down")) == 502
        assert status_for(errors.SecretsUnavailable(["api_key"])) == 503
        assert status_for(errors.PreviewNotFound("p")) == 404
        assert status_for(errors.UnknownSecretType("x")) == 422
        assert status_for(errors.ReplayDetected("again")) == 409
        assert status_for(errors.OmniSecretsError("bug")) == 500
        assert [row.category for row in ERROR_TABLE][:2] == [
            errors.ApexUpstreamError,
            errors.Unavailable,
        ]

    @pytest.mark.parametrize(
        ("status", "code"),
        [(401, 1), (403, 1), (404, 1), (409, 1), (400, 2), (405, 2), (422, 2), (500, 3), (502, 3)],
    )
    def test_http_answers(self, status: int, code: int) -> None:
        """API answers outside the domain tree: auth refusals 1, other 4xx 2, 5xx 3."""
        assert exit_code_for_http_status(status) == code


class TestGeneratedResponses:
    def test_grouped_by_status_with_codes_and_docstrings(self) -> None:
        """Each status lists the codes raised with the first line of their docstrings."""
        responses = error_responses(errors.ReplayDetected, errors.TtlTooLong, errors.UnknownKeyId)
        assert set(responses) == {409, 422}
        assert responses[409]["description"] == (
            "REPLAY_DETECTED: Raised when a break-glass payload's nonce was used before"
        )
        assert responses[422]["description"].startswith("TTL_TOO_LONG: Raised when")
        assert "; UNKNOWN_KEY_ID: " in responses[422]["description"]

    def test_openapi_documents_what_the_handlers_answer(
        self, clean_env: pytest.MonkeyPatch
    ) -> None:
        """The app's OpenAPI names each route's error codes under the table's status."""
        app = create_app(
            load_settings(
                OMNI_ENVIRONMENT="test",
                GCP_PROJECT_ID="omni-test",
                OMNI_AUTH_HS256_SECRET="fake-hs256-secret-for-unit-tests-0123456789",
            )
        )
        paths = app.openapi()["paths"]
        activate = paths["/ops/apex-omni/secrets/break-glass"]["post"]["responses"]
        assert "REPLAY_DETECTED" in activate["409"]["description"]
        assert "BREAK_GLASS_DISABLED" in activate["503"]["description"]
        account = paths["/apex-omni/account"]["get"]["responses"]
        assert "APEX_UPSTREAM_ERROR" in account["502"]["description"]
        assert "OMNI_SECRETS_UNAVAILABLE" in account["503"]["description"]
        commit = paths["/ops/apex-omni/secrets/rotations/{previewId}/commit"]["post"]
        assert {"404", "409", "503"} <= set(commit["responses"])
