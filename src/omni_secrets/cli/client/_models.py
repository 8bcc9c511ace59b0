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
from datetime import datetime
from typing import Any

from omni_secrets.cli.client._exceptions import UnexpectedAnswer

Document = Mapping[str, Any]

TERMINAL_REFRESH_STATES = ("succeeded", "failed", "partial")
FAILED_REFRESH_STATES = ("failed", "partial")


@dataclass(frozen=True, slots=True)
class Instant:
    """An RFC 3339 time from the API: ``text`` as written, ``at`` as an aware datetime."""

    text: str
    at: datetime

    def __str__(self) -> str:
        return self.text


class _Fields:
    """Typed reads of one JSON object; anything missing or mistyped is an UnexpectedAnswer."""

    def __init__(self, value: Any, what: str) -> None:
        if not isinstance(value, Mapping):
            raise UnexpectedAnswer(what)
        self.document: Document = value
        self._what = what

    def _get(self, key: str, kinds: type | tuple[type, ...], *, optional: bool) -> Any:
        value = self.document.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
            raise UnexpectedAnswer(self._what)
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, str, optional=False))

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, str, optional=True)
        return None if value is None else str(value)

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool, optional=False))

    def optional_flag(self, key: str) -> bool:
        return bool(self._get(key, bool, optional=True))

    def optional_int(self, key: str) -> int | None:
        value = self._get(key, int, optional=True)
        return None if value is None else int(value)

    def integer(self, key: str) -> int:
        return int(self._get(key, int, optional=False))

    def optional_number(self, key: str) -> float | None:
        value = self._get(key, (int, float), optional=True)
        return None if value is None else float(value)

    def instant(self, key: str) -> Instant:
        moment = self.optional_instant(key)
        if moment is None:
            raise UnexpectedAnswer(self._what)
        return moment

    def optional_instant(self, key: str) -> Instant | None:
        text = self._get(key, str, optional=True)
        if not text:
            return None
        try:
            return Instant(text, datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise UnexpectedAnswer(self._what) from None

    def child(self, key: str) -> _Fields:
        return _Fields(self.document.get(key), self._what)

    def optional_child(self, key: str) -> _Fields | None:
        value = self.document.get(key)
        return None if not value else _Fields(value, self._what)

    def children(self, key: str, *, optional: bool = False) -> list[_Fields]:
        items = self._get(key, list, optional=optional) or []
        return [_Fields(item, self._what) for item in items]

    def texts(self, key: str) -> tuple[str, ...]:
        items = self._get(key, list, optional=True) or []
        if not all(isinstance(item, str) for item in items):
            raise UnexpectedAnswer(self._what)
        return tuple(items)


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


# --- status --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheState:
    state: str
    ttl_seconds: int
    hydrated_at: Instant | None
    last_refresh_at: Instant | None


@dataclass(frozen=True, slots=True)
class RotationState:
    status: str
    days_until_due: int | None
    candidate_version: str | None


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
class LastError:
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
    last_error: LastError | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """``GET /ops/apex-omni/secrets/status``."""

    environment: str
    gcp_project_id: str
    cache: CacheState
    secrets: tuple[SecretState, ...]
    document: Document = field(repr=False)

    @property
    def ready(self) -> bool:
        return self.cache.state == "ready"

    @classmethod
    def parse(cls, body: Any) -> StatusReport:
        doc = _Fields(body, "status document")
        cache = doc.child("cache")
        return cls(
            environment=doc.text("environment"),
            gcp_project_id=doc.text("gcpProjectId"),
            cache=CacheState(
                state=cache.text("state"),
                ttl_seconds=cache.integer("ttlSeconds"),
                hydrated_at=cache.optional_instant("hydratedAt"),
                last_refresh_at=cache.optional_instant("lastRefreshAt"),
            ),
            secrets=tuple(_secret_state(item) for item in doc.children("secrets")),
            document=doc.document,
        )


def _secret_state(item: _Fields) -> SecretState:
    secret_type = item.text("secretType")
    rotation = item.child("rotation")
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
        ),
        override=_override(secret_type, glass) if glass and glass.optional_flag("active") else None,
        last_error=None
        if error is None
        else LastError(
            code=error.optional_text("code"),
            message=error.optional_text("message"),
            at=error.optional_instant("at"),
        ),
    )


