"""``omni-secrets doctor``'s probes of the remote services: Secret Manager (each catalog
secret at its ``current`` alias, the runtime's permissions by ``TestIamPermissions``, topics and
rotation schedule), the Pub/Sub subscription and the JWKS. Each is bounded; the GSM probes run
concurrently, so a dead endpoint costs one bound, not one per secret.
"""

from __future__ import annotations

import asyncio
from typing import Any

from omni_secrets.config import Environment, Settings
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.service.doctor import (
    CheckResult,
    CheckTimedOut,
    bounded_blocking,
    failed,
    guarded,
    ok,
    reason_of,
    warn,
)

# --- Secret Manager --------------------------------------------------------------------------


async def gsm_checks(settings: Settings, bound: float) -> list[CheckResult]:
    """Each catalog secret at ``current``, the permissions, then topics and schedule."""
    from omni_secrets.adapters import gsm as gsm_adapter
    from omni_secrets.adapters.gsm_permissions import SECRET_PERMISSIONS
    from omni_secrets.adapters.retry import RetryPolicy

    if settings.gcp_project_id is None:
        return [failed("gsm", "GCP_PROJECT_ID is not set", "set GCP_PROJECT_ID")]
    client = gsm_adapter.GsmSecretManagerClient(
        project_id=settings.gsm.project_id,
        endpoint=settings.gsm_endpoint,
        timeout_seconds=min(settings.gsm_timeout_seconds, bound),
        retry=RetryPolicy(max_attempts=1),  # one attempt: one line, no retry log
    )
    secret_ids = [entry.gsm_secret_id for entry in Catalog(settings.gsm_secret_prefix)]
    where = settings.gsm_endpoint or "secretmanager.googleapis.com"
    try:
        results = await asyncio.gather(
            *(
                guarded(f"gsm {secret_id}", _current(client, secret_id, where), bound)
                for secret_id in secret_ids
            ),
            guarded(
                "gsm permissions",
                _permissions(client, secret_ids, SECRET_PERMISSIONS, where),
                bound,
            ),
            guarded("gsm schedule", _schedule(client, secret_ids, where), bound),
        )
    finally:
        await client.aclose()
    return list(results)


async def _current(client: Any, secret_id: str, where: str) -> CheckResult:
    name = f"gsm {secret_id}"
    try:
        accessed = await client.access(secret_id, "current")
    except SecretStoreError as exc:
        if exc.reason == "NOT_FOUND":
            return await _why_not_found(client, secret_id)
        if exc.reason == "FAILED_PRECONDITION":
            return failed(
                name,
                f"the version `current` names is not ENABLED ({exc.message})",
                f"omni-secrets gsm versions list --secret-type ... to see it; enable it or "
                f"move `current`: gcloud secrets update {secret_id} "
                "--update-version-aliases=current=N",
            )
        return failed(name, f"{exc.message} at {where}", _gsm_fix(exc.reason))
    return ok(name, f"current = version {accessed.version}, readable")


async def _why_not_found(client: Any, secret_id: str) -> CheckResult:
    name = f"gsm {secret_id}"
    try:
        info = await client.get_secret(secret_id)
    except SecretStoreError:
        return failed(
            name,
            "the secret does not exist",
            "create it and its first version (deploy/gcp/setup.sh, or gcloud secrets create "
            f"{secret_id} and omni-secrets gsm versions add)",
        )
    if info.current is None:
        return failed(
            name,
            "no `current` alias (the service serves the version `current` names)",
            f"gcloud secrets update {secret_id} --update-version-aliases=current=N (N: the "
            "version to serve), or start the service once: it names the newest ENABLED version",
        )
    return failed(
        name,
        f"`current` names version {info.current}, which does not exist",
        f"gcloud secrets update {secret_id} --update-version-aliases=current=N",
    )


async def _permissions(
    client: Any, secret_ids: list[str], wanted: tuple[str, ...], where: str
) -> CheckResult:
    name = "gsm permissions"
    missing: dict[str, list[str]] = {}
    for secret_id in secret_ids:
        try:
            held = set(await client.held_permissions(secret_id, wanted))
        except SecretStoreError as exc:
            if exc.reason == "UNIMPLEMENTED":
                return warn(
                    name,
                    f"{where} does not answer TestIamPermissions: permissions not checked",
                    "check the custom role on each secret (docs/deploy-gke.md)",
                )
            if exc.reason == "NOT_FOUND":
                continue  # reported by the secret's own check
            return failed(name, f"{exc.message} at {where}", _gsm_fix(exc.reason))
        lacking = [p for p in wanted if p not in held]
        if lacking:
            missing[secret_id] = lacking
    if missing:
        shown = "; ".join(f"{s}: {', '.join(p)}" for s, p in missing.items())
        return failed(
            name,
            f"the runtime lacks {shown}",
            "grant the runtime's custom role on each secret (deploy/gcp/setup.sh)",
        )
    return ok(name, f"{', '.join(wanted)} held on {len(secret_ids)} secrets")


