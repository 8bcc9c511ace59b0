"""``omni-secrets rotation preview|commit|cancel`` and ``self-test``: the rotation routes.

A preview takes its group's rotation lock for 15 minutes whether or not it is ready. A preview
that is *not* ready can never be committed, so ``rotation preview`` cancels it at once (releasing
the lock) unless ``--keep-lock`` is given: the operator fixes the cause and simply runs
``rotation preview`` again, instead of meeting ``409 ROTATION_IN_PROGRESS`` from their own
failed attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._api_options import ApiOptions, api_command
from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
from omni_secrets.cli._output import show
from omni_secrets.domain.catalog import parse_secret_type

if TYPE_CHECKING:
    from omni_secrets.cli.client import RotationPreview

PreviewIdArgument = Annotated[
    str, typer.Argument(metavar="PREVIEW_ID", help="The previewId printed by `rotation preview`.")
]


def register(app: typer.Typer, rotation_app: typer.Typer) -> None:
    """Add ``preview``, ``commit``, ``cancel``, ``rollback`` to rotation; ``self-test`` to app."""
    rotation_app.command("preview")(preview)
    rotation_app.command("commit")(commit)
    rotation_app.command("cancel")(cancel)
    rotation_app.command("rollback")(rollback)
    app.command("self-test")(self_test)


@api_command(Scope.ROTATE)
def self_test(api: ApiOptions) -> None:
    """Sign GET /api/v3/account at ApeX Omni with the credentials being served right now.

    Needs the omni-secrets:rotate scope. Run it after a rotation commit, before revoking the old
    key at ApeX. Read-only at ApeX; audited. Exit 0 when ApeX accepted the credentials, 1 when
    it refused them (the reason is printed), 3 when the API is unreachable or answers 5xx.

    --json prints the API's body, e.g. {"ok": true, "httpStatus": 200, "apexCode": null,
    "skewMs": 12, "accountId": "..."}
    """
    with api.connect() as client:
        result = client.self_test()
    show(result, as_json=api.as_json)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@api_command(Scope.ROTATE)
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
    *,
    api: ApiOptions,
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
    with api.connect() as client:
        if candidate_version is not None and not candidate_version.strip():
            fail("--candidate-version must not be empty", code=EXIT_USAGE)
        result = client.preview_rotation(
            checked.value, None if candidate_version is None else candidate_version.strip()
        )
        released = not result.ready and not keep_lock
        if released:
            client.cancel_rotation(result.preview_id)
    show(result, as_json=api.as_json)
    typer.echo(_what_next(result, released=released), err=True)
    if not result.ready:
        raise typer.Exit(EXIT_FAILED)


def _what_next(result: RotationPreview, *, released: bool) -> str:
    """The line on stderr after a preview: how to commit it, or why it is gone or held."""
    preview_id, expires_at = result.preview_id, result.expires_at
    if result.ready:
        return (
            f"ready: commit with `omni-secrets rotation commit {preview_id}` before "
            f"{expires_at}, or release the lock with `omni-secrets rotation cancel {preview_id}`"
        )
    if released:
        return (
            f"not ready: preview {preview_id} cancelled and the group's lock released; fix the "
            "failed check and run `omni-secrets rotation preview` again"
        )
    return (
        f"not ready: preview {preview_id} still holds the group's lock until {expires_at}; "
        f"release it with `omni-secrets rotation cancel {preview_id}`"
    )


@api_command(Scope.ROTATE)
def commit(preview_id: PreviewIdArgument, api: ApiOptions) -> None:
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
    with api.connect() as client:
        result = client.commit_rotation(preview_id)
    show(result, as_json=api.as_json)


@api_command(Scope.ROTATE)
def rollback(
    secret_type: Annotated[
        str,
        typer.Option(
            "--secret-type",
            metavar="T",
            help="Any member of the group to roll back, e.g. api_key (the whole group moves).",
        ),
    ],
    api: ApiOptions,
) -> None:
    """Serve the group's `previous` GSM versions again, undoing the last commit.

    Needs the omni-secrets:rotate scope. Takes the group's lock as a preview does, checks the
    previous versions (ENABLED, checksums, ApeX self-test with the previous credentials for API
    credentials), swaps the `current` and `previous` aliases in GSM, pins the versions and puts
    lastRotatedAt/dueAt back to their values before the undone commit. Audited
    (rotation_rollback).

    Exit codes: 0 rolled back; 1 409 ROLLBACK_NOT_POSSIBLE (nothing changed), GSM_CHANGED,
    ROTATION_IN_PROGRESS, or token refused; 2 unknown type; 3 API unreachable or 5xx.

    --json prints the API's body, e.g. {"group": "api_credentials", "members":
    [{"secretType": "api_key", "activeVersion": "3"}], "lastRotatedAt": "...", "dueAt": "..."}
    """
    checked = parse_secret_type(secret_type)
    with api.connect() as client:
        result = client.rollback_rotation(checked.value)
    show(result, as_json=api.as_json)


@api_command(Scope.ROTATE)
def cancel(preview_id: PreviewIdArgument, api: ApiOptions) -> None:
    """Cancel an open preview and release its group's rotation lock at once.

    Needs the omni-secrets:rotate scope. Nothing served changes. Audited.

    Exit codes: 0 cancelled; 1 unknown or no longer open (404) or token refused; 3 API
    unreachable or 5xx.

    --json prints {"previewId": "...", "cancelled": true}.
    """
    from omni_secrets.cli.client import CancelAnswer

    with api.connect() as client:
        client.cancel_rotation(preview_id)
    show(CancelAnswer(preview_id), as_json=api.as_json)
