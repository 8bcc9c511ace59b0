"""``omni-secrets rotation preview|commit|cancel``: the rotation routes of the API (section 5).

A preview takes its group's rotation lock for 15 minutes whether or not it is ready. A preview
that is *not* ready can never be committed, so ``rotation preview`` cancels it at once (releasing
the lock) unless ``--keep-lock`` is given: the operator fixes the cause and simply runs
``rotation preview`` again, instead of meeting ``409 ROTATION_IN_PROGRESS`` from their own
failed attempt.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._bearer import IdTokenAudienceOption
from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
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
from omni_secrets.domain.catalog import parse_secret_type

PREVIEW_PATH = "/ops/apex-omni/secrets/rotation-preview"
SELF_TEST_PATH = "/ops/apex-omni/secrets/self-test"
ROTATIONS_PATH = "/ops/apex-omni/secrets/rotations"

PreviewIdArgument = Annotated[
    str, typer.Argument(metavar="PREVIEW_ID", help="The previewId printed by `rotation preview`.")
]


def register(app: typer.Typer, rotation_app: typer.Typer) -> None:
    """Add ``preview``, ``commit``, ``cancel`` to the ``rotation`` group; ``self-test`` to app."""
    rotation_app.command("preview")(preview)
    rotation_app.command("commit")(commit)
    rotation_app.command("cancel")(cancel)
    app.command("self-test")(self_test)


def self_test(
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign GET /api/v3/account at ApeX Omni with the credentials being served right now.

    Needs the omni-secrets:rotate scope. Run it after a rotation commit, before revoking the old
    key at ApeX. Read-only at ApeX; audited. Exit 0 when ApeX accepted the credentials, 1 when
    it refused them (the reason is printed), 3 when the API is unreachable or answers 5xx.

    --json prints the API's body, e.g. {"ok": true, "httpStatus": 200, "apexCode": null,
    "skewMs": 12, "accountId": "..."}
    """
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.ROTATE,
        id_token_audience=id_token_audience,
    )
    with ApiClient(target.url, target.token) as api:
        result = api.post_json(SELF_TEST_PATH, None)
    if as_json:
        print_json(result)
    elif result.get("ok"):
        print(
            f"ApeX accepted the served credentials: account {result.get('accountId')}, "
            f"HTTP {result.get('httpStatus')}, clock skew {result.get('skewMs')} ms"
        )
    else:
        print(
            f"ApeX refused the served credentials: HTTP {result.get('httpStatus')}, ApeX code "
            f"{result.get('apexCode')}: {result.get('reason')}"
        )
    if not result.get("ok"):
        raise typer.Exit(EXIT_FAILED)


