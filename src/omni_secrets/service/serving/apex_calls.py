"""``ApexCalls``: the ApeX consumer calls made with the served credentials, and FR-012.

``required_credentials`` never calls GSM: when a required type is not served it asks the
cache's rate-limited background refresher for it and raises ``SecretsUnavailable`` (503).
"""

from __future__ import annotations

import time

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import SecretsUnavailable
from omni_secrets.domain.exchange import ApexAccount, ApexCredentials, ApexGateway, SelfTestResult
from omni_secrets.service.auditor import Auditor, access_event


class ApexCalls:
    """Signed ApeX calls (account, self-test) with the credentials ``cache`` serves now."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        cache: OmniSecretCache,
        apex: ApexGateway,
        auditor: Auditor,
        clock: Clock,
    ) -> None:
        self.catalog = catalog
        self.cache = cache
        self._apex = apex
        self._auditor = auditor
        self._clock = clock

    def required_credentials(self) -> ApexCredentials:
        """The api key, secret and passphrase as served now (break-glass included).

        Never calls GSM. When a required type is missing, asks the cache's background refresher
        for the missing types and raises.

        Raises:
            SecretsUnavailable: naming the required types not served (FR-012).
        """
        key = self.cache.get(SecretType.API_KEY)
        secret = self.cache.get(SecretType.API_SECRET)
        passphrase = self.cache.get(SecretType.API_PASSPHRASE)
        if key is None or secret is None or passphrase is None:
            missing = [t for t in self.catalog.required_types if self.cache.get(t) is None]
            # Rate-limited by the cache: a burst of 503s cannot become a burst of GSM calls.
            self.cache.request_refresh(missing)
            raise SecretsUnavailable([t.value for t in missing])
        return ApexCredentials(key=key.value, secret=secret.value, passphrase=passphrase.value)

    async def get_account(self) -> ApexAccount:
        """ApeX's account ``data`` via a signed call with the served credentials.

        Raises:
            SecretsUnavailable: required credentials are not served (503, no GSM call).
            ApexUpstreamError: ApeX failed or refused (502).
        """
        return await self._apex.get_account(self.required_credentials())

    async def self_test(self, *, actor: str, correlation_id: str | None) -> SelfTestResult:
        """Sign ``GET /api/v3/account`` with the served credentials; audited as ``self_test``.

        Raises:
            SecretsUnavailable: required credentials are not served.
        """
        credentials = self.required_credentials()
        started = time.perf_counter()
        result = await self._apex.self_test(credentials)
        await self._auditor.submit(
            access_event(
                action="self_test",
                at=self._clock.now(),
                actor=actor,
                result="success" if result.ok else "failure",
                correlation_id=correlation_id,
                started=started,
                details={
                    "httpStatus": result.http_status,
                    "apexCode": result.apex_code,
                    "skewMs": result.skew_ms,
                },
            )
        )
        return result