def _override(secret_type: str, glass: _Fields) -> ActiveOverride:
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
class RefreshQueued:
    """``POST /internal/apex-omni/secrets/cache/refresh``."""

    request_id: str
    status: str
    secret_types: tuple[str, ...]
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any) -> RefreshQueued:
        doc = _Fields(body, "refresh request")
        return cls(
            request_id=doc.text("requestId"),
            status=doc.text("status"),
            secret_types=doc.texts("secretTypes"),
            document=doc.document,
        )


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """One type's result; ``error`` is the short text the API gave (a code or a message)."""

    secret_type: str
    ok: bool
    version: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ReplicaRefresh:
    replica_id: str | None
    status: str | None
    results: tuple[RefreshOutcome, ...]


@dataclass(frozen=True, slots=True)
class RefreshProgress:
    """``GET /internal/apex-omni/secrets/cache/refresh/{requestId}``."""

    request_id: str
    status: str
    completed_at: Instant | None
    results: tuple[RefreshOutcome, ...]
    replicas: tuple[ReplicaRefresh, ...]
    document: Document = field(repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_REFRESH_STATES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_REFRESH_STATES

    @classmethod
    def parse(cls, body: Any) -> RefreshProgress:
        doc = _Fields(body, "refresh request")
        return cls(
            request_id=doc.text("requestId"),
            status=doc.text("status"),
            completed_at=doc.optional_instant("completedAt"),
            results=_outcomes(doc.children("results", optional=True)),
            replicas=tuple(
                ReplicaRefresh(
                    replica_id=replica.optional_text("replicaId"),
                    status=replica.optional_text("status"),
                    results=_outcomes(replica.children("results", optional=True)),
                )
                for replica in doc.children("replicas", optional=True)
            ),
            document=doc.document,
        )


def _outcomes(items: Sequence[_Fields]) -> tuple[RefreshOutcome, ...]:
    return tuple(
        RefreshOutcome(
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
class SelfTestResult:
    """``POST /ops/apex-omni/secrets/self-test``: did ApeX accept the served credentials?"""

    ok: bool
    http_status: int | None
    apex_code: int | None
    skew_ms: int | None
    account_id: str | None
    reason: str | None
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any) -> SelfTestResult:
        doc = _Fields(body, "self-test result")
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
        doc = _Fields(body, "rotation preview")
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
class CommittedMember:
    secret_type: str
    active_version: str


@dataclass(frozen=True, slots=True)
class RotationCommitted:
    """``POST /ops/apex-omni/secrets/rotations/{previewId}/commit``."""

    group: str
    members: tuple[CommittedMember, ...]
    last_rotated_at: Instant | None
    due_at: Instant | None
    document: Document = field(repr=False)

    @classmethod
    def parse(cls, body: Any) -> RotationCommitted:
        doc = _Fields(body, "rotation commit")
        return cls(
            group=doc.text("group"),
            members=tuple(
                CommittedMember(m.text("secretType"), m.text("activeVersion"))
                for m in doc.children("members")
            ),
            last_rotated_at=doc.optional_instant("lastRotatedAt"),
            due_at=doc.optional_instant("dueAt"),
            document=doc.document,
        )


@dataclass(frozen=True, slots=True)
class RotationCancelled:
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
        doc = _Fields(body, "break-glass public key")
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
        doc = _Fields(body, "break-glass activation")
        return cls(
            key_id=key_id,
            override_id=doc.text("overrideId"),
            secret_type=doc.text("secretType"),
            expires_at=doc.instant("expiresAt"),
            document={"keyId": key_id, **doc.document},
        )


@dataclass(frozen=True, slots=True)
class OverrideRevoked:
    """``DELETE /ops/apex-omni/secrets/break-glass/{overrideId}`` (204: the CLI states the id)."""

    override_id: str

    @property
    def document(self) -> Document:
        return {"overrideId": self.override_id, "revoked": True}
