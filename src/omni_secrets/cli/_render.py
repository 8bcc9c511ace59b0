"""One renderer per API result, for people (``_output.show`` prints ``--json`` itself).

``--json`` prints the result's ``document``, the API's body as it came (or, for the 204 answers,
the small document the command states). For people each result type has one renderer here,
registered with :func:`human`: tables and lines through one Rich console, times relative ("in 4m",
"3h ago"), nothing a script should parse except the ``key=value`` lines some commands print.

The status shows every field whole at any width: one row per type with the columns that stay
short (source, cached and pinned version, age, rotation) when that table fits the terminal, else
(80 columns, a break-glass, a waiting candidate) one block of short lines per type; the long
fields (active break-glass overrides, last errors) are lines of their own under it, where they
can wrap instead of shrinking to ``…``. Rotation shows the API's own ``daysUntilDue``, so text
and JSON agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import singledispatch
from typing import TYPE_CHECKING, Any

import typer

from omni_secrets.cli._output import console
from omni_secrets.cli.client import (
    ActiveOverrides,
    ApexSelfTest,
    BreakGlassActivation,
    CancelAnswer,
    CommitAnswer,
    Instant,
    RefreshProgress,
    RefreshRequested,
    ReplicaProgress,
    RevokeAnswer,
    RollbackAnswer,
    RotationPreview,
    RotationState,
    SecretState,
    StatusReport,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

_STATE_STYLE = {"ready": "green", "degraded": "yellow", "empty": "red"}
_ROTATION_STYLE = {"ok": "green", "due_soon": "yellow", "overdue": "red"}
_SOURCE_STYLE = {"gsm": "green", "break_glass": "magenta"}


@singledispatch
def human(result: Any) -> None:
    """Print ``result`` for a person (one registered renderer per result type)."""
    raise TypeError(f"no renderer for {type(result).__name__}")


def relative(moment: Instant | None, now: datetime | None = None) -> str:
    """``in 4m`` / ``3h ago``; ``-`` when there is no time."""
    if moment is None:
        return "-"
    seconds = (moment.at - (now or datetime.now(UTC))).total_seconds()
    magnitude = abs(seconds)
    if magnitude < 90:
        text = f"{magnitude:.0f}s"
    elif magnitude < 5400:
        text = f"{magnitude / 60:.0f}m"
    elif magnitude < 172_800:
        text = f"{magnitude / 3600:.0f}h"
    else:
        text = f"{magnitude // 86_400:.0f}d"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def due_in(due_at: Instant | None, now: datetime | None = None) -> str:
    """``in 365d`` / ``2d late``, counted as status counts ``daysUntilDue`` (a started day is a
    day: 365 right after a 365-day rotation, as ``status`` then shows)."""
    if due_at is None:
        return "-"
    # Here: the rotation rules load the domain models, which --help must not pay for.
    from omni_secrets.domain.rotation.status import days_until_due

    days = days_until_due(due_at.at, now or datetime.now(UTC))
    return f"in {days}d" if days >= 0 else f"{-days}d late"


def minutes(moment: Instant | None) -> str:
    """``2026-11-25 10:00Z``: an absolute time to the minute (JSON keeps the full value)."""
    if moment is None:
        return "-"
    return moment.at.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


# --- status ----------------------------------------------------------------------------------


@human.register
def render_status(report: StatusReport) -> None:
    """Print the status for a person, every field whole (see the module docstring)."""
    from rich.measure import Measurement

    out = console()
    now = datetime.now(UTC)
    cache = report.cache
    out.print(
        f"[bold]{report.environment}[/] · project [bold]{report.gcp_project_id}[/] · cache "
        f"[{_STATE_STYLE.get(cache.state, 'white')}]{cache.state}[/] · ttl {cache.ttl_seconds}s"
    )
    out.print(
        f"hydrated {relative(cache.hydrated_at, now)} · "
        f"last refresh {relative(cache.last_refresh_at, now)}"
    )
    table = _status_table(report, now)
    if Measurement.get(out, out.options.update_width(10_000), table).maximum <= out.width:
        out.print(table)
    else:  # too narrow for the table: one block per type, nothing cut
        for secret in report.secrets:
            for line in _status_block(secret, now):
                out.print(line)
    _print_section(out, "break-glass overrides active:", _override_lines(report, now))
    _print_section(out, "last errors:", _error_lines(report, now))


def _status_table(report: StatusReport, now: datetime) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("secret type", "req", "source"):
        table.add_column(column, no_wrap=True)
    table.add_column("ver", no_wrap=True, justify="right")
    table.add_column("pin", no_wrap=True, justify="right")
    table.add_column("cur", no_wrap=True, justify="right")  # GSM's `current` alias
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("expires", no_wrap=True)
    table.add_column("rotation", no_wrap=True)
    for secret in report.secrets:
        table.add_row(*_status_row(secret, now))
    return table


def _status_row(secret: SecretState, now: datetime) -> tuple[str, ...]:
    source, age = secret.cache_source, secret.age_seconds
    return (
        secret.secret_type,
        "yes" if secret.required else "no",
        f"[{_SOURCE_STYLE.get(source, 'red')}]{source}[/]",
        secret.version or "-",
        secret.active_version or "-",
        _alias_text(secret),
        "-" if age is None else _seconds(age),
        "[yellow]stale[/]" if secret.stale else relative(secret.expires_at, now),
        _rotation_text(secret.rotation),
    )


def _status_block(secret: SecretState, now: datetime) -> list[str]:
    """The narrow layout: the type and its rotation, then its cache on indented lines."""
    source, age = secret.cache_source, secret.age_seconds
    expires = "[yellow]stale[/]" if secret.stale else f"expires {relative(secret.expires_at, now)}"
    lines = [
        f"[bold]{secret.secret_type}[/] {_rotation_text(secret.rotation)}",
        f"  {'required' if secret.required else 'optional'} · source "
        f"[{_SOURCE_STYLE.get(source, 'red')}]{source}[/] · version {secret.version or '-'} · "
        f"pinned {secret.active_version or '-'}",
        f"  age {'-' if age is None else _seconds(age)} · {expires}",
    ]
    previous, enabled = secret.rotation.previous_version, secret.enabled_versions
    if secret.rotation.alias_version or previous or enabled is not None:
        # GSM's aliases (contract section 15); absent from an older service's answer.
        lines.append(
            f"  gsm current {_alias_text(secret)} · previous {previous or '-'} · "
            f"enabled versions {'-' if enabled is None else enabled}"
        )
    return lines


def _alias_text(secret: SecretState) -> str:
    """What GSM's ``current`` names, in red when it is not the pinned version."""
    alias = secret.rotation.alias_version
    if alias is None:
        return "-"
    return alias if alias == secret.active_version else f"[red]{alias}[/]"


