"""``omni-secrets status`` and ``omni-secrets refresh``: operator views of a running service."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from omni_secrets.cli._bearer import IdTokenAudienceOption, resolve_bearer_token
from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
from omni_secrets.cli._http import ApiClient

STATUS_PATH = "/ops/apex-omni/secrets/status"
REFRESH_PATH = "/internal/apex-omni/secrets/cache/refresh"
TERMINAL_STATES = ("succeeded", "failed", "partial")
_STATE_STYLE = {"ready": "green", "degraded": "yellow", "empty": "red"}
_ROTATION_STYLE = {"ok": "green", "due_soon": "yellow", "overdue": "red"}


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("refresh")(refresh)


def status(
    url: str = typer.Option(..., "--url", help="Base URL of the API, e.g. http://127.0.0.1:8080."),
    token: str | None = typer.Option(
        None, "--token", help="Bearer token with omni-secrets:read.", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON instead of a table."),
    id_token_audience: IdTokenAudienceOption = None,
) -> None:
    """Show the cache, rotation and break-glass state of every secret type.

    Read-only. Needs a token with omni-secrets:read. Values are never shown (the API never
    returns them). Exit 0 when the cache is ready, 1 when it is degraded or empty.
    """
    bearer = resolve_bearer_token(token, id_token_audience=id_token_audience)
    with ApiClient(url, bearer) as api:
        body = api.get_json(STATUS_PATH)
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        # Outside a terminal rich assumes 80 columns; a wider page keeps the table on one row.
        _render_status(body, Console(width=None if sys.stdout.isatty() else 160))
    if body.get("cache", {}).get("state") != "ready":
        raise typer.Exit(EXIT_FAILED)


def refresh(
    url: str = typer.Option(..., "--url", help="Base URL of the API."),
    token: str | None = typer.Option(
        None, "--token", help="Bearer token with omni-secrets:refresh.", show_default=False
    ),
    secret_type: list[str] = typer.Option(
        [], "--secret-type", help="Refresh only this type; repeatable. Default: every type."
    ),
    wait: bool = typer.Option(False, "--wait", help="Poll until the refresh has finished."),
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="With --wait: give up after."),
    id_token_audience: IdTokenAudienceOption = None,
) -> None:
    """Queue a cache refresh (re-read the pinned versions from GSM) and print its request id.

    Safe to repeat: concurrent refreshes coalesce into one GSM read per type. With --wait the
    command polls until the refresh finishes, shows progress, prints per-type results and exits
    0 when every type succeeded, 1 otherwise.
    """
    body: dict[str, Any] = {"secretTypes": secret_type} if secret_type else {}
    console = Console(stderr=True)
    bearer = resolve_bearer_token(token, id_token_audience=id_token_audience)
    with ApiClient(url, bearer) as api:
        queued = api.post_json(REFRESH_PATH, body)
        request_id = queued["requestId"]
        if not wait:
            print(json.dumps(queued))
            return
        result = _wait_for(api, request_id, timeout, console)
    table = Table(title=f"refresh {request_id}: {result['status']}")
    for column in ("secret type", "ok", "version", "error"):
        table.add_column(column)
    for item in result.get("results", []):
        ok = "[green]yes[/]" if item["ok"] else "[red]no[/]"
        table.add_row(item["secretType"], ok, item.get("version") or "-", item.get("error") or "")
    Console().print(table)
    if result["status"] != "succeeded":
        raise typer.Exit(EXIT_FAILED)


def _wait_for(api: ApiClient, request_id: str, timeout: float, console: Console) -> Any:
    deadline = time.monotonic() + timeout
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"refresh {request_id}: queued", total=None)
        while True:
            result = api.get_json(f"{REFRESH_PATH}/{request_id}")
            progress.update(task, description=f"refresh {request_id}: {result['status']}")
            if result["status"] in TERMINAL_STATES:
                return result
            if time.monotonic() > deadline:
                fail(
                    f"refresh {request_id} still {result['status']} after {timeout:g}s",
                    code=EXIT_USAGE,
                )
            time.sleep(0.25)


def _relative(value: str | None, now: datetime) -> str:
    if not value:
        return "-"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    seconds = (moment - now).total_seconds()
    magnitude = abs(seconds)
    if magnitude < 90:
        text = f"{magnitude:.0f}s"
    elif magnitude < 5400:
        text = f"{magnitude / 60:.0f}m"
    elif magnitude < 172_800:
        text = f"{magnitude / 3600:.0f}h"
    else:
        text = f"{magnitude / 86_400:.0f}d"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def _render_status(body: dict[str, Any], console: Console) -> None:
    now = datetime.now(UTC)
    cache = body["cache"]
    state = cache["state"]
    hydrated = _relative(cache.get("hydratedAt"), now)
    refreshed = _relative(cache.get("lastRefreshAt"), now)
    console.print(
        f"[bold]{body['environment']}[/] · project [bold]{body['gcpProjectId']}[/] · cache "
        f"[{_STATE_STYLE.get(state, 'white')}]{state}[/] (ttl {cache['ttlSeconds']}s, "
        f"hydrated {hydrated}, last refresh {refreshed})"
    )
    table = Table()
    table.add_column("secret type", no_wrap=True)
    for column in ("req", "source", "version", "fetched", "expires", "rotation", "due"):
        table.add_column(column, no_wrap=True)
    table.add_column("break-glass", overflow="fold")
    table.add_column("last error", overflow="fold")
    for item in body["secrets"]:
        rotation = item["rotation"]
        source = item["cacheSource"]
        source_text = {"gsm": "[green]gsm[/]", "break_glass": "[magenta]break_glass[/]"}.get(
            source, "[red]none[/]"
        )
        if item.get("stale"):
            source_text += " [yellow](stale)[/]"
        glass = item["breakGlass"]
        glass_text = (
            f"[magenta]active until {_relative(glass.get('expiresAt'), now)}[/]"
            if glass["active"]
            else "-"
        )
        error = item.get("lastError")
        table.add_row(
            item["secretType"],
            "yes" if item["required"] else "no",
            source_text,
            item.get("version") or "-",
            _relative(item.get("fetchedAt"), now),
            _relative(item.get("expiresAt"), now),
            f"[{_ROTATION_STYLE.get(rotation['status'], 'white')}]{rotation['status']}[/]",
            _relative(rotation.get("dueAt"), now),
            glass_text,
            f"[red]{error['code']}[/]" if error else "",
        )
    console.print(table)
