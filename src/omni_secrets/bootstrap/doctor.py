"""``omni-secrets doctor``'s probes: a deployment checked from where it runs, without serving.

Groups, in order (contract section 16): ``config`` (each rule group of the startup guard),
``database`` (reachable, migrated, seeded, the role serving is not the table owner in
production), ``gsm`` (each catalog secret readable at its ``current`` alias, the runtime's
permissions by ``TestIamPermissions`` where the endpoint answers it, topics and rotation
schedule), ``pubsub`` (the subscription, when configured), ``jwks`` (reachable with keys, when
configured), ``break-glass`` (the pair matches) and ``integrity`` (the key verifies the audit
head). Every probe is bounded (:data:`~omni_secrets.service.doctor.CHECK_TIMEOUT_SECONDS`). The
probes of remote services (GSM, Pub/Sub, JWKS) are in ``doctor_remote.py``. Nothing is written:
an SQLite file that does not exist is reported, never created.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from omni_secrets.bootstrap import database
from omni_secrets.bootstrap.doctor_remote import gsm_checks, jwks_check, pubsub_check
from omni_secrets.config import ENVIRONMENT_RULES, Environment, Settings
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.errors import OmniSecretsError
from omni_secrets.service.doctor import (
    CHECK_TIMEOUT_SECONDS,
    CheckResult,
    CheckTimedOut,
    DoctorReport,
    bounded,
    bounded_blocking,
    failed,
    guarded,
    ok,
    reason_of,
    warn,
)

__all__ = ["diagnose", "jwks_check", "pubsub_check"]

_SEED_FIX = "omni-secrets db upgrade && omni-secrets db seed"


async def diagnose(
    settings: Settings,
    *,
    skip: Collection[str] = (),
    bound: float = CHECK_TIMEOUT_SECONDS,
) -> DoctorReport:
    """Run every check group not in ``skip`` and return the report."""
    checks: list[CheckResult] = []
    if "config" not in skip:
        checks.extend(config_checks(settings))
    if "database" not in skip:
        checks.extend(await database_checks(settings, bound))
    if "gsm" not in skip:
        checks.extend(await gsm_checks(settings, bound))
    if "pubsub" not in skip:
        checks.append(await guarded("pubsub", pubsub_check(settings, bound), bound))
    if "jwks" not in skip:
        checks.append(await guarded("jwks", jwks_check(settings, bound), bound))
    if "break-glass" not in skip:
        checks.append(break_glass_check(settings))
    if "integrity" not in skip:
        checks.append(await guarded("integrity", integrity_check(settings, bound), bound))
    return DoctorReport(tuple(checks))


# --- configuration ---------------------------------------------------------------------------


def config_checks(settings: Settings) -> list[CheckResult]:
    """One check per rule group of the startup guard (``config.ENVIRONMENT_RULES``)."""
    results = []
    for rule in ENVIRONMENT_RULES:
        name = "config " + rule.__name__.strip("_").replace("_", " ")
        violations = list(rule(settings))
        if not violations:
            results.append(ok(name, _config_summary(rule.__name__, settings)))
            continue
        variables = sorted({v for violation in violations for v in violation.variables})
        results.append(
            failed(
                name,
                "; ".join(violation.message for violation in violations),
                f"set {', '.join(variables)} as the message says (serve refuses to start)",
            )
        )
    return results


def _config_summary(rule: str, settings: Settings) -> str:
    if rule == "_required_variables":
        return f"OMNI_ENVIRONMENT={settings.environment}, GCP_PROJECT_ID={settings.gcp_project_id}"
    if rule == "_auth_mode_configured":
        return f"auth mode {settings.auth_mode}"
    return "rule holds"


# --- database --------------------------------------------------------------------------------


async def database_checks(settings: Settings, bound: float) -> list[CheckResult]:
    """Reachable, migrated, seeded, and (PostgreSQL) not served by the table owner."""
    url = settings.database_url
    shown = database.redacted(url)
    path = _missing_sqlite_file(url)
    if path is not None:
        return [
            failed(
                "database reachable",
                f"the SQLite file {path} does not exist (nothing was created)",
                f"set OMNI_DATABASE_URL, or create it: {_SEED_FIX}",
            )
        ]
    try:
        revision = await bounded_blocking(lambda: database.schema_revision(url), bound)
    except CheckTimedOut as exc:
        return [
            failed(
                "database reachable",
                f"{shown}: {exc}",
                "check OMNI_DATABASE_URL, the network path and that the database is up",
            )
        ]
    except Exception as exc:  # every driver error: the detail names its kind, never a secret
        return [
            failed(
                "database reachable",
                f"cannot connect to {shown}: {reason_of(exc)}",
                "check OMNI_DATABASE_URL (host, port, user, password) and that the database is up",
            )
        ]
    results = [ok("database reachable", shown)]
    head = database.head_revision()
    if revision != head:
        results.append(
            failed(
                "database migrated",
                f"schema at {revision or 'no revision (never migrated)'}, this version needs "
                f"{head}",
                "omni-secrets db upgrade (as the owner role), then omni-secrets db seed",
            )
        )
        return results
    results.append(ok("database migrated", f"schema at head {head}"))
    results.append(await guarded("database seeded", _seeded(settings), bound))
    if not database.is_sqlite(url):
        results.append(await guarded("database role", _role(settings, bound), bound))
    return results


async def _seeded(settings: Settings) -> CheckResult:
    catalog = Catalog(settings.gsm_secret_prefix)
    async with database.open_database(settings.database_url) as factory, factory() as uow:
        rows = {row.secret_type: row for row in await uow.metadata.list_all()}
    missing = [str(t) for t in catalog.types if t not in rows]
    if missing:
        return failed(
            "database seeded",
            f"no row for {', '.join(missing)}",
            "omni-secrets db seed",
        )
    pinned = sum(1 for row in rows.values() if row.active_version is not None)
    return ok("database seeded", f"{len(rows)} types, {pinned} pinned")


async def _role(settings: Settings, bound: float) -> CheckResult:
    url = settings.database_url
    user, owner = await bounded_blocking(lambda: database.runs_as_audit_owner(url), bound)
    if not owner:
        return ok("database role", f"connects as {user}, not the table owner")
    detail = (
        f"connects as {user}, which owns the audit table or is a superuser (it could disable "
        "the append-only triggers)"
    )
    fix = (
        "serve with the runtime role omni_runtime (omni-secrets db grants --role omni_runtime "
        "--apply as the owner) and point OMNI_DATABASE_URL at it"
    )
    if settings.environment is Environment.PRODUCTION and not settings.allow_table_owner:
        return failed("database role", detail, fix)
    if settings.environment is Environment.PRODUCTION:
        return warn("database role", detail + "; allowed by OMNI_ALLOW_TABLE_OWNER", fix)
    return ok("database role", f"connects as {user} (the owner: allowed outside production)")


# --- key files -------------------------------------------------------------------------------


def break_glass_check(settings: Settings) -> CheckResult:
    from omni_secrets.bootstrap.keys import load_break_glass_key_pair

    if settings.breakglass_public_key is None and settings.breakglass_private_key_file is None:
        return ok("break-glass", "not configured (break-glass off)")
    try:
        pair = load_break_glass_key_pair(settings)
    except OmniSecretsError as exc:
        return failed(
            "break-glass",
            exc.message,
            "set OMNI_BREAKGLASS_PUBLIC_KEY to the public half of the key in "
            "OMNI_BREAKGLASS_PRIVATE_KEY_FILE (omni-secrets break-glass keygen makes a pair)",
        )
    if pair is None:
        return failed(
            "break-glass",
            "OMNI_BREAKGLASS_PRIVATE_KEY_FILE is set but OMNI_BREAKGLASS_PUBLIC_KEY is not",
            "set both or neither",
        )
    return ok("break-glass", f"key pair matches (key id {pair.key_id})")


async def integrity_check(settings: Settings, bound: float) -> CheckResult:
    from omni_secrets.domain.audit_chain import keyed_row_hash

    if not settings.integrity_key_files:
        if settings.environment is Environment.PRODUCTION:
            return failed(
                "integrity", "OMNI_INTEGRITY_KEY_FILE is not set", "set OMNI_INTEGRITY_KEY_FILE"
            )
        return ok("integrity", "no key (audit rows unkeyed; allowed outside production)")
    try:
        keyring = database.load_integrity_keyring(settings)
    except OmniSecretsError as exc:
        return failed("integrity", exc.message, "check OMNI_INTEGRITY_KEY_FILE names the key")
    assert keyring is not None  # key files are set
    url = settings.database_url
    if _missing_sqlite_file(url) is not None:
        return warn(
            "integrity",
            f"key {keyring.signing_key_id} loaded; no database to check it against",
            _SEED_FIX,
        )
    try:
        async with database.open_database(url) as factory, factory() as uow:
            recent = await bounded(uow.audit.recent(1), bound)
    except (CheckTimedOut, OmniSecretsError) as exc:
        return warn(
            "integrity",
            f"key {keyring.signing_key_id} loaded; audit head not read: {reason_of(exc)}",
            "see the database checks",
        )
    if not recent:
        return ok("integrity", f"key {keyring.signing_key_id} loaded; no audit events yet")
    head = recent[0]
    key_id = getattr(head, "key_id", None)
    if key_id is None:
        return warn(
            "integrity",
            f"audit head (event {head.id}) is unkeyed: written without an integrity key",
            "serve with OMNI_INTEGRITY_KEY_FILE set; omni-secrets audit verify checks the chain",
        )
    expected = keyed_row_hash(keyring, head.prev_hash, head, head.id, key_id)
    if expected is None:
        return failed(
            "integrity",
            f"audit head (event {head.id}) is keyed with {key_id}, which is not among the "
            f"configured keys ({', '.join(keyring.key_ids)})",
            "add the key that signed it to OMNI_INTEGRITY_KEY_FILE (keys are kept after a "
            "rotation; docs/runbooks/integrity.md)",
        )
    if expected != head.row_hash:
        return failed(
            "integrity",
            f"audit head (event {head.id}) does not verify under key {key_id}",
            "omni-secrets audit verify; docs/runbooks/integrity.md",
        )
    return ok("integrity", f"key {key_id} verifies the audit head (event {head.id})")


# --- helpers ---------------------------------------------------------------------------------


def _missing_sqlite_file(url: str) -> str | None:
    """The file an SQLite ``url`` names when it does not exist (None otherwise)."""
    path = database.sqlite_file(url)
    return path if path is not None and not Path(path).exists() else None
