"""Rotation rules: due dates, status boundaries, candidates, preview checks, monitor decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omni_secrets.domain.catalog import RotationGroup, SecretType
from omni_secrets.domain.errors import CandidateVersionInvalid, InvalidInput
from omni_secrets.domain.rotation import (
    PREVIEW_LOCK_DURATION,
    AlertSeverity,
    Candidate,
    CheckName,
    MemberCandidate,
    MonitoredSubject,
    PreviewAssessment,
    RotationAlertAction,
    RotationStatus,
    SelfTestOutcome,
    assess_preview,
    days_until_due,
    due_at,
    monitor_decision,
    next_due_if_committed,
    preview_expires_at,
    resolve_candidate,
    rotation_status,
    self_test_applies,
    status_unchanged_until,
    worst_status,
)
from omni_secrets.domain.secret_store import VersionInfo, VersionState

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DUE = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)

API = (SecretType.API_KEY, SecretType.API_SECRET, SecretType.API_PASSPHRASE)
ZK = (SecretType.ZK_SEEDS, SecretType.ZK_L2_KEY)


def version(number: int, state: VersionState = VersionState.ENABLED) -> VersionInfo:
    return VersionInfo(version=str(number), state=state, create_time=NOW + number * DAY)


def members(
    types: tuple[SecretType, ...] = API,
    current: str | None = "3",
    candidate: Candidate | None = None,
    **per_type: Candidate | None,
) -> list[MemberCandidate]:
    default = candidate or Candidate(
        "4", VersionState.ENABLED, checksum_ok=True, payload_sha256=NEW_DIGEST
    )
    active_digest = OLD_DIGEST if current is not None else None
    return [
        MemberCandidate(t, current, per_type.get(t.value, default), active_digest) for t in types
    ]


OLD_DIGEST = "a" * 64
NEW_DIGEST = "b" * 64


def check(assessment: PreviewAssessment, name: CheckName) -> tuple[bool, str]:
    found = next(c for c in assessment.checks if c.name is name)
    return found.ok, found.detail


class TestDueAt:
    def test_adds_the_period(self) -> None:
        """The due date is the last rotation plus the period in days."""
        assert due_at(NOW, 365) == NOW + 365 * DAY

    def test_refuses_a_zero_period(self) -> None:
        """A period under one day is a programming error."""
        with pytest.raises(ValueError, match="period_days"):
            due_at(NOW, 0)

    def test_refuses_a_naive_time(self) -> None:
        """A naive last-rotation time is a programming error."""
        with pytest.raises(ValueError, match="naive"):
            due_at(NOW.replace(tzinfo=None), 365)

    def test_next_due_if_committed_starts_from_now(self) -> None:
        """A commit now would make the group due one period from now."""
        assert next_due_if_committed(NOW, 30) == NOW + 30 * DAY

    def test_preview_lock_lasts_fifteen_minutes(self) -> None:
        """A preview opened now holds its lock for 15 minutes."""
        assert PREVIEW_LOCK_DURATION.total_seconds() == 15 * 60
        assert preview_expires_at(NOW) == NOW + timedelta(minutes=15)


class TestRotationStatus:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (DUE - 30 * DAY - US, RotationStatus.OK),
            (DUE - 30 * DAY, RotationStatus.DUE_SOON),
            (DUE - US, RotationStatus.DUE_SOON),
            (DUE, RotationStatus.OVERDUE),
            (DUE + 400 * DAY, RotationStatus.OVERDUE),
        ],
    )
    def test_boundaries_belong_to_the_later_status(
        self, now: datetime, expected: RotationStatus
    ) -> None:
        """The warning window opens at due-30d inclusive; overdue starts at due inclusive."""
        assert rotation_status(DUE, now, 30) is expected

    def test_zero_warning_days_has_no_due_soon(self) -> None:
        """Without a warning window a secret goes from ok straight to overdue."""
        assert rotation_status(DUE, DUE - US, 0) is RotationStatus.OK
        assert rotation_status(DUE, DUE, 0) is RotationStatus.OVERDUE

    def test_refuses_negative_warning_days(self) -> None:
        """A negative warning window is a programming error."""
        with pytest.raises(ValueError, match="warning_days"):
            rotation_status(DUE, NOW, -1)

    def test_worst_status_picks_the_most_urgent(self) -> None:
        """A group is as urgent as its most urgent member; an empty group is ok."""
        assert worst_status([RotationStatus.OK, RotationStatus.OVERDUE]) is RotationStatus.OVERDUE
        assert worst_status([RotationStatus.DUE_SOON, RotationStatus.OK]) is (
            RotationStatus.DUE_SOON
        )
        assert worst_status([]) is RotationStatus.OK


class TestDaysUntilDue:
    @pytest.mark.parametrize(
        ("now", "days"),
        [
            (DUE - 300 * DAY, 300),
            (DUE - 300 * DAY + timedelta(milliseconds=5), 300),  # right after a rotation
            (DUE - DAY - US, 2),
            (DUE - DAY, 1),
            (DUE - DAY + US, 1),
            (DUE - US, 1),
            (DUE, 0),
            (DUE + timedelta(seconds=1), -1),
            (DUE + DAY, -1),
            (DUE + DAY + US, -2),
        ],
    )
    def test_started_days_count(self, now: datetime, days: int) -> None:
        """A started day counts: 300 just after a 300-day rotation, 1 in the last day, 0 on the
        due moment, negative as soon as it has passed (issue 26: not 364 after a 365-day one)."""
        assert days_until_due(DUE, now) == days


class TestResolveCandidate:
    VERSIONS = (
        version(5, VersionState.DISABLED),
        version(4),
        version(3, VersionState.DESTROYED),
        version(2),
    )

    def test_latest_is_the_newest_enabled_version(self) -> None:
        """``latest`` skips a newer DISABLED version, unlike GSM's own ``latest``."""
        assert resolve_candidate("latest", self.VERSIONS).version == "4"

    def test_latest_compares_numerically(self) -> None:
        """Version 10 is newer than version 9."""
        assert resolve_candidate("latest", [version(9), version(10)]).version == "10"

    def test_number_names_an_enabled_version(self) -> None:
        """An explicit number resolves to that version when it is ENABLED."""
        assert resolve_candidate("2", self.VERSIONS) == self.VERSIONS[3]

    @pytest.mark.parametrize(
        ("requested", "match"),
        [
            ("5", "version 5 of api_key is DISABLED"),
            ("3", "version 3 of api_key is DESTROYED"),
            ("9", "version 9 of api_key does not exist"),
            ("newest", "neither 'latest' nor a version number"),
            ("-1", "neither"),
            ("04", "neither"),
            ("4.0", "neither"),
            ("", "neither"),
            ("\u0664", "neither"),
        ],
    )
    def test_refuses_unusable_candidates(self, requested: str, match: str) -> None:
        """Non-numbers, unknown and non-ENABLED versions are CandidateVersionInvalid (422)."""
        with pytest.raises(CandidateVersionInvalid, match=match) as info:
            resolve_candidate(requested, self.VERSIONS, secret_type="api_key")
        assert isinstance(info.value, InvalidInput)
        assert info.value.details["secretType"] == "api_key"

    def test_latest_without_enabled_versions(self) -> None:
        """``latest`` with no ENABLED version at all is CandidateVersionInvalid."""
        with pytest.raises(CandidateVersionInvalid, match="no ENABLED version"):
            resolve_candidate("latest", [version(1, VersionState.DISABLED)])


