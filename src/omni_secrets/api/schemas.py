"""Request and response bodies of the HTTP API (contract section 5), camelCase on the wire.

Times are RFC 3339 UTC strings with a ``Z`` suffix. No model here has a field for a secret value;
the break-glass request carries only ciphertext.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)
from pydantic.alias_generators import to_camel

from omni_secrets.domain.clock import to_rfc3339

Timestamp = Annotated[datetime, PlainSerializer(to_rfc3339, return_type=str)]
SecretTypeName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


# --- status ----------------------------------------------------------------------------------


class LastError(Schema):
    code: str
    message: str
    at: Timestamp


class DriftJson(Schema):
    since: Timestamp
    reason: str = Field(
        description=(
            "group_incomplete, alias_invalid, not_enabled or checks_failed: why GSM's current "
            "alias is not followed yet (the previous versions are still served, whole)."
        )
    )


class RotationJson(Schema):
    group: str
    last_rotated_at: Timestamp | None
    due_at: Timestamp | None
    status: Literal["ok", "due_soon", "overdue"]
    days_until_due: int | None
    preview_open: bool
    candidate_version: str | None = None
    alias_version: str | None = Field(
        default=None,
        description="The version GSM's `current` alias names (null when the secret has none).",
    )
    previous_version: str | None = Field(
        default=None, description="The version GSM's `previous` alias names (null when absent)."
    )
    drift: DriftJson | None = Field(
        default=None,
        description="Null, or since when and why GSM's `current` alias is not followed yet.",
    )


class BreakGlassJson(Schema):
    """``{"active": false}`` when inactive; the override's fields only while one is active."""

    active: bool
    override_id: str | None = None
    actor: str | None = None
    activated_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    reason: str | None = None

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class SecretStatus(Schema):
    secret_type: str
    gsm_secret_id: str
    required: bool
    cache_source: Literal["gsm", "break_glass", "none"]
    version: str | None
    active_version: str | None = Field(
        default=None, description="The pinned GSM version; `version` is what the cache holds."
    )
    enabled_versions: int | None = Field(
        default=None,
        description="How many of the secret's GSM versions are ENABLED (null until first read).",
    )
    fetched_at: Timestamp | None
    age_seconds: float | None
    expires_at: Timestamp | None
    stale: bool
    last_error: LastError | None
    rotation: RotationJson
    break_glass: BreakGlassJson


class CacheJson(Schema):
    state: Literal["ready", "degraded", "empty"]
    ttl_seconds: int
    hydrated_at: Timestamp | None
    last_refresh_at: Timestamp | None


class ReplicaJson(Schema):
    id: str
    peers: int
    clock_offset_seconds: float | None = None


class EventsJson(Schema):
    subscription: str
    connected: bool
    last_event_at: Timestamp | None


class StatusResponse(Schema):
    environment: str
    gcp_project_id: str
    cache: CacheJson
    secrets: list[SecretStatus]
    replica: ReplicaJson | None = None
    events: EventsJson | None = None


# --- cache refresh ---------------------------------------------------------------------------


class RefreshRequestBody(Schema):
    secret_types: Annotated[list[SecretTypeName], Field(max_length=16)] | None = None


class RefreshQueued(Schema):
    request_id: str
    scope: Literal["all", "targeted"]
    secret_types: list[str]
    status: Literal["queued", "running", "succeeded", "failed", "partial"]
    queued_at: Timestamp


class RefreshResultItem(Schema):
    secret_type: str
    ok: bool
    version: str | None
    error: str | None


class ReplicaRefresh(Schema):
    replica_id: str
    status: Literal["queued", "running", "succeeded", "failed", "partial"]
    results: list[RefreshResultItem]


class RefreshStatusResponse(Schema):
    request_id: str
    status: Literal["queued", "running", "succeeded", "failed", "partial"]
    results: list[RefreshResultItem]
    completed_at: Timestamp | None
    replicas: list[ReplicaRefresh] = []


# --- rotation --------------------------------------------------------------------------------


class RotationPreviewRequest(Schema):
    secret_type: SecretTypeName
    candidate_version: (
        Annotated[str, StringConstraints(min_length=1, max_length=32, strip_whitespace=True)] | None
    ) = None


class RotationRollbackRequest(Schema):
    secret_type: SecretTypeName


class PreviewMemberJson(Schema):
    secret_type: str
    current_version: str | None
    candidate_version: str | None
    candidate_state: str | None


class PreviewCheckJson(Schema):
    name: str
    ok: bool
    detail: str


class RotationPreviewResponse(Schema):
    preview_id: str
    group: str
    expires_at: Timestamp
    ready: bool
    members: list[PreviewMemberJson]
    current_due_at: Timestamp | None
    next_due_at_if_committed: Timestamp
    checks: list[PreviewCheckJson]


class CommittedMember(Schema):
    secret_type: str
    active_version: str


class RotationCommitResponse(Schema):
    group: str
    members: list[CommittedMember]
    last_rotated_at: Timestamp
    due_at: Timestamp


# --- break-glass -----------------------------------------------------------------------------


class PublicKeyResponse(Schema):
    key_id: str
    public_key: str
    algorithm: Literal["x25519-sealed-box"] = "x25519-sealed-box"


class BreakGlassRequest(Schema):
    secret_type: SecretTypeName
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    ciphertext: Annotated[str, StringConstraints(min_length=1, max_length=16_384)]
    ttl_seconds: int
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    ticket: Annotated[str, StringConstraints(max_length=128)] | None = None


class BreakGlassActivated(Schema):
    override_id: str
    secret_type: str
    cache_source: Literal["break_glass"] = "break_glass"
    activated_at: Timestamp
    expires_at: Timestamp


# --- ApeX ------------------------------------------------------------------------------------


class SelfTestResponse(Schema):
    ok: bool
    http_status: int | None
    apex_code: int | None
    skew_ms: int | None
    account_id: str | None
    reason: str | None = None


AccountData = dict[str, Any]
