"""The API's answers as the CLI reads them: frozen dataclasses parsed from the JSON bodies.

Each result keeps the body exactly as the API sent it in ``document`` (``--json`` prints that, key
order and all) and gives the fields the CLI uses typed. A body missing a field the contract
promises raises :class:`~omni_secrets.cli.client.UnexpectedAnswer` while parsing, so a command
never meets a half-read answer. Standard library only: this loads with the CLI.

Times stay :class:`Instant`: the text the API wrote (what ``str()`` gives back, so a line that
quotes a time quotes it verbatim) and the moment it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from omni_secrets.cli.client._fields import Document, Fields, Instant

TERMINAL_REFRESH_STATES = ("succeeded", "failed", "partial")
FAILED_REFRESH_STATES = ("failed", "partial")


# --- status --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheSummary:
    state: str
    ttl_seconds: int
    hydrated_at: Instant | None
    last_refresh_at: Instant | None


@dataclass(frozen=True, slots=True)
class RotationState:
    status: str
    days_until_due: int | None
    candidate_version: str | None
    preview_open: bool = False
    alias_version: str | None = None
    previous_version: str | None = None
    drift_reason: str | None = None
    """Why GSM's ``current`` is not followed yet (``rotation.drift.reason``), None in step."""


@dataclass(frozen=True, slots=True)
class ActiveOverride:
    """A break-glass override in force, as the status document shows it."""

    secret_type: str
    override_id: str | None
    actor: str | None
    expires_at: Instant | None
    reason: str | None
    # The status document's breakGlass object, for `break-glass list --json`.
    document: Document = field(repr=False)


@dataclass(frozen=True, slots=True)
class LastFetchError:
    code: str | None
    message: str | None
    at: Instant | None


@dataclass(frozen=True, slots=True)
class SecretState:
    secret_type: str
    required: bool
    cache_source: str
    version: str | None
    age_seconds: float | None
    stale: bool
    expires_at: Instant | None
    rotation: RotationState
    override: ActiveOverride | None
    last_error: LastFetchError | None
    active_version: str | None = None
    enabled_versions: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """``GET /ops/apex-omni/secrets/status``."""

    environment: str
    gcp_project_id: str
    cache: CacheSummary
    secrets: tuple[SecretState, ...]
    document: Document = field(repr=False)

    @property
    def ready(self) -> bool:
        return self.cache.state == "ready"

    @classmethod
    def parse(cls, body: Any) -> StatusReport:
        doc = Fields(body, "status document")
        cache = doc.child("cache")
        return cls(
            environment=doc.text("environment"),
            gcp_project_id=doc.text("gcpProjectId"),
            cache=CacheSummary(
                state=cache.text("state"),
                ttl_seconds=cache.integer("ttlSeconds"),
                hydrated_at=cache.optional_instant("hydratedAt"),
                last_refresh_at=cache.optional_instant("lastRefreshAt"),
            ),
            secrets=tuple(_secret_state(item) for item in doc.children("secrets")),
            document=doc.document,
        )


def _secret_state(item: Fields) -> SecretState:
    secret_type = item.text("secretType")
    rotation = item.child("rotation")
    drift = rotation.optional_child("drift")
    glass = item.optional_child("breakGlass")
    error = item.optional_child("lastError")
    return SecretState(
        secret_type=secret_type,
        required=item.flag("required"),
        cache_source=item.text("cacheSource"),
        version=item.optional_text("version"),
        age_seconds=item.optional_number("ageSeconds"),
        stale=item.optional_flag("stale"),
        expires_at=item.optional_instant("expiresAt"),
        rotation=RotationState(
            status=rotation.optional_text("status") or "?",
            days_until_due=rotation.optional_int("daysUntilDue"),
            candidate_version=rotation.optional_text("candidateVersion"),
            preview_open=rotation.optional_flag("previewOpen"),
            alias_version=rotation.optional_text("aliasVersion"),
            previous_version=rotation.optional_text("previousVersion"),
            drift_reason=drift.optional_text("reason") if drift is not None else None,
        ),
        override=_override(secret_type, glass) if glass and glass.optional_flag("active") else None,
        last_error=None
        if error is None
        else LastFetchError(
            code=error.optional_text("code"),
            message=error.optional_text("message"),
            at=error.optional_instant("at"),
        ),
        active_version=item.optional_text("activeVersion"),
        enabled_versions=item.optional_int("enabledVersions"),
    )


