"""``omni-secrets audit verify``: recompute the audit hash chain of ``OMNI_DATABASE_URL``.

Keyed rows are checked with the keys of ``OMNI_INTEGRITY_KEY_FILE`` (all of them, for rows
signed before a key rotation); rows written before the integrity key existed are checked as
plain SHA-256 and counted as unkeyed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from omni_secrets.cli._common import EXIT_FAILED, EXIT_UNAVAILABLE, fail, load_settings
from omni_secrets.cli._database import existing_database_url, with_dev_integrity_key
from omni_secrets.cli.db import load_keyring_or_exit, require_schema_at_head

if TYPE_CHECKING:
    # Annotations only: audit_chain loads the pydantic domain models; it is imported when
    # `audit verify` runs, so `--help` does not pay for it.
    from omni_secrets.domain.audit_chain import ChainVerdict
    from omni_secrets.domain.integrity import IntegrityKeyring

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
) -> None:
    """Recompute the keyed hash chain of omni_secret_access_events from the first row to the last.

    Usage: omni-secrets audit verify [--max-unkeyed-id ID]

    Uses the keys of OMNI_INTEGRITY_KEY_FILE. Exit 0 and print how many events were verified,
    keyed (HMAC-SHA256) and unkeyed (plain SHA-256, written before the key existed), when the
    chain is intact; exit 1 with the id of the first bad event otherwise: edited or re-hashed
    without the key, missing before it, keyed with a key that is not configured, or unkeyed
    after keyed rows; exit 3 when the database cannot be reached, does not exist or is not
    migrated. Read-only: never creates a database (with OMNI_DATABASE_URL unset it finds
    `omni-secrets dev`'s .omni-dev/omni-secrets.db); pages through the table in short
    transactions, so it can run beside the service. Rows appended while it runs are verified too.
    """
    import asyncio

    settings = load_settings()
    url = existing_database_url(settings)
    keyring = load_keyring_or_exit(with_dev_integrity_key(settings, url))
    require_schema_at_head(url, code=EXIT_UNAVAILABLE)
    verdict = asyncio.run(_verify(url, keyring, max_unkeyed_id))
    if not verdict.ok:
        fail(
            f"audit chain broken at event id {verdict.first_bad_id}: {verdict.reason} "
            f"({verdict.checked} events before it verified: {verdict.keyed} keyed, "
            f"{verdict.unkeyed} unkeyed)",
            code=EXIT_FAILED,
        )
    typer.echo(
        f"audit chain intact: {verdict.checked} events verified "
        f"({verdict.keyed} keyed, {verdict.unkeyed} unkeyed)"
    )


async def _verify(
    url: str, keyring: IntegrityKeyring | None, max_unkeyed_id: int | None
) -> ChainVerdict:
    from omni_secrets.bootstrap.database import open_database
    from omni_secrets.domain.audit_chain import ChainVerifier

    async with open_database(url, keyring=keyring) as uow_factory:
        verifier = ChainVerifier(keyring, max_unkeyed_id=max_unkeyed_id)
        after_id = 0
        while True:
            # One short transaction per page: SQLite transactions hold the write lock.
            async with uow_factory() as uow:
                page = await uow.audit.page(after_id, PAGE_SIZE)
            if not page:
                return verifier.verdict
            for event in page:
                if not verifier.feed(event):
                    return verifier.verdict
            after_id = page[-1].id
