"""``omni-secrets audit verify|list``: the audit trail of ``OMNI_DATABASE_URL``.

``verify`` recomputes the hash chain: keyed rows are checked with the keys of
``OMNI_INTEGRITY_KEY_FILE`` (all of them, for rows signed before a key rotation); rows written
before the integrity key existed are checked as plain SHA-256 and counted as unkeyed. A keyed
chain read without any key is a setup error (exit 3), not a broken chain. ``list`` prints the
newest events, filtered. Both open the database the same read-only way (``_database.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from omni_secrets.cli._common import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, fail, load_settings
from omni_secrets.cli._database import existing_database_url, with_dev_integrity_key
from omni_secrets.cli.db import load_keyring_or_exit, require_schema_at_head

if TYPE_CHECKING:
    # Annotations only: audit_chain loads the pydantic domain models; it is imported when
    # `audit verify` runs, so `--help` does not pay for it.
    from omni_secrets.domain.audit_chain import ChainVerdict
    from omni_secrets.domain.integrity import IntegrityKeyring
    from omni_secrets.domain.models import OmniSecretAccessEvent
    from omni_secrets.domain.repositories import AuditFilter

PAGE_SIZE = 2000

audit_app = typer.Typer(
    name="audit", help="The append-only audit trail (OMNI_DATABASE_URL).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify(
    max_unkeyed_id: int | None = typer.Option(
        None,
        "--max-unkeyed-id",
        min=0,
        help="The last id allowed to be unkeyed (recorded when the integrity key was introduced).",
    ),
    anchor_file: str | None = typer.Option(
        None,
        "--anchor",
        metavar="FILE",
        help="A saved anchor document (JSON) instead of the one in GSM's <prefix>audit-anchor.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts and verdict as JSON."),
) -> None:
    """Recompute the keyed hash chain of omni_secret_access_events from the first row to the last.

    Usage: omni-secrets audit verify [--max-unkeyed-id ID] [--anchor FILE] [--json]

    The chain is also checked against its anchor (contract section 17): the chain head the
    service writes to the annotation of GSM's <prefix>audit-anchor (read with the GSM settings,
    GCP_PROJECT_ID and OMNI_GSM_ENDPOINT), or the saved document of --anchor FILE. The chain
    must contain the anchored id with the anchored hash, else exit 1 naming the anchor (a
    truncated, deleted or replaced chain). Without an anchor the chain is reported as verified
    with "no anchor" (a warning, exit 0), never as intact.

    Uses the keys of OMNI_INTEGRITY_KEY_FILE. Exit 0 and print how many events were verified,
    keyed (HMAC-SHA256) and unkeyed (plain SHA-256, written before the key existed), when the
    chain is intact; exit 1 with the id of the first bad event otherwise: edited or re-hashed
    without the key, missing before it, keyed with a key that is not configured, or unkeyed
    after keyed rows; exit 3 when the database cannot be reached, does not exist or is not
    migrated, or when the chain is keyed and OMNI_INTEGRITY_KEY_FILE is unset (a setup error,
    not tampering). --json prints {"verdict": "intact"|"no_anchor"|"broken"|"key_missing", "ok",
    "checked", "keyed", "unkeyed", "firstBadId", "reason", "anchor"} with the same exit codes;
    "anchor" is {"source", "status", "id", "hash", "at", "keyId", "detail"} ("status":
    "matched"|"absent"|"not_in_chain"|"unsigned"). Read-only: never
    creates a database (with OMNI_DATABASE_URL unset it finds `omni-secrets dev`'s
    .omni-dev/omni-secrets.db); pages through the table in short transactions, so it can run
    beside the service. Rows appended while it runs are verified too.
    """
    import asyncio

    from omni_secrets.cli.audit_anchor import check_anchor, load_anchor

    settings = load_settings()
    url = existing_database_url(settings)
    keyring = load_keyring_or_exit(with_dev_integrity_key(settings, url))
    require_schema_at_head(url, code=EXIT_UNAVAILABLE)
    found = load_anchor(settings, anchor_file)
    wanted = found.anchor.id if found.anchor is not None else None
    verdict, anchored_hash = asyncio.run(_verify(url, keyring, max_unkeyed_id, wanted))
    anchor = check_anchor(found, keyring, anchored_hash)
    if as_json:
        from omni_secrets.cli._output import print_json

        print_json({**_verdict_document(verdict, anchor.status), "anchor": anchor.document()})
    if verdict.key_missing:
        fail(
            f"the audit chain is keyed (event id {verdict.first_bad_id} onwards) and no "
            "integrity key is configured: set OMNI_INTEGRITY_KEY_FILE to the key file that "
            "signed it",
            code=EXIT_UNAVAILABLE,
        )
    if not verdict.ok:
        fail(
            f"audit chain broken at event id {verdict.first_bad_id}: {verdict.reason} "
            f"({verdict.checked} events before it verified: {verdict.keyed} keyed, "
            f"{verdict.unkeyed} unkeyed)",
            code=EXIT_FAILED,
        )
    if anchor.failed:
        fail(anchor.message(verdict), code=EXIT_FAILED)
    counts = f"{verdict.checked} events verified ({verdict.keyed} keyed, {verdict.unkeyed} unkeyed)"
    if anchor.status == "absent":
        typer.echo(f"warning: {anchor.message(verdict)}", err=True)
        if not as_json:
            typer.echo(f"audit chain verified, no anchor: {counts}")
    elif not as_json:
        typer.echo(f"audit chain intact: {counts}; {anchor.message(verdict)}")


def _verdict_document(verdict: ChainVerdict, anchor_status: str) -> dict[str, Any]:
    if verdict.key_missing:
        name = "key_missing"
    elif not verdict.ok or anchor_status not in ("matched", "absent"):
        name = "broken"
    else:
        name = "intact" if anchor_status == "matched" else "no_anchor"
    return {
        "verdict": name,
        "ok": verdict.ok,
        "checked": verdict.checked,
        "keyed": verdict.keyed,
        "unkeyed": verdict.unkeyed,
        "firstBadId": verdict.first_bad_id,
        "reason": verdict.reason,
    }


@audit_app.command("list")
def list_events(
    secret_type: str | None = typer.Option(
        None, "--secret-type", metavar="T", help="Only events about this type, e.g. api_key."
    ),
    action: str | None = typer.Option(
        None, "--action", metavar="A", help="Only this action, e.g. break_glass_activate."
    ),
    actor: str | None = typer.Option(None, "--actor", metavar="X", help="Only this actor."),
    since: str | None = typer.Option(
        None, "--since", metavar="ISO", help="Only events at or after this instant (UTC if bare)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=10000, help="At most this many events."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with details) instead."),
) -> None:
    """Print audit events newest first: id, time, type, action, actor, result, correlation id.

    Usage: omni-secrets audit list [--secret-type T] [--action A] [--actor X] [--since ISO]
    [--limit N] [--json]

    Reads OMNI_DATABASE_URL like `audit verify` (never creates a database; finds `omni-secrets
    dev`'s). --json prints {"events": [{"id", "occurredAt", "secretType", "action", "actor",
    "result", "durationMs", "correlationId", "details"}]}. Exit 2 for an unknown type or action
    or a bad --since, 3 when the database cannot be read.
    """
    import asyncio

    where = _filter(secret_type, action, actor, since)
    settings = load_settings()
    url = existing_database_url(settings)
    require_schema_at_head(url, code=EXIT_UNAVAILABLE)
    rows = asyncio.run(_search(url, where, limit))
    if as_json:
        from omni_secrets.cli._output import print_json

        print_json({"events": [_event_document(row) for row in rows]})
        return
    _print_events(rows)


def _filter(
    secret_type: str | None, action: str | None, actor: str | None, since: str | None
) -> AuditFilter:
    from omni_secrets.domain.catalog import parse_secret_type
    from omni_secrets.domain.errors import UnknownSecretType
    from omni_secrets.domain.models import AUDIT_ACTIONS
    from omni_secrets.domain.repositories import AuditFilter

    if secret_type is not None:
        try:
            parse_secret_type(secret_type)
        except UnknownSecretType as exc:
            fail(f"--secret-type: {exc.message}", code=EXIT_USAGE)
    if action is not None and action not in AUDIT_ACTIONS:
        fail(
            f"--action: unknown action {action!r}; valid actions: {', '.join(AUDIT_ACTIONS)}",
            code=EXIT_USAGE,
        )
    return AuditFilter(secret_type=secret_type, action=action, actor=actor, since=_instant(since))


def _instant(value: str | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(
            f"--since: {value!r} is not an ISO 8601 instant (e.g. 2026-12-07T14:00:00Z)",
            code=EXIT_USAGE,
        )
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


async def _search(url: str, where: AuditFilter, limit: int) -> list[OmniSecretAccessEvent]:
    from omni_secrets.bootstrap.database import open_database

    async with open_database(url) as uow_factory, uow_factory() as uow:
        return list(await uow.audit.search(where, limit))


def _event_document(event: OmniSecretAccessEvent) -> dict[str, Any]:
    from omni_secrets.domain.clock import to_rfc3339

    return {
        "id": event.id,
        "occurredAt": to_rfc3339(event.occurred_at),
        "secretType": event.secret_type,
        "action": event.action,
        "actor": event.actor,
        "result": event.result,
        "durationMs": event.duration_ms,
        "correlationId": event.correlation_id,
        "details": event.details,
    }


def _print_events(rows: list[OmniSecretAccessEvent]) -> None:
    from omni_secrets.cli._render import audit_events

    audit_events([_event_document(row) for row in rows])


async def _verify(
    url: str, keyring: IntegrityKeyring | None, max_unkeyed_id: int | None, anchored_id: int | None
) -> tuple[ChainVerdict, str | None]:
    """The chain's verdict, and the ``row_hash`` of the verified row ``anchored_id`` (if any)."""
    from omni_secrets.bootstrap.database import open_database
    from omni_secrets.domain.audit_chain import ChainVerifier

    anchored_hash: str | None = None
    async with open_database(url, keyring=keyring) as uow_factory:
        verifier = ChainVerifier(keyring, max_unkeyed_id=max_unkeyed_id)
        after_id = 0
        while True:
            # One short transaction per page: SQLite transactions hold the write lock.
            async with uow_factory() as uow:
                page = await uow.audit.page(after_id, PAGE_SIZE)
            if not page:
                return verifier.verdict, anchored_hash
            for event in page:
                if not verifier.feed(event):
                    return verifier.verdict, anchored_hash
                if event.id == anchored_id:
                    anchored_hash = event.row_hash
            after_id = page[-1].id