def preview(
    secret_type: Annotated[
        str,
        typer.Option(
            "--secret-type",
            metavar="T",
            help="Any member of the group to rotate, e.g. api_key (the preview covers the group).",
        ),
    ],
    candidate_version: Annotated[
        str | None,
        typer.Option(
            "--candidate-version",
            metavar="V",
            show_default=False,
            help="'latest' (the newest ENABLED version of each member) or a version number "
            "[default: latest].",
        ),
    ] = None,
    keep_lock: Annotated[
        bool,
        typer.Option(
            "--keep-lock",
            help="Keep a preview that is not ready open (and the group locked) until it expires "
            "or is cancelled.",
        ),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check new GSM versions of a rotation group before serving them (changes nothing served).

    Needs the omni-secrets:rotate scope. Resolves the candidate version of every member of the
    group, runs the checks (candidates enabled, newer and different, checksums valid, ApeX
    self-test with the candidate credentials) and prints them. A ready preview holds the
    group's rotation lock for 15 minutes: commit it with `omni-secrets rotation commit
    PREVIEW_ID` or release it with `rotation cancel PREVIEW_ID`. A preview that is not ready is
    cancelled at once, so fix the cause and run the preview again (--keep-lock keeps it open).

    Exit codes: 0 ready; 1 not ready (a check failed), 409 ROTATION_IN_PROGRESS (another
    preview holds the lock) or token refused; 2 bad input (unknown type, unusable candidate
    version); 3 API unreachable or 5xx.

    --json prints the API's body, e.g. {"previewId": "...", "group": "api_credentials",
    "ready": true, "members": [...], "checks": [{"name": "apex_self_test", "ok": true, ...}]}
    """
    checked = parse_secret_type(secret_type)
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.ROTATE,
        id_token_audience=id_token_audience,
    )
    body: dict[str, Any] = {"secretType": checked.value}
    if candidate_version is not None:
        if not candidate_version.strip():
            fail("--candidate-version must not be empty", code=EXIT_USAGE)
        body["candidateVersion"] = candidate_version.strip()
    with ApiClient(target.url, target.token) as api:
        result = api.post_json(PREVIEW_PATH, body)
        preview_id = str(result["previewId"])
        released = False
        if not result.get("ready") and not keep_lock:
            api.request("DELETE", _rotation_path(preview_id))
            released = True
    if as_json:
        print_json(result)
    else:
        _render_preview(result)
    if result.get("ready"):
        typer.echo(
            f"ready: commit with `omni-secrets rotation commit {preview_id}` before "
            f"{result.get('expiresAt')}, or release the lock with "
            f"`omni-secrets rotation cancel {preview_id}`",
            err=True,
        )
        return
    if released:
        typer.echo(
            f"not ready: preview {preview_id} cancelled and the group's lock released; fix the "
            "failed check and run `omni-secrets rotation preview` again",
            err=True,
        )
    else:
        typer.echo(
            f"not ready: preview {preview_id} still holds the group's lock until "
            f"{result.get('expiresAt')}; release it with "
            f"`omni-secrets rotation cancel {preview_id}`",
            err=True,
        )
    raise typer.Exit(EXIT_FAILED)


def commit(
    preview_id: PreviewIdArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve the candidate versions of a ready preview: pin them, restart the rotation clock.

    Needs the omni-secrets:rotate scope. Pins the previewed versions as active for the whole
    group, sets lastRotatedAt to now and the due date one rotation period later, refreshes the
    cache and releases the lock. Audited. Disable the old GSM versions only after `status`
    shows the new versions served.

    Exit codes: 0 committed; 1 unknown or expired preview (404), 409 PREVIEW_NOT_READY or
    token refused; 3 API unreachable or 5xx (503 AUDIT_UNAVAILABLE: nothing committed).

    --json prints the API's body, e.g. {"group": "api_credentials", "members":
    [{"secretType": "api_key", "activeVersion": "4"}], "lastRotatedAt": "...", "dueAt": "..."}
    """
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.ROTATE,
        id_token_audience=id_token_audience,
    )
    with ApiClient(target.url, target.token) as api:
        result = api.post_json(f"{_rotation_path(preview_id)}/commit", None)
    if as_json:
        print_json(result)
        return
    out = console()
    members = ", ".join(f"{m['secretType']} v{m['activeVersion']}" for m in result["members"])
    out.print(f"committed [bold]{result['group']}[/]: {members}")
    out.print(
        f"last rotated {minutes(result.get('lastRotatedAt'))}, next due "
        f"{minutes(result.get('dueAt'))} ({relative(result.get('dueAt'))})"
    )


def cancel(
    preview_id: PreviewIdArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    token_file: TokenFileOption = None,
    insecure: InsecureOption = False,
    id_token_audience: IdTokenAudienceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel an open preview and release its group's rotation lock at once.

    Needs the omni-secrets:rotate scope. Nothing served changes. Audited.

    Exit codes: 0 cancelled; 1 unknown or no longer open (404) or token refused; 3 API
    unreachable or 5xx.

    --json prints {"previewId": "...", "cancelled": true}.
    """
    target = resolve_target(
        url=url,
        token=token,
        token_file=token_file,
        insecure=insecure,
        scope=Scope.ROTATE,
        id_token_audience=id_token_audience,
    )
    with ApiClient(target.url, target.token) as api:
        api.request("DELETE", _rotation_path(preview_id))
    if as_json:
        print_json({"previewId": preview_id, "cancelled": True})
    else:
        print(f"cancelled preview {preview_id}; the group's rotation lock is released")


def _rotation_path(preview_id: str) -> str:
    return f"{ROTATIONS_PATH}/{quote(preview_id, safe='')}"


def _render_preview(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    verdict = "[green]ready[/]" if result.get("ready") else "[red]NOT ready[/]"
    out.print(
        f"preview {result['previewId']} of [bold]{result['group']}[/]: {verdict} "
        f"(lock until {minutes(result.get('expiresAt'))})"
    )
    members = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("secret type", "current", "candidate", "state"):
        members.add_column(column, no_wrap=True)
    for member in result.get("members", []):
        members.add_row(
            member["secretType"],
            member.get("currentVersion") or "-",
            member.get("candidateVersion") or "-",
            member.get("candidateState") or "-",
        )
    out.print(members)
    checks = Table(box=None, pad_edge=False, header_style="bold")
    checks.add_column("check", no_wrap=True)
    checks.add_column("ok", no_wrap=True)
    checks.add_column("detail")
    for check in result.get("checks", []):
        ok = "[green]yes[/]" if check["ok"] else "[red]no[/]"
        checks.add_row(check["name"], ok, escape(str(check.get("detail") or "")))
    out.print(checks)
    out.print(
        f"due now {minutes(result.get('currentDueAt'))}; if committed "
        f"{minutes(result.get('nextDueAtIfCommitted'))}"
    )
