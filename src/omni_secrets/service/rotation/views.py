"""What the rotation service hands to the edges (API): previews and commits, never a value.

Field names match ``api/schemas.py`` so routes validate them with ``from_attributes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PreviewMemberView:
    secret_type: str
    current_version: str | None
    candidate_version: str | None
    candidate_state: str | None


@dataclass(frozen=True, slots=True)
class PreviewCheckView:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class RotationPreviewView:
    """The preview as ``POST /ops/apex-omni/secrets/rotation-preview`` answers it (no values)."""

    preview_id: str
    group: str
    expires_at: datetime
    ready: bool
    members: tuple[PreviewMemberView, ...]
    current_due_at: datetime | None
    next_due_at_if_committed: datetime
    checks: tuple[PreviewCheckView, ...]


@dataclass(frozen=True, slots=True)
class CommittedMemberView:
    secret_type: str
    active_version: str


@dataclass(frozen=True, slots=True)
class RotationCommitView:
    """The committed rotation: the new pins and the group's new dates."""

    group: str
    members: tuple[CommittedMemberView, ...]
    last_rotated_at: datetime
    due_at: datetime