class TestAssessPreview:
    def test_all_checks_pass(self) -> None:
        """Enabled, different, verified candidates and a passing self-test make it ready."""
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(), SelfTestOutcome.passed("HTTP 200")
        )
        assert [c.name.value for c in result.checks] == [
            "candidates_enabled",
            "candidates_newer",
            "candidates_differ",
            "checksums_valid",
            "apex_self_test",
        ]
        assert all(c.ok for c in result.checks)
        assert result.ready
        assert check(result, CheckName.CANDIDATES_DIFFER)[1].startswith(
            "api_key: v3 -> v4, payload differs"
        )
        assert check(result, CheckName.CANDIDATES_NEWER)[1].startswith("api_key: v3 -> v4")
        assert "HTTP 200" in check(result, CheckName.APEX_SELF_TEST)[1]

    def test_candidate_equal_to_active_is_not_ready(self) -> None:
        """A candidate that is already the active version fails candidates_differ."""
        same = Candidate("3", VersionState.ENABLED, checksum_ok=True)
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_secret=same), SelfTestOutcome.passed()
        )
        ok, detail = check(result, CheckName.CANDIDATES_DIFFER)
        assert not ok
        assert detail == "api_secret: candidate v3 is already the active version"
        assert not result.ready

    def test_same_payload_under_a_new_version_is_not_ready(self) -> None:
        """candidates_differ compares payload digests: a re-upload of the same value fails."""
        copy = Candidate("4", VersionState.ENABLED, checksum_ok=True, payload_sha256=OLD_DIGEST)
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_secret=copy), SelfTestOutcome.passed()
        )
        ok, detail = check(result, CheckName.CANDIDATES_DIFFER)
        assert not ok
        assert detail == "api_secret: candidate v4 has the same payload (SHA-256) as active v3"
        assert check(result, CheckName.CANDIDATES_NEWER)[0]
        assert not result.ready

    @pytest.mark.parametrize("older", ["1", "2"])
    def test_older_candidate_is_not_ready(self, older: str) -> None:
        """A rollback to an older version fails candidates_newer, even with another payload."""
        old = Candidate(older, VersionState.ENABLED, checksum_ok=True, payload_sha256=NEW_DIGEST)
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_key=old), SelfTestOutcome.passed()
        )
        ok, detail = check(result, CheckName.CANDIDATES_NEWER)
        assert not ok
        assert detail == f"api_key: candidate v{older} is not newer than the active v3"
        assert check(result, CheckName.CANDIDATES_DIFFER)[0]
        assert not result.ready

    def test_numeric_comparison_of_versions(self) -> None:
        """v10 is newer than v9 (numbers, not strings)."""
        ten = Candidate("10", VersionState.ENABLED, checksum_ok=True, payload_sha256=NEW_DIGEST)
        result = assess_preview(
            RotationGroup.API_CREDENTIALS,
            members(current="9", candidate=ten),
            SelfTestOutcome.passed(),
        )
        assert check(result, CheckName.CANDIDATES_NEWER)[0]

    def test_unreadable_payload_means_differ_could_not_run(self) -> None:
        """Without the candidate's digest, candidates_differ says it could not run."""
        unread = Candidate("4", VersionState.ENABLED, checksum_ok=None, read_error="UNAVAILABLE")
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_key=unread), SelfTestOutcome.passed()
        )
        ok, detail = check(result, CheckName.CANDIDATES_DIFFER)
        assert not ok and detail.startswith("could not run for api_key")

    def test_unpinned_member_differs(self) -> None:
        """A member without an active version has nothing to be equal to."""
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(current=None), SelfTestOutcome.passed()
        )
        ok, detail = check(result, CheckName.CANDIDATES_DIFFER)
        assert ok
        assert "api_key: none active -> v4" in detail

    def test_disabled_candidate_fails_candidates_enabled(self) -> None:
        """A candidate that is not ENABLED fails candidates_enabled, naming it."""
        disabled = Candidate("4", VersionState.DISABLED, checksum_ok=None)
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_key=disabled), SelfTestOutcome.passed()
        )
        ok, detail = check(result, CheckName.CANDIDATES_ENABLED)
        assert not ok
        assert detail == "api_key v4 is DISABLED"
        assert not result.ready

    def test_missing_candidate_says_checks_could_not_run(self) -> None:
        """Without a candidate the per-member checks say they could not run and are not ok."""
        result = assess_preview(
            RotationGroup.API_CREDENTIALS,
            members(api_passphrase=None),
            SelfTestOutcome.not_run("api_passphrase has no candidate"),
        )
        for name in (
            CheckName.CANDIDATES_ENABLED,
            CheckName.CANDIDATES_DIFFER,
            CheckName.CHECKSUMS_VALID,
        ):
            ok, detail = check(result, name)
            assert not ok
            assert detail == "could not run for api_passphrase: no candidate version was resolved"
        ok, detail = check(result, CheckName.APEX_SELF_TEST)
        assert not ok
        assert detail == "could not run: api_passphrase has no candidate"

    def test_checksum_mismatch(self) -> None:
        """A CRC32C mismatch fails checksums_valid."""
        bad = Candidate("4", VersionState.ENABLED, checksum_ok=False)
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_secret=bad), SelfTestOutcome.passed()
        )
        assert check(result, CheckName.CHECKSUMS_VALID) == (False, "api_secret v4: CRC32C mismatch")

    def test_unread_checksum_could_not_run(self) -> None:
        """A payload that could not be read leaves checksums_valid not ok, saying why."""
        unread = Candidate("4", VersionState.ENABLED, checksum_ok=None)
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_key=unread), SelfTestOutcome.passed()
        )
        ok, detail = check(result, CheckName.CHECKSUMS_VALID)
        assert not ok
        assert detail.startswith("could not run for api_key v4")

    def test_unread_checksum_names_the_reason(self) -> None:
        """The store's reason for not reading a payload appears in the check's detail."""
        unread = Candidate("4", VersionState.ENABLED, checksum_ok=None, read_error="NOT_FOUND")
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(api_key=unread), SelfTestOutcome.passed()
        )
        assert check(result, CheckName.CHECKSUMS_VALID) == (
            False,
            "could not run for api_key v4: its payload could not be read (NOT_FOUND)",
        )

    def test_self_test_failure(self) -> None:
        """ApeX refusing the candidate credentials fails apex_self_test and readiness."""
        result = assess_preview(
            RotationGroup.API_CREDENTIALS,
            members(),
            SelfTestOutcome.failed("HTTP 401, apexCode 20003"),
        )
        ok, detail = check(result, CheckName.APEX_SELF_TEST)
        assert not ok
        assert detail == "ApeX refused the candidate credentials: HTTP 401, apexCode 20003"
        assert not result.ready

    def test_self_test_not_attempted(self) -> None:
        """A missing self-test outcome for api_credentials is not ok and says it could not run."""
        result = assess_preview(RotationGroup.API_CREDENTIALS, members(), None)
        assert check(result, CheckName.APEX_SELF_TEST) == (
            False,
            "could not run: the self-test was not attempted",
        )

    def test_not_applicable_is_not_accepted_for_api_credentials(self) -> None:
        """api_credentials needs the self-test; a not-applicable outcome does not pass it."""
        result = assess_preview(
            RotationGroup.API_CREDENTIALS, members(), SelfTestOutcome.not_applicable()
        )
        assert not check(result, CheckName.APEX_SELF_TEST)[0]

    @pytest.mark.parametrize("outcome", [None, SelfTestOutcome.not_applicable()])
    def test_zk_keys_self_test_does_not_apply(self, outcome: SelfTestOutcome | None) -> None:
        """For zk_keys the self-test check is ok and says it does not apply."""
        result = assess_preview(RotationGroup.ZK_KEYS, members(ZK), outcome)
        ok, detail = check(result, CheckName.APEX_SELF_TEST)
        assert ok
        assert detail.startswith("does not apply to zk_keys")
        assert result.ready

    def test_self_test_applies_only_to_api_credentials(self) -> None:
        """Only the API credentials group is exercised by the ApeX self-test."""
        assert self_test_applies(RotationGroup.API_CREDENTIALS)
        assert not self_test_applies(RotationGroup.ZK_KEYS)

    def test_refuses_a_partial_group(self) -> None:
        """Members must be exactly the group's members."""
        with pytest.raises(ValueError, match="api_credentials"):
            assess_preview(RotationGroup.API_CREDENTIALS, members(API[:2]), None)
        with pytest.raises(ValueError, match="zk_keys"):
            assess_preview(RotationGroup.ZK_KEYS, members(API), None)

    def test_empty_assessment_is_not_ready(self) -> None:
        """An assessment without checks is never ready."""
        assert not PreviewAssessment(checks=()).ready


