"""``omni-secrets status`` and ``omni-secrets refresh [status]``: views of a running service."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._api_options import ApiOptions, api_command
from omni_secrets.cli._common import EXIT_FAILED, EXIT_UNAVAILABLE, fail
from omni_secrets.cli._output import show

if TYPE_CHECKING:
    from omni_secrets.cli.client import ApiClient, RefreshProgress

WaitOption = Annotated[bool, typer.Option("--wait", help="Poll until the refresh has finished.")]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", metavar="SECONDS", min=1, help="With --wait: give up after."),
]
_POLL_SECONDS = 0.25


def register(app: typer.Typer) -> None:
    """Add ``status`` and the ``refresh`` group to ``app``."""
    app.command("status")(status)
    # No help= here: the group's help is refresh()'s docstring (it is the command itself).
    refresh_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    refresh_app.callback(invoke_without_command=True)(refresh)
    refresh_app.command("status")(refresh_status)
    app.add_typer(refresh_app, name="refresh")


@api_command(Scope.READ)
def status(api: ApiOptions) -> None:
    """Show the cache, rotation and break-glass state of every secret type.

    Read-only; needs the omni-secrets:read scope. Values are never shown (the API never returns
    them). Exit 0 when the cache is ready, 1 when it is degraded or empty, 3 when the API cannot
    be reached.

    --json prints the status endpoint's body, e.g.
    {"environment": "development", "cache": {"state": "ready", ...}, "secrets": [...]}
    """
    with api.connect() as client:
        report = client.status()
    show(report, as_json=api.as_json)
    if not report.ready:
        raise typer.Exit(EXIT_FAILED)


@api_command(Scope.REFRESH)
def refresh(
    ctx: typer.Context,
    api: ApiOptions,
    secret_type: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-type",
            metavar="T",
            show_default=False,
            help="Refresh only this type; repeatable [default: every type].",
        ),
    ] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Queue a cache refresh (re-read the pinned versions from GSM) and print its request id.

    Needs the omni-secrets:refresh scope. Safe to repeat: concurrent refreshes coalesce into one
    GSM read per type. Without --wait it prints the request id (look it up later with
    `omni-secrets refresh status REQUEST_ID`); with --wait it polls until the refresh finishes
    on every live replica, prints per-type results and each replica's outcome, and exits 0 when
    every type succeeded on every replica, 1 otherwise.

    --json prints the API's answer: without --wait the queued request, e.g.
    {"requestId": "...", "scope": "all", "secretTypes": [...], "status": "queued",
    "queuedAt": "..."}; with --wait the finished one (as `refresh status --json`).
    """
    if ctx.invoked_subcommand is not None:
        # `refresh --url X status ID`: the connection options given before the subcommand.
        ctx.obj = api
        return
    with api.connect() as client:
        queued = client.request_refresh(secret_type)
        if not wait:
            show(queued, as_json=api.as_json)
            return
        result = _wait_for(client, queued.request_id, timeout, show_progress=not api.as_json)
    _finish(result, as_json=api.as_json)


@api_command(Scope.REFRESH)
def refresh_status(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(metavar="REQUEST_ID", help="The id printed by `refresh`.")
    ],
    api: ApiOptions,
    wait: WaitOption = False,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Show a refresh request's state and per-type results.

    Read-only; needs the omni-secrets:refresh scope. Exit 0 when it succeeded or is still queued
    or running, 1 when it failed or partly failed or the id is unknown (404).

    --json prints the API's body, e.g. {"requestId": "...", "status": "succeeded",
    "results": [{"secretType": "api_key", "ok": true, "version": "4", "error": null}],
    "completedAt": "..."}
    """
    api = api.under(ctx.obj if isinstance(ctx.obj, ApiOptions) else None)
    with api.connect() as client:
        if wait:
            result = _wait_for(client, request_id, timeout, show_progress=not api.as_json)
        else:
            result = client.refresh_progress(request_id)
    _finish(result, as_json=api.as_json)


def _finish(result: RefreshProgress, *, as_json: bool) -> None:
    show(result, as_json=as_json)
    if result.failed:
        raise typer.Exit(EXIT_FAILED)


def _wait_for(
    client: ApiClient, request_id: str, timeout: float, *, show_progress: bool
) -> RefreshProgress:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=Console(stderr=True), transient=True, disable=not show_progress
    ) as progress:
        task = progress.add_task(f"refresh {request_id}: queued", total=None)
        while True:
            result = client.refresh_progress(request_id)
            progress.update(task, description=f"refresh {request_id}: {result.status}")
            if result.finished:
                return result
            if time.monotonic() > deadline:
                fail(
                    f"refresh {request_id} still {result.status} after {timeout:g}s",
                    code=EXIT_UNAVAILABLE,
                )
            time.sleep(_POLL_SECONDS)
