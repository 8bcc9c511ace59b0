"""The hand-built status document equals what StatusResponse (the documented schema) renders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from omni_secrets.api.schemas import StatusResponse
from omni_secrets.api.status_document import StatusRenderer, render_status, status_document
from omni_secrets.service.views import (
    BreakGlassView,
    CacheView,
    LastErrorView,
    RotationView,
    SecretStatusView,
    StatusView,
)

AT = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
ELSEWHERE = datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=1, minutes=30)))


def secret(**changes: object) -> SecretStatusView:
    fields: dict[str, object] = {
        "secret_type": "api_secret",
        "gsm_secret_id": "apex-omni-api-secret",
        "required": True,
        "cache_source": "gsm",
        "version": "3",
        "fetched_at": AT,
        "age_seconds": 12.5,
        "expires_at": AT + timedelta(seconds=300),
        "stale": False,
        "last_error": None,
        "rotation": RotationView("api_credentials", AT, AT + timedelta(days=90), "ok", 90, False),
        "break_glass": BreakGlassView(False),
    }
    fields.update(changes)
    return SecretStatusView(**fields)  # type: ignore[arg-type]


VIEWS = {
    "ready": StatusView(
        "development", "omni-dev", CacheView("ready", 300, AT, AT), (secret(), secret())
    ),
    "empty": StatusView(
        "test",
        "omni-test",
        CacheView("empty", 60, None, None),
        (
            secret(
                cache_source="none",
                version=None,
                fetched_at=None,
                age_seconds=None,
                expires_at=None,
                last_error=LastErrorView("NOT_FOUND", 'secret "x" not found\n', ELSEWHERE),
                rotation=RotationView("api_credentials", None, None, "ok", None, False),
            ),
        ),
    ),
    "break_glass_and_overdue": StatusView(
        "staging",
        "omni-stg-é",
        CacheView("degraded", 300, AT, None),
        (
            secret(
                cache_source="break_glass",
                version="break-glass:ovr-1",
                stale=True,
                age_seconds=0.0,
                rotation=RotationView("api_credentials", AT, AT, "overdue", -3, True),
                break_glass=BreakGlassView(
                    True, "ovr-1", "ops@example.com", AT, ELSEWHERE, "exchange outage ü"
                ),
            ),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_the_document_equals_the_schemas_rendering(name: str) -> None:
    view = VIEWS[name]
    expected = StatusResponse.model_validate(view, from_attributes=True).model_dump(
        mode="json", by_alias=True
    )
    assert status_document(view) == expected
    assert json.loads(render_status(view)) == expected


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_the_rendered_body_validates_against_the_schema(name: str) -> None:
    StatusResponse.model_validate_json(render_status(VIEWS[name]))


def test_an_inactive_override_renders_only_active_false() -> None:
    body = json.loads(render_status(VIEWS["ready"]))
    assert body["secrets"][0]["breakGlass"] == {"active": False}


@pytest.mark.parametrize("name", sorted(VIEWS))
@pytest.mark.parametrize("age", [12.5, 0.0, 1e-07, 123456.789012345, 2.9471311610000157])
def test_the_body_is_byte_for_byte_what_json_dumps_wrote(name: str, age: float) -> None:
    # orjson replaced json.dumps here for speed: the bytes on the wire must not change
    # (non-ASCII text, separators, float digits). One known difference: below 1e-4 orjson writes
    # an exponent without the padding zero (1e-7, not 1e-07), the same number; an age that small
    # exists only in the first 100 us after a fetch.
    view = VIEWS[name]
    view = StatusView(
        view.environment,
        view.gcp_project_id,
        view.cache,
        tuple(
            SecretStatusView(
                **{**_fields(s), "age_seconds": age if s.age_seconds is not None else None}
            )
            for s in view.secrets
        ),
    )
    expected = json.dumps(
        status_document(view), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    if age >= 1e-4 or age == 0.0:
        assert render_status(view) == expected
    assert json.loads(render_status(view)) == json.loads(expected)


def _fields(view: SecretStatusView) -> dict[str, object]:
    return {name: getattr(view, name) for name in SecretStatusView.__dataclass_fields__}


def test_the_renderer_renders_a_view_once_and_a_new_view_again() -> None:
    render = StatusRenderer()
    first = render(VIEWS["ready"])
    assert render(VIEWS["ready"]) is first
    assert render(VIEWS["empty"]) == render_status(VIEWS["empty"])
    assert render(VIEWS["ready"]) == first  # recognised by identity: rendered again, same bytes
