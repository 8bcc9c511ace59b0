"""``omni-secrets status`` and ``omni-secrets refresh [status]``: views of a running service.

The status table is laid out for an 80-column terminal: one row per type with the columns that
stay short (source, version, age, rotation), and the long ones (active break-glass overrides,
last errors) as lines of their own under it, where they can wrap instead of shrinking to
nothing. The rotation column shows the API's own ``daysUntilDue``, so table and JSON agree.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._bearer import IdTokenAudienceOption
from omni_secrets.cli._common import EXIT_FAILED, EXIT_UNAVAILABLE, fail
from omni_secrets.cli._http import ApiClient
from omni_secrets.cli._output import console, minutes, print_json, relative
from omni_secrets.cli._target import (
    InsecureOption,
    JsonOption,
    TokenFileOption,
    TokenOption,
    UrlOption,
    resolve_target,
)

STATUS_PATH = "/ops/apex-omni/secrets/status"
REFRESH_PATH = "/internal/apex-omni/secrets/cache/refresh"
TERMINAL_STATES = ("succeeded", "failed", "partial")
_STATE_STYLE = {"ready": "green", "degraded": "yellow", "empty": "red"}
_ROTATION_STYLE = {"ok": "green", "due_soon": "yellow", "overdue": "red"}
_SOURCE_STYLE = {"gsm": "green", "break_glass": "magenta"}


def register(app: typer.Typer) -> None:
    """Add ``status`` and the ``refresh`` group to ``app``."""
    app.command("status")(status)
    # No help= here: the group's help is refresh()'s docstring (it is the command itself).
    refresh_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    refresh_app.callback(invoke_without_command=True)(refresh)
    refresh_app.command("status")(refresh_status)
    app.add_typer(refresh_app, name="refresh")


def status(
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the cache, rotation and break-glass state of every secret type.

    Read-only; needs the omni-secrets:read scope. Values are never shown (the API never returns
    them). Exit 0 when the cache is ready, 1 when it is degraded or empty, 3 when the API cannot
    be reached.

    --json prints the status endpoint's body, e.g.
    {"environment": "development", "cache": {"state": "ready", ...}, "secrets": [...]}
    """
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.READ,
        id_token_audience=id_token_audience,
    )
    with ApiClient(target.url, target.token) as api:
        body = api.get_json(STATUS_PATH)
    if as_json:
        print_json(body)
    else:
        render_status(body)
    if body.get("cache", {}).get("state") != "ready":
        raise typer.Exit(EXIT_FAILED)


def refresh(
    ctx: typer.Context,
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    secret_type: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-type",
            metavar="T",
            show_default=False,
            help="Refresh only this type; repeatable [default: every type].",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Poll until the refresh has finished.")] = (
        False
    ),
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=1, help="With --wait: give up after."),
    ] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Queue a cache refresh (re-read the pinned versions from GSM) and print its request id.

    Needs the omni-secrets:refresh scope. Safe to repeat: concurrent refreshes coalesce into one
    GSM read per type. Without --wait it prints the request id (look it up later with
    `omni-secrets refresh status REQUEST_ID`); with --wait it polls until the refresh
    finishes and exits 0 when every type succeeded, 1 otherwise.

    --json prints the API's answer: without --wait the queued request, e.g.
    {"requestId": "...", "scope": "all", "secretTypes": [...], "status": "queued",
    "queuedAt": "..."}; with --wait the finished one (as `refresh status --json`).
    """
    if ctx.invoked_subcommand is not None:
        # `refresh --url X status ID`: the connection options given before the subcommand.
        ctx.obj = {
            "url": url,
            "token": token,
            "token_file": token_file,
            "insecure": insecure,
            "id_token_audience": id_token_audience,
        }
        return
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.REFRESH,
        id_token_audience=id_token_audience,
    )
    body: dict[str, Any] = {"secretTypes": secret_type} if secret_type else {}
    with ApiClient(target.url, target.token) as api:
        queued = api.post_json(REFRESH_PATH, body)
        request_id = str(queued["requestId"])
        if not wait:
            if as_json:
                print_json(queued)
            else:
                types = ", ".join(queued.get("secretTypes") or []) or "every type"
                print(f"requestId={request_id}")
                typer.echo(
                    f"refresh of {types} {queued['status']}; follow it with: "
                    f"omni-secrets refresh status {request_id}",
                    err=True,
                )
            return
        result = _wait_for(api, request_id, timeout, show_progress=not as_json)
    _finish(result, as_json=as_json)


def refresh_status(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(metavar="REQUEST_ID", help="The id printed by `refresh`.")
    ],
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Poll until the refresh has finished.")] = (
        False
    ),
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=1, help="With --wait: give up after."),
    ] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Show a refresh request's state and per-type results.

    Read-only; needs the omni-secrets:refresh scope. Exit 0 when it succeeded or is still queued
    or running, 1 when it failed or partly failed or the id is unknown (404).

    --json prints the API's body, e.g. {"requestId": "...", "status": "succeeded",
    "results": [{"secretType": "api_key", "ok": true, "version": "4", "error": null}],
    "completedAt": "..."}
    """
    given = ctx.obj if isinstance(ctx.obj, dict) else {}
    target = resolve_target(
        url=url if url is not None else given.get("url"),
        token=token if token is not None else given.get("token"),
        token_file=token_file if token_file is not None else given.get("token_file"),
        insecure=insecure or bool(given.get("insecure")),
        scope=Scope.REFRESH,
        id_token_audience=id_token_audience
        if id_token_audience is not None
        else given.get("id_token_audience"),
    )
    with ApiClient(target.url, target.token) as api:
        if wait:
            result = _wait_for(api, request_id, timeout, show_progress=not as_json)
        else:
            result = api.get_json(f"{REFRESH_PATH}/{quote(request_id, safe='')}")
    _finish(result, as_json=as_json)