def _override_lines(report: StatusReport, now: datetime) -> list[str]:
    from rich.markup import escape

    return [
        f"  [magenta]{o.secret_type}[/] until {minutes(o.expires_at)} "
        f"({relative(o.expires_at, now)}), override {o.override_id} "
        f"by {escape(str(o.actor))}: {escape(str(o.reason))}"
        for o in ActiveOverrides.of(report).overrides
    ]


def _error_lines(report: StatusReport, now: datetime) -> list[str]:
    from rich.markup import escape

    return [
        f"  [red]{s.secret_type}[/] {s.last_error.code} "
        f"({relative(s.last_error.at, now)}): {escape(str(s.last_error.message))}"
        for s in report.secrets
        if s.last_error is not None
    ]


def _print_section(out: Console, title: str, lines: list[str]) -> None:
    if lines:
        out.print(f"[bold]{title}[/]")
        for line in lines:
            out.print(line)


def _rotation_text(rotation: RotationState) -> str:
    days = rotation.days_until_due
    if days is None:
        when = "no due date"
    elif days >= 0:
        when = f"due in {days}d"
    else:
        when = f"{-days}d late"
    if rotation.candidate_version:
        # A new GSM version waiting for a rotation preview (contract section 12).
        when += f", v{rotation.candidate_version} waiting"
    if rotation.preview_open:
        when += ", preview open"
    if rotation.drift_reason:
        # GSM's current not followed yet (contract section 15): the old versions still serve.
        when += f", [red]drift {rotation.drift_reason}[/]"
    state = rotation.status
    return f"[{_ROTATION_STYLE.get(state, 'white')}]{state}[/] ({when})"


def _seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


# --- cache refresh ---------------------------------------------------------------------------


@human.register
def _queued(queued: RefreshRequested) -> None:
    types = ", ".join(queued.secret_types) or "every type"
    print(f"requestId={queued.request_id}")
    typer.echo(
        f"refresh of {types} {queued.status}; follow it with: "
        f"omni-secrets refresh status {queued.request_id}",
        err=True,
    )


@human.register
def _progress(result: RefreshProgress) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    done = f", completed {relative(result.completed_at)}" if result.completed_at else ""
    out.print(f"refresh {result.request_id}: [bold]{result.status}[/]{done}")
    table = Table(box=None, pad_edge=False)
    for column in ("secret type", "ok", "version", "error"):
        table.add_column(column, no_wrap=column != "error")
    for item in result.results:
        ok = "[green]yes[/]" if item.ok else "[red]no[/]"
        table.add_row(item.secret_type, ok, item.version or "-", escape(item.error or ""))
    if result.results:
        out.print(table)
    _print_replicas(out, result.replicas)