def _override(secret_type: str, glass: Fields) -> ActiveOverride:
    return ActiveOverride(
        secret_type=secret_type,
        override_id=glass.optional_text("overrideId"),
        actor=glass.optional_text("actor"),
        expires_at=glass.optional_instant("expiresAt"),
        reason=glass.optional_text("reason"),
        document=glass.document,
    )


@dataclass(frozen=True, slots=True)
class ActiveOverrides:
    """The break-glass overrides in force (``break-glass list``), read from the status."""

    overrides: tuple[ActiveOverride, ...]

    @classmethod
    def of(cls, report: StatusReport) -> ActiveOverrides:
        return cls(tuple(s.override for s in report.secrets if s.override is not None))

    @property
    def document(self) -> Document:
        return {
            "overrides": [
                {
                    "secretType": o.secret_type,
                    **{key: value for key, value in o.document.items() if key != "active"},
                }
                for o in self.overrides
            ]
        }


# --- cache refresh ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefreshRequested:
    """``POST /internal/apex-omni/secrets/cache/refresh``."""

    request_id: str
    status: str
    secret_types: tuple[str, ...]
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any) -> RefreshRequested:
        doc = Fields(body, "refresh request")
        return cls(
            request_id=doc.text("requestId"),
            status=doc.text("status"),
            secret_types=doc.texts("secretTypes"),
            document=doc.document,
        )


@dataclass(frozen=True, slots=True)
class RefreshedType:
    """One type's result; ``error`` is the short text the API gave (a code or a message)."""

    secret_type: str
    ok: bool
    version: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ReplicaProgress:
    replica_id: str | None
    status: str | None
    results: tuple[RefreshedType, ...]


@dataclass(frozen=True, slots=True)
class RefreshProgress:
    """``GET /internal/apex-omni/secrets/cache/refresh/{requestId}``."""

    request_id: str
    status: str
    completed_at: Instant | None
    results: tuple[RefreshedType, ...]
    replicas: tuple[ReplicaProgress, ...]
    document: Document = field(repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_REFRESH_STATES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_REFRESH_STATES

    @classmethod
    def parse(cls, body: Any) -> RefreshProgress:
        doc = Fields(body, "refresh request")
        return cls(
            request_id=doc.text("requestId"),
            status=doc.text("status"),
            completed_at=doc.optional_instant("completedAt"),
            results=_outcomes(doc.children("results", optional=True)),
            replicas=tuple(
                ReplicaProgress(
                    replica_id=replica.optional_text("replicaId"),
                    status=replica.optional_text("status"),
                    results=_outcomes(replica.children("results", optional=True)),
                )
                for replica in doc.children("replicas", optional=True)
            ),
            document=doc.document,
        )


def _outcomes(items: Sequence[Fields]) -> tuple[RefreshedType, ...]:
    return tuple(
        RefreshedType(
            secret_type=item.text("secretType"),
            ok=item.flag("ok"),
            version=item.optional_text("version"),
            error=_error_text(item.document.get("error")),
        )
        for item in items
    )


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, Mapping):
        return str(error.get("code") or error.get("message") or "")
    return str(error)


# --- rotation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApexSelfTest:
    """``POST /ops/apex-omni/secrets/self-test``: did ApeX accept the served credentials?"""

    ok: bool
    http_status: int | None
    apex_code: int | None
    skew_ms: int | None
    account_id: str | None
    reason: str | None
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any) -> ApexSelfTest:
        doc = Fields(body, "self-test result")
        return cls(
            ok=doc.optional_flag("ok"),
            http_status=doc.optional_int("httpStatus"),
            apex_code=doc.optional_int("apexCode"),
            skew_ms=doc.optional_int("skewMs"),
            account_id=doc.optional_text("accountId"),
            reason=doc.optional_text("reason"),
            document=doc.document,
        )


@dataclass(frozen=True, slots=True)
class PreviewMember:
    secret_type: str
    current_version: str | None
    candidate_version: str | None
    candidate_state: str | None


