"""Preview checks, in contract order: candidates_enabled, candidates_newer, candidates_differ
(payload SHA-256 digests), checksums_valid, apex_self_test (:func:`assess_preview`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from omni_secrets.domain.catalog import Catalog, RotationGroup, SecretType
from omni_secrets.domain.secret_store import VersionState


class CheckName(StrEnum):
    """The preview's checks, in the order the contract lists them."""

    CANDIDATES_ENABLED = "candidates_enabled"
    CANDIDATES_NEWER = "candidates_newer"
    CANDIDATES_DIFFER = "candidates_differ"
    CHECKSUMS_VALID = "checksums_valid"
    APEX_SELF_TEST = "apex_self_test"


class SelfTestVerdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"
    NOT_RUN = "not_run"
    """The self-test could not run (candidate unreadable, ApeX unreachable, ...)."""


@dataclass(frozen=True, slots=True)
class SelfTestOutcome:
    """What the ApeX self-test with the candidate credentials said.

    Attributes:
        result: passed, failed, not applicable or not run.
        detail: a safe sentence (ApeX's code and message, the reason it could not run, ...).
    """

    result: SelfTestVerdict
    detail: str = ""

    @classmethod
    def passed(cls, detail: str = "") -> SelfTestOutcome:
        return cls(SelfTestVerdict.PASSED, detail)

    @classmethod
    def failed(cls, detail: str) -> SelfTestOutcome:
        return cls(SelfTestVerdict.FAILED, detail)

    @classmethod
    def not_applicable(cls, detail: str = "") -> SelfTestOutcome:
        return cls(SelfTestVerdict.NOT_APPLICABLE, detail)

    @classmethod
    def not_run(cls, detail: str) -> SelfTestOutcome:
        return cls(SelfTestVerdict.NOT_RUN, detail)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A resolved candidate version of one member.

    Attributes:
        version: the version number.
        state: its state in GSM as last read.
        checksum_ok: True when its payload was read and its CRC32C matched, False on a mismatch,
            None when the payload could not be read (the check could not run).
        read_error: why the payload could not be read (a gRPC code name such as
            ``FAILED_PRECONDITION``), shown in the check's detail; None when it was read.
        payload_sha256: hex SHA-256 of the candidate's payload; None when it was not read.
    """

    version: str
    state: VersionState
    checksum_ok: bool | None = None
    read_error: str | None = None
    payload_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class MemberCandidate:
    """One member of the group under preview.

    Attributes:
        secret_type: the member.
        current_version: its active (pinned) version, None when none is pinned yet.
        candidate: the proposed version, None when none could be resolved.
        current_payload_sha256: hex SHA-256 of the active version's payload; None when none is
            active or it could not be read.
    """

    secret_type: SecretType
    current_version: str | None
    candidate: Candidate | None
    current_payload_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class CheckVerdict:
    """One entry of the preview's ``checks`` (``{name, ok, detail}``)."""

    name: CheckName
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class PreviewAssessment:
    """The preview's checks in contract order; ``ready`` only when all pass."""

    checks: tuple[CheckVerdict, ...]

    @property
    def ready(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def self_test_applies(group: RotationGroup) -> bool:
    """Whether the ApeX self-test exercises ``group``: it signs with the API credentials only."""
    return group is RotationGroup.API_CREDENTIALS


def assess_preview(
    group: RotationGroup,
    members: Sequence[MemberCandidate],
    self_test: SelfTestOutcome | None,
) -> PreviewAssessment:
    """Run the preview's rules over a whole rotation group.

    A check that cannot run for some member (no candidate, payload unreadable, self-test not
    run) says so in its ``detail`` and is not ok. For ``zk_keys`` the self-test does not apply:
    that check is ok and says so, whatever ``self_test`` holds.

    Args:
        group: the group under preview.
        members: one entry per member of the group, in catalog order.
        self_test: the ApeX self-test with the candidate credentials; None when it was not run.

    Returns:
        The checks: ``candidates_enabled``, ``candidates_newer``, ``candidates_differ``,
        ``checksums_valid``, ``apex_self_test``.

    Raises:
        ValueError: ``members`` is not exactly the group's members (misuse).
    """
    # Group membership does not depend on the GSM prefix, so the default catalog answers it.
    expected = sorted(entry.secret_type.value for entry in Catalog().group_members(group))
    if sorted(m.secret_type.value for m in members) != expected:
        raise ValueError(f"members must be exactly the {group.value} group: {expected}")
    return PreviewAssessment(
        checks=(
            _per_member(CheckName.CANDIDATES_ENABLED, members, _enabled),
            _per_member(CheckName.CANDIDATES_NEWER, members, _newer),
            _per_member(CheckName.CANDIDATES_DIFFER, members, _differs),
            _per_member(CheckName.CHECKSUMS_VALID, members, _checksum_valid),
            _check_self_test(group, self_test),
        )
    )


def _no_candidate(member: MemberCandidate) -> str:
    return f"could not run for {member.secret_type.value}: no candidate version was resolved"


_Finding = tuple[bool, str]
"""One member's result under a check: ``(ok, sentence)``."""


def _per_member(
    name: CheckName,
    members: Sequence[MemberCandidate],
    judge: Callable[[MemberCandidate, Candidate], _Finding],
) -> CheckVerdict:
    """A check that judges each member's candidate in turn.

    A member with no candidate fails the check (it could not run for it); the others get
    ``judge``'s finding. Not ok when any member fails: the detail joins the failures with
    ``"; "``; otherwise it joins every member's ok sentence.
    """
    problems: list[str] = []
    fine: list[str] = []
    for member in members:
        if member.candidate is None:
            problems.append(_no_candidate(member))
            continue
        ok, sentence = judge(member, member.candidate)
        (fine if ok else problems).append(sentence)
    if problems:
        return CheckVerdict(name, False, "; ".join(problems))
    return CheckVerdict(name, True, "; ".join(fine))


def _enabled(member: MemberCandidate, candidate: Candidate) -> _Finding:
    if candidate.state is not VersionState.ENABLED:
        return False, f"{member.secret_type.value} v{candidate.version} is {candidate.state.value}"
    return True, f"{member.secret_type.value} v{candidate.version} is ENABLED"


def _version_number(version: str) -> int | None:
    return int(version) if version.isdigit() else None


def _newer(member: MemberCandidate, candidate: Candidate) -> _Finding:
    """A rotation only moves forward: a rollback to an older version would reset the clock."""
    name = member.secret_type.value
    current = member.current_version
    if current is None:
        return True, f"{name}: none active -> v{candidate.version}"
    new = _version_number(candidate.version)
    old = _version_number(current)
    if new is None or old is None:
        return False, f"{name}: cannot compare v{candidate.version} with v{current}"
    if new <= old:
        return (
            False,
            f"{name}: candidate v{candidate.version} is not newer than the active v{current}",
        )
    return True, f"{name}: v{current} -> v{candidate.version}"


def _differs(member: MemberCandidate, candidate: Candidate) -> _Finding:
    """The candidate's payload digest must differ from the active one's (not just its number)."""
    name = member.secret_type.value
    current = member.current_version
    if candidate.version == current:
        return False, f"{name}: candidate v{candidate.version} is already the active version"
    if current is None:
        return True, f"{name}: none active -> v{candidate.version}"
    if candidate.payload_sha256 is None:
        return False, (
            f"could not run for {name}: the payload of candidate v{candidate.version} "
            "could not be read"
        )
    if member.current_payload_sha256 is None:
        return False, (
            f"could not run for {name}: the payload of active v{current} could not be read"
        )
    if candidate.payload_sha256 == member.current_payload_sha256:
        return False, (
            f"{name}: candidate v{candidate.version} has the same payload (SHA-256) as "
            f"active v{current}"
        )
    return True, f"{name}: v{current} -> v{candidate.version}, payload differs"


def _checksum_valid(member: MemberCandidate, candidate: Candidate) -> _Finding:
    name = member.secret_type.value
    if candidate.checksum_ok is None:
        why = f" ({candidate.read_error})" if candidate.read_error else ""
        return False, (
            f"could not run for {name} v{candidate.version}: its payload could not be read{why}"
        )
    if not candidate.checksum_ok:
        return False, f"{name} v{candidate.version}: CRC32C mismatch"
    return True, f"{name} v{candidate.version}: CRC32C verified"


def _check_self_test(group: RotationGroup, outcome: SelfTestOutcome | None) -> CheckVerdict:
    name = CheckName.APEX_SELF_TEST
    if not self_test_applies(group):
        return CheckVerdict(
            name,
            True,
            f"does not apply to {group.value}: the ApeX self-test signs with the API "
            "credentials only",
        )
    if outcome is None:
        return CheckVerdict(name, False, "could not run: the self-test was not attempted")
    suffix = f": {outcome.detail}" if outcome.detail else ""
    if outcome.result is SelfTestVerdict.PASSED:
        return CheckVerdict(name, True, f"ApeX accepted the candidate credentials{suffix}")
    if outcome.result is SelfTestVerdict.FAILED:
        return CheckVerdict(name, False, f"ApeX refused the candidate credentials{suffix}")
    if outcome.result is SelfTestVerdict.NOT_RUN:
        return CheckVerdict(name, False, f"could not run{suffix}")
    return CheckVerdict(
        name, False, f"reported as not applicable, but {group.value} requires it{suffix}"
    )