def _print_replicas(out: Console, replicas: tuple[ReplicaProgress, ...]) -> None:
    """One row per replica that took part (the refresh runs on every live replica)."""
    from rich.markup import escape
    from rich.table import Table

    if not replicas:
        return
    out.print("per replica")
    table = Table(box=None, pad_edge=False)
    for column in ("replica", "status", "failed types"):
        table.add_column(column, no_wrap=column != "failed types")
    for replica in replicas:
        failed = [r.secret_type for r in replica.results if not r.ok]
        table.add_row(
            escape(str(replica.replica_id)),
            escape(str(replica.status)),
            escape(", ".join(failed)) or "-",
        )
    out.print(table)


# --- rotation --------------------------------------------------------------------------------


@human.register
def _self_test(result: ApexSelfTest) -> None:
    if result.ok:
        print(
            f"ApeX accepted the served credentials: account {result.account_id}, "
            f"HTTP {result.http_status}, clock skew {result.skew_ms} ms"
        )
    elif result.reason:  # the reason already names the HTTP status and the ApeX code
        print(f"ApeX refused the served credentials: {result.reason}")
    else:
        print(
            f"ApeX refused the served credentials: HTTP {result.http_status}, ApeX code "
            f"{result.apex_code}"
        )


@human.register
def _preview(result: RotationPreview) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    verdict = "[green]ready[/]" if result.ready else "[red]NOT ready[/]"
    out.print(
        f"preview {result.preview_id} of [bold]{result.group}[/]: {verdict} "
        f"(lock until {minutes(result.expires_at)})"
    )
    members = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("secret type", "current", "candidate", "state"):
        members.add_column(column, no_wrap=True)
    for m in result.members:
        members.add_row(
            m.secret_type,
            m.current_version or "-",
            m.candidate_version or "-",
            m.candidate_state or "-",
        )
    out.print(members)
    checks = Table(box=None, pad_edge=False, header_style="bold")
    checks.add_column("check", no_wrap=True)
    checks.add_column("ok", no_wrap=True)
    checks.add_column("detail")
    for check in result.checks:
        ok = "[green]yes[/]" if check.ok else "[red]no[/]"
        checks.add_row(check.name, ok, escape(check.detail or ""))
    out.print(checks)
    out.print(
        f"due now {minutes(result.current_due_at)}; if committed "
        f"{minutes(result.next_due_at_if_committed)}"
    )


@human.register
def _committed(result: CommitAnswer) -> None:
    out = console()
    members = ", ".join(f"{m.secret_type} v{m.active_version}" for m in result.members)
    verb = "rolled back" if isinstance(result, RollbackAnswer) else "committed"
    out.print(f"{verb} [bold]{result.group}[/]: {members}")
    out.print(
        f"last rotated {minutes(result.last_rotated_at)}, next due "
        f"{minutes(result.due_at)} ({due_in(result.due_at)})"
    )


@human.register
def _cancelled(result: CancelAnswer) -> None:
    print(f"cancelled preview {result.preview_id}; the group's rotation lock is released")


# --- break-glass -----------------------------------------------------------------------------


@human.register
def _activation(result: BreakGlassActivation) -> None:
    typer.echo(f"keyId={result.key_id}")
    typer.echo(f"overrideId={result.override_id}")
    typer.echo(f"expiresAt={result.expires_at}")
    typer.echo(
        f"break-glass override active for {result.secret_type} until {result.expires_at} (sealed "
        f"to key {result.key_id}); end it early with: omni-secrets break-glass revoke "
        f"{result.override_id}",
        err=True,
    )


@human.register
def _revoked(result: RevokeAnswer) -> None:
    typer.echo(f"revoked {result.override_id}")


@human.register
def _overrides(result: ActiveOverrides) -> None:
    if not result.overrides:
        print("no active break-glass override")
        return
    from rich.markup import escape

    out = console()
    for o in result.overrides:
        out.print(
            f"[magenta]{o.secret_type}[/] {o.override_id} until "
            f"{minutes(o.expires_at)} ({relative(o.expires_at)}), by "
            f"{escape(str(o.actor))}: {escape(str(o.reason))}",
            soft_wrap=True,
        )


# --- audit -----------------------------------------------------------------------------------


def audit_events(events: list[dict[str, Any]]) -> None:
    """``audit list``: one line per event, newest first, each field whole (lines may wrap)."""
    from rich.markup import escape

    if not events:
        print("no audit event matches")
        return
    out = console()
    for e in events:
        when = datetime.fromisoformat(e["occurredAt"]).strftime("%Y-%m-%d %H:%M:%SZ")
        fields = (
            str(e["id"]),
            when,
            e["secretType"] or "-",
            e["action"],
            f"by {e['actor']}",
            e["result"],
            f"correlation {e['correlationId'] or '-'}",
        )
        out.print(escape("  ".join(str(f) for f in fields)), soft_wrap=True)