@dataclass(frozen=True, slots=True)
class PreviewCheck:
    name: str
    ok: bool
    detail: str | None


@dataclass(frozen=True, slots=True)
class RotationPreview:
    """``POST /ops/apex-omni/secrets/rotation-preview``."""

    preview_id: str
    group: str
    ready: bool
    expires_at: Instant | None
    members: tuple[PreviewMember, ...]
    checks: tuple[PreviewCheck, ...]
    current_due_at: Instant | None
    next_due_at_if_committed: Instant | None
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any) -> RotationPreview:
        doc = Fields(body, "rotation preview")
        return cls(
            preview_id=doc.text("previewId"),
            group=doc.text("group"),
            ready=doc.optional_flag("ready"),
            expires_at=doc.optional_instant("expiresAt"),
            members=tuple(
                PreviewMember(
                    secret_type=m.text("secretType"),
                    current_version=m.optional_text("currentVersion"),
                    candidate_version=m.optional_text("candidateVersion"),
                    candidate_state=m.optional_text("candidateState"),
                )
                for m in doc.children("members", optional=True)
            ),
            checks=tuple(
                PreviewCheck(name=c.text("name"), ok=c.flag("ok"), detail=c.optional_text("detail"))
                for c in doc.children("checks", optional=True)
            ),
            current_due_at=doc.optional_instant("currentDueAt"),
            next_due_at_if_committed=doc.optional_instant("nextDueAtIfCommitted"),
            document=doc.document,
        )


@dataclass(frozen=True, slots=True)
class CommittedVersion:
    secret_type: str
    active_version: str


@dataclass(frozen=True, slots=True)
class CommitAnswer:
    """``POST /ops/apex-omni/secrets/rotations/{previewId}/commit``."""

    group: str
    members: tuple[CommittedVersion, ...]
    last_rotated_at: Instant | None
    due_at: Instant | None
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any) -> Self:
        doc = Fields(body, "rotation commit")
        return cls(
            group=doc.text("group"),
            members=tuple(
                CommittedVersion(m.text("secretType"), m.text("activeVersion"))
                for m in doc.children("members")
            ),
            last_rotated_at=doc.optional_instant("lastRotatedAt"),
            due_at=doc.optional_instant("dueAt"),
            document=doc.document,
        )


@dataclass(frozen=True, slots=True)
class RollbackAnswer(CommitAnswer):
    """``POST /ops/apex-omni/secrets/rotations/rollback`` (the body of a commit)."""


@dataclass(frozen=True, slots=True)
class CancelAnswer:
    """``DELETE /ops/apex-omni/secrets/rotations/{previewId}`` (204: the CLI states the id)."""

    preview_id: str

    @property
    def document(self) -> Document:
        return {"previewId": self.preview_id, "cancelled": True}


# --- break-glass -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakGlassPublicKey:
    """``GET /ops/apex-omni/secrets/break-glass/public-key``, as served (checked by the caller)."""

    key_id: str
    public_key: str
    algorithm: str

    @classmethod
    def parse(cls, body: Any) -> BreakGlassPublicKey:
        doc = Fields(body, "break-glass public key")
        return cls(
            key_id=doc.text("keyId"),
            public_key=doc.text("publicKey"),
            algorithm=doc.text("algorithm"),
        )


@dataclass(frozen=True, slots=True)
class BreakGlassActivation:
    """``POST /ops/apex-omni/secrets/break-glass``, with the id of the key the CLI sealed to."""

    key_id: str
    override_id: str
    secret_type: str
    expires_at: Instant
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any, *, key_id: str) -> BreakGlassActivation:
        doc = Fields(body, "break-glass activation")
        return cls(
            key_id=key_id,
            override_id=doc.text("overrideId"),
            secret_type=doc.text("secretType"),
            expires_at=doc.instant("expiresAt"),
            document={"keyId": key_id, **doc.document},
        )


@dataclass(frozen=True, slots=True)
class RevokeAnswer:
    """``DELETE /ops/apex-omni/secrets/break-glass/{overrideId}`` (204: the CLI states the id)."""

    override_id: str

    @property
    def document(self) -> Document:
        return {"overrideId": self.override_id, "revoked": True}