def subject(name: str, due: datetime, previous: RotationStatus | None = None) -> MonitoredSubject:
    return MonitoredSubject(subject=name, due_at=due, previous_status=previous)


OK_DUE = NOW + 100 * DAY
SOON_DUE = NOW + 10 * DAY
LATE_DUE = NOW - DAY


class TestMonitorDecision:
    def test_all_fine_exits_zero_without_alerts(self) -> None:
        """Everything ok: exit 0, no alerts."""
        decision = monitor_decision(
            [subject("api_credentials", OK_DUE, RotationStatus.OK), subject("zk_keys", OK_DUE)],
            now=NOW,
            warning_days=30,
        )
        assert decision.worst is RotationStatus.OK
        assert decision.alerts == ()
        assert decision.status_of("zk_keys") is RotationStatus.OK

    def test_due_soon_triggers_a_warning_and_exits_one(self) -> None:
        """Entering the warning window triggers a warning alert; the run exits 1."""
        decision = monitor_decision(
            [subject("api_credentials", SOON_DUE, RotationStatus.OK), subject("zk_keys", OK_DUE)],
            now=NOW,
            warning_days=30,
        )
        assert decision.worst is RotationStatus.DUE_SOON
        (alert,) = decision.alerts
        assert (alert.subject, alert.action, alert.severity) == (
            "api_credentials",
            RotationAlertAction.TRIGGER,
            AlertSeverity.WARNING,
        )
        assert alert.status is RotationStatus.DUE_SOON
        assert alert.days_until_due == 10
        assert alert.due_at == SOON_DUE

    def test_overdue_triggers_critical_and_exits_two(self) -> None:
        """Becoming overdue raises the alert to critical; any overdue subject makes exit 2."""
        decision = monitor_decision(
            [
                subject("api_credentials", LATE_DUE, RotationStatus.DUE_SOON),
                subject("zk_keys", SOON_DUE, RotationStatus.DUE_SOON),
            ],
            now=NOW,
            warning_days=30,
        )
        assert decision.worst is RotationStatus.OVERDUE
        (alert,) = decision.alerts
        assert (alert.subject, alert.action, alert.severity) == (
            "api_credentials",
            RotationAlertAction.TRIGGER,
            AlertSeverity.CRITICAL,
        )
        assert alert.days_until_due == -1

    def test_unchanged_status_sends_nothing(self) -> None:
        """A status that did not change since the previous run sends no alert, but still counts."""
        decision = monitor_decision(
            [subject("api_credentials", LATE_DUE, RotationStatus.OVERDUE)],
            now=NOW,
            warning_days=30,
        )
        assert decision.alerts == ()
        assert decision.worst is RotationStatus.OVERDUE
        assert not decision.assessments[0].changed

    def test_back_to_ok_resolves(self) -> None:
        """After a rotation the subject is ok again and its alert is resolved."""
        decision = monitor_decision(
            [subject("api_credentials", OK_DUE, RotationStatus.OVERDUE)],
            now=NOW,
            warning_days=30,
        )
        (alert,) = decision.alerts
        assert (alert.action, alert.severity, alert.status) == (
            RotationAlertAction.RESOLVE,
            None,
            RotationStatus.OK,
        )
        assert decision.worst is RotationStatus.OK
        assert decision.assessments[0].changed

    def test_overdue_back_to_due_soon_downgrades_to_warning(self) -> None:
        """Leaving overdue for due_soon (a longer period) re-raises the alert as a warning."""
        decision = monitor_decision(
            [subject("api_credentials", SOON_DUE, RotationStatus.OVERDUE)],
            now=NOW,
            warning_days=30,
        )
        (alert,) = decision.alerts
        assert (alert.action, alert.severity) == (
            RotationAlertAction.TRIGGER,
            AlertSeverity.WARNING,
        )

    def test_first_run_triggers_only_non_ok_subjects(self) -> None:
        """With no previous status, non-ok subjects trigger and ok ones stay quiet."""
        decision = monitor_decision(
            [subject("a", OK_DUE), subject("b", SOON_DUE), subject("c", LATE_DUE)],
            now=NOW,
            warning_days=30,
        )
        assert [(a.subject, a.severity) for a in decision.alerts] == [
            ("b", AlertSeverity.WARNING),
            ("c", AlertSeverity.CRITICAL),
        ]
        assert [a.status for a in decision.assessments] == [
            RotationStatus.OK,
            RotationStatus.DUE_SOON,
            RotationStatus.OVERDUE,
        ]

    def test_nothing_to_check_exits_zero(self) -> None:
        """No subjects: exit 0 and no alerts."""
        decision = monitor_decision([], now=NOW, warning_days=30)
        assert (decision.worst, decision.alerts, decision.assessments) == (
            RotationStatus.OK,
            (),
            (),
        )

    def test_refuses_duplicate_subjects(self) -> None:
        """Subjects are keyed by name, so duplicates are a programming error."""
        with pytest.raises(ValueError, match="unique"):
            monitor_decision(
                [subject("a", OK_DUE), subject("a", LATE_DUE)], now=NOW, warning_days=30
            )

    def test_status_of_unknown_subject(self) -> None:
        """Asking for a subject that was not assessed raises KeyError."""
        with pytest.raises(KeyError):
            monitor_decision([], now=NOW, warning_days=30).status_of("a")


@given(
    due=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    offset=st.timedeltas(min_value=timedelta(days=-800), max_value=timedelta(days=800)),
    warning_days=st.integers(min_value=0, max_value=60),
    fraction=st.floats(min_value=0, max_value=1),
)
def test_status_and_days_hold_until_the_instant_given_and_change_there(
    due: datetime, offset: timedelta, warning_days: int, fraction: float
) -> None:
    now = due - offset

    def shown(at: datetime) -> tuple[RotationStatus, int]:
        return rotation_status(due, at, warning_days), days_until_due(due, at)

    until = status_unchanged_until(due, now, warning_days)
    assert until > now
    assert shown(until) != shown(now)
    last_same = until - timedelta(microseconds=1)
    assert shown(last_same) == shown(now)
    between = now + (last_same - now) * fraction
    assert shown(between) == shown(now)