def _finish(result: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        _render_refresh(result)
    if result["status"] in ("failed", "partial"):
        raise typer.Exit(EXIT_FAILED)


def _wait_for(api: ApiClient, request_id: str, timeout: float, *, show_progress: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    path = f"{REFRESH_PATH}/{quote(request_id, safe='')}"
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=Console(stderr=True), transient=True, disable=not show_progress
    ) as progress:
        task = progress.add_task(f"refresh {request_id}: queued", total=None)
        while True:
            result = api.get_json(path)
            progress.update(task, description=f"refresh {request_id}: {result['status']}")
            if result["status"] in TERMINAL_STATES:
                return result
            if time.monotonic() > deadline:
                fail(
                    f"refresh {request_id} still {result['status']} after {timeout:g}s",
                    code=EXIT_UNAVAILABLE,
                )
            time.sleep(0.25)


def _render_refresh(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    done = f", completed {relative(result.get('completedAt'))}" if result.get("completedAt") else ""
    out.print(f"refresh {result['requestId']}: [bold]{result['status']}[/]{done}")
    table = Table(box=None, pad_edge=False)
    for column in ("secret type", "ok", "version", "error"):
        table.add_column(column, no_wrap=column != "error")
    for item in result.get("results", []):
        ok = "[green]yes[/]" if item["ok"] else "[red]no[/]"
        error = escape(_text(item.get("error")))
        table.add_row(item["secretType"], ok, item.get("version") or "-", error)
    if result.get("results"):
        out.print(table)
    for replica in result.get("replicas") or []:
        out.print(f"replica {replica.get('replicaId')}: {replica.get('status')}")


def _text(error: Any) -> str:
    if error is None:
        return ""
    if isinstance(error, dict):
        return str(error.get("code") or error.get("message") or "")
    return str(error)


def _rotation_text(rotation: dict[str, Any]) -> str:
    state = str(rotation.get("status", "?"))
    days = rotation.get("daysUntilDue")
    if days is None:
        when = "no due date"
    elif days >= 0:
        when = f"due in {days}d"
    else:
        when = f"{-days}d late"
    candidate = rotation.get("candidateVersion")
    if candidate:
        # A new GSM version waiting for a rotation preview (contract section 12).
        when += f", v{candidate} waiting"
    return f"[{_ROTATION_STYLE.get(state, 'white')}]{state}[/] ({when})"


def render_status(body: dict[str, Any]) -> None:
    """Print the status body for a person, within 80 columns (see the module docstring)."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    now = datetime.now(UTC)
    cache = body["cache"]
    state = cache["state"]
    out.print(
        f"[bold]{body['environment']}[/] · project [bold]{body['gcpProjectId']}[/] · cache "
        f"[{_STATE_STYLE.get(state, 'white')}]{state}[/] · ttl {cache['ttlSeconds']}s"
    )
    out.print(
        f"hydrated {relative(cache.get('hydratedAt'), now)} · "
        f"last refresh {relative(cache.get('lastRefreshAt'), now)}"
    )
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("secret type", no_wrap=True)
    table.add_column("req", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("ver", no_wrap=True, justify="right")
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("expires", no_wrap=True)
    table.add_column("rotation", no_wrap=True)
    glass_lines: list[str] = []
    error_lines: list[str] = []
    for item in body["secrets"]:
        source = item["cacheSource"]
        age = item.get("ageSeconds")
        expires = "[yellow]stale[/]" if item.get("stale") else relative(item.get("expiresAt"), now)
        table.add_row(
            item["secretType"],
            "yes" if item["required"] else "no",
            f"[{_SOURCE_STYLE.get(source, 'red')}]{source}[/]",
            item.get("version") or "-",
            "-" if age is None else _seconds(float(age)),
            expires,
            _rotation_text(item["rotation"]),
        )
        glass = item.get("breakGlass") or {}
        if glass.get("active"):
            glass_lines.append(
                f"  [magenta]{item['secretType']}[/] until {minutes(glass.get('expiresAt'))} "
                f"({relative(glass.get('expiresAt'), now)}), override {glass.get('overrideId')} "
                f"by {escape(str(glass.get('actor')))}: {escape(str(glass.get('reason')))}"
            )
        error = item.get("lastError")
        if error:
            error_lines.append(
                f"  [red]{item['secretType']}[/] {error.get('code')} "
                f"({relative(error.get('at'), now)}): {escape(str(error.get('message')))}"
            )
    out.print(table)
    if glass_lines:
        out.print("[bold]break-glass overrides active:[/]")
        for line in glass_lines:
            out.print(line)
    if error_lines:
        out.print("[bold]last errors:[/]")
        for line in error_lines:
            out.print(line)


def _seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"
