"""What the auth policy (contract section 14) costs on the status path.

One app, built by ``create_app`` with JWKS verification against a local
:class:`~omni_secrets.testing.identity.FakeIdentityProvider` (RS256, warm key set) and a policy
file of ``GRANTS`` entries, served in process through ``httpx.ASGITransport`` (no sockets, no
load generator: only the request path is timed). GSM and the database are in-memory fakes, so
the status request is the app's own work: middleware, JWT verification, the policy, the handler,
the background audit enqueue.

Two callers alternate request by request, so drift on a shared machine hits both alike:

- **token scope**: an Okta-shaped token whose ``scp`` carries ``omni-secrets:read``; the
  policy is consulted and matches nothing (the path every token took before the policy);
- **policy grant**: a Google-shaped ID token with no scope at all, granted ``read`` by its
  verified email through the policy.

Also timed, alone: the policy lookup and union (``PolicyVerifier``'s extra work per request).
Target: the policy-granted status request's p50 within 5 % of the token-scope one.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from bench._stats import Distribution, distribution, quiet_gc
from omni_secrets.api.app import create_app
from omni_secrets.api.auth import Principal
from omni_secrets.api.auth_policy import AuthPolicySource
from omni_secrets.bootstrap import Overrides
from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.config import load_settings
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import SystemClock
from omni_secrets.testing import FakeSecretStore, InMemoryUnitOfWorkFactory
from omni_secrets.testing.identity import OKTA_ISSUER, FakeIdentityProvider, SigningKey

GRANTS = 200
STATUS = "/ops/apex-omni/secrets/status"
AUDIENCE = "omni-secrets"
GRANTED_EMAIL = "workload-150@fake-project.iam.gserviceaccount.com"


@dataclass(frozen=True)
class PolicyCost:
    token_scope: Distribution
    policy_grant: Distribution
    lookup: Distribution
    grants: int

    @property
    def ratio(self) -> float:
        return self.policy_grant.p50 / self.token_scope.p50


def _policy_text() -> str:
    lines = ["grants:"]
    for n in range(GRANTS // 2):
        lines.append(f"  - principal: email:workload-{n * 3}@fake-project.iam.gserviceaccount.com")
        lines.append("    scopes: [omni-secrets:read]")
        lines.append(f"  - principal: group:team-{n}")
        lines.append("    scopes: [omni-secrets:read, omni-secrets:rotate]")
    return "\n".join(lines) + "\n"


def _time_lookup(policy_file: Path, samples: int) -> Distribution:
    source = AuthPolicySource(str(policy_file))
    principal = Principal(
        "1234", frozenset(), email=GRANTED_EMAIL, groups=frozenset({"everyone", "team-7"})
    )
    batch = 100
    results: list[float] = []
    with quiet_gc():
        for _ in range(samples):
            start = time.perf_counter_ns()
            for _ in range(batch):
                principal.with_scopes(source.policy.scopes_for(principal))
            results.append((time.perf_counter_ns() - start) / batch)
    return distribution(results)


async def _run(requests: int) -> PolicyCost:
    idp = FakeIdentityProvider([SigningKey.rsa("bench-rsa")])
    idp.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            policy_file = Path(tmp) / "policy.yaml"
            policy_file.write_text(_policy_text(), encoding="utf-8")
            settings = load_settings(
                OMNI_ENVIRONMENT="test",
                GCP_PROJECT_ID="omni-bench",
                OMNI_AUTH_JWKS_URL=idp.jwks_url,
                OMNI_AUTH_POLICY_FILE=str(policy_file),
                OMNI_LOG_FORMAT="json",
            )
            uow = InMemoryUnitOfWorkFactory()
            await seed_catalog(
                uow,
                Catalog(),
                project_id="omni-bench",
                store=None,
                clock=SystemClock(),
                rotation_period_days=365,
            )
            store = FakeSecretStore()
            store.seed(
                {f"apex-omni-{t.value.replace('_', '-')}": ["fake-bench"] for t in Catalog().types}
            )
            app = create_app(settings, overrides=Overrides(secret_store=store, uow_factory=uow))
            key = idp.keys[0]
            scoped = idp.okta_access_token(
                key,
                subject="svc-scoped",
                audience=AUDIENCE,
                issuer=OKTA_ISSUER,
                scp=["omni-secrets:read"],
                ttl_seconds=3600,
            )
            granted = idp.google_id_token(
                key, email=GRANTED_EMAIL, audience=AUDIENCE, ttl_seconds=3600
            )
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench"
                ) as client,
            ):
                headers = {
                    "scoped": {"Authorization": f"Bearer {scoped}"},
                    "granted": {"Authorization": f"Bearer {granted}"},
                }
                for name in headers:  # warm-up: JWKS fetched, code paths hot
                    for _ in range(20):
                        response = await client.get(STATUS, headers=headers[name])
                        if response.status_code != 200:
                            raise RuntimeError(f"{name}: status {response.status_code}")
                samples: dict[str, list[float]] = {"scoped": [], "granted": []}
                with quiet_gc():
                    for n in range(requests * 2):
                        name = "scoped" if n % 2 == 0 else "granted"
                        start = time.perf_counter_ns()
                        response = await client.get(STATUS, headers=headers[name])
                        samples[name].append(time.perf_counter_ns() - start)
                        if response.status_code != 200:
                            raise RuntimeError(f"{name}: status {response.status_code}")
            lookup = _time_lookup(policy_file, 200 if requests < 500 else 2_000)
    finally:
        idp.stop()
    return PolicyCost(
        token_scope=distribution(samples["scoped"]),
        policy_grant=distribution(samples["granted"]),
        lookup=lookup,
        grants=GRANTS,
    )


def run(*, quick: bool = False) -> PolicyCost:
    # Log lines are rendered (as in production) but not printed: the bench's stdout is its report.
    structlog.configure(
        processors=[
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    try:
        return asyncio.run(_run(200 if quick else 2_000))
    finally:
        structlog.reset_defaults()