async def _schedule(client: Any, secret_ids: list[str], where: str) -> CheckResult:
    name = "gsm schedule"
    no_topics, no_rotation = [], []
    for secret_id in secret_ids:
        try:
            info = await client.get_secret(secret_id)
        except SecretStoreError as exc:
            if exc.reason == "NOT_FOUND":
                continue  # reported by the secret's own check
            return failed(name, f"{exc.message} at {where}", _gsm_fix(exc.reason))
        if not info.has_topics:
            no_topics.append(secret_id)
        if info.next_rotation_time is None:
            no_rotation.append(secret_id)
    problems = []
    if no_topics:
        problems.append(f"no Pub/Sub topic on {_which(no_topics, secret_ids)}")
    if no_rotation:
        problems.append(f"no rotation schedule on {_which(no_rotation, secret_ids)}")
    if problems:
        return warn(
            name,
            "; ".join(problems),
            "deploy/gcp/setup.sh sets them (gcloud secrets update ID --add-topics=TOPIC "
            "--next-rotation-time=... --rotation-period=...)",
        )
    return ok(name, f"topics and rotation schedule set on {len(secret_ids)} secrets")


def _which(some: list[str], every: list[str]) -> str:
    return f"all {len(every)} secrets" if len(some) == len(every) else ", ".join(some)


def _gsm_fix(reason: str) -> str:
    if reason in {"UNAVAILABLE", "DEADLINE_EXCEEDED"}:
        return "check OMNI_GSM_ENDPOINT (unset for Google) and the network path to Secret Manager"
    if reason in {"PERMISSION_DENIED", "UNAUTHENTICATED"}:
        return (
            "check the Workload Identity binding and the runtime's custom role on each secret "
            "(deploy/gcp/setup.sh)"
        )
    return "see docs/runbooks/gsm-outage.md"


# --- Pub/Sub, JWKS ---------------------------------------------------------------------------


async def pubsub_check(settings: Settings, bound: float) -> CheckResult:
    subscription = settings.pubsub_subscription
    if subscription is None:
        if settings.environment is Environment.PRODUCTION:
            return warn(
                "pubsub",
                "OMNI_PUBSUB_SUBSCRIPTION is not set: GSM changes reach replicas only by reconcile",
                "set OMNI_PUBSUB_SUBSCRIPTION=projects/P/subscriptions/S (deploy/gcp/setup.sh)",
            )
        return ok("pubsub", "not configured (GSM event notifications off)")

    def get() -> None:
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        try:
            subscriber.get_subscription(
                request={"subscription": subscription}, timeout=bound, retry=None
            )
        finally:
            subscriber.close()

    try:
        await bounded_blocking(get, bound)
    except CheckTimedOut as exc:
        return failed("pubsub", f"{subscription}: {exc}", "check the network path to Pub/Sub")
    except Exception as exc:
        return failed(
            "pubsub",
            f"{subscription}: {reason_of(exc)}",
            "check that the subscription exists and the runtime may subscribe "
            "(roles/pubsub.subscriber; deploy/gcp/setup.sh)",
        )
    return ok("pubsub", f"{subscription} reachable")


async def jwks_check(settings: Settings, bound: float) -> CheckResult:
    url = settings.effective_auth_jwks_url
    if url is None:
        return ok("jwks", f"not configured (auth mode {settings.auth_mode})")
    import httpx

    try:
        async with httpx.AsyncClient(timeout=bound) as http:
            answer = await http.get(url)
        answer.raise_for_status()
        keys = answer.json().get("keys")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return failed(
            "jwks",
            f"{url}: {reason_of(exc)}",
            "check OMNI_AUTH_JWKS_URL (or OMNI_AUTH_PROVIDER) and the egress to it",
        )
    if not isinstance(keys, list) or not keys:
        return failed("jwks", f"{url} has no keys", "check OMNI_AUTH_JWKS_URL names a JWKS")
    return ok("jwks", f"{url}: {len(keys)} keys")
