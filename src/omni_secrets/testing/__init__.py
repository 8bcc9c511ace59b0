"""Reusable fakes for tests, ``dev`` and the benchmark; production code never imports this package.

Each module holds the fakes of one outside system; each fake implements the real port or speaks
the real wire protocol, and keeps state that tests assert on. Nothing runs at import time.

- :mod:`~omni_secrets.testing.secret_store`: :class:`FakeSecretStore` (GSM semantics, faults).
- :mod:`~omni_secrets.testing.database`: :class:`InMemoryDatabase` and its unit of work.
- :mod:`~omni_secrets.testing.apex`: :class:`FakeApexServer` (real HTTP, checks signatures).
- :mod:`~omni_secrets.testing.alerts`: :class:`FakePagerDutyServer`, :class:`RecordingAlertSink`.
- :mod:`~omni_secrets.testing.identity`: :class:`FakeIdentityProvider` (real JWKS over HTTP,
  Google- and Okta-shaped tokens, a service-account token endpoint for google-auth).
"""

from omni_secrets.testing.alerts import (
    FakePagerDutyServer,
    PagerDutyRequestRecord,
    RecordingAlertSink,
)
from omni_secrets.testing.apex import ApexRequestRecord, FakeApexFailure, FakeApexServer
from omni_secrets.testing.database import (
    InMemoryDatabase,
    InMemoryState,
    InMemoryUnitOfWork,
    InMemoryUnitOfWorkFactory,
)
from omni_secrets.testing.identity import FakeIdentityProvider, SigningKey
from omni_secrets.testing.secret_store import FakeSecretStore

__all__ = [
    "ApexRequestRecord",
    "FakeApexFailure",
    "FakeApexServer",
    "FakeIdentityProvider",
    "FakePagerDutyServer",
    "FakeSecretStore",
    "InMemoryDatabase",
    "InMemoryState",
    "InMemoryUnitOfWork",
    "InMemoryUnitOfWorkFactory",
    "PagerDutyRequestRecord",
    "RecordingAlertSink",
    "SigningKey",
]
