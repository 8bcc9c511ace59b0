"""The dev fake ApeX (``omni-secrets dev``) accepts credential sets offered by a source."""

from __future__ import annotations


class TestFakeApexCredentialSource:
    """The dev fake ApeX accepts credential sets offered by a source, checked per request."""

    def test_a_set_from_the_source_is_accepted_and_others_refused(self) -> None:
        """A signed request with a set the source offers passes; a changed secret does not."""
        import httpx

        from omni_secrets.domain.clock import SystemClock
        from omni_secrets.domain.exchange import ApexCredentials
        from omni_secrets.testing import FakeApexServer

        offered = [ApexCredentials.of("fake-src-key", "fake-src-secret", "fake-src-pass")]
        with FakeApexServer(credential_source=lambda: list(offered)) as server:
            from omni_secrets.adapters.apex import epoch_ms, signed_headers

            def account(credentials: ApexCredentials) -> dict[str, object]:
                headers = signed_headers(
                    credentials, "GET", "/api/v3/account", None, epoch_ms(SystemClock().now())
                )
                answer = httpx.get(f"{server.base_url}/api/v3/account", headers=headers)
                body: dict[str, object] = answer.json()
                return body

            assert "data" in account(offered[0])
            wrong = ApexCredentials.of("fake-src-key", "fake-other-secret", "fake-src-pass")
            assert account(wrong).get("code") == 20006
            offered.clear()
            assert account(wrong).get("code") == 10002
