"""`serve` imports only what the configuration uses (issue 19: start-up time and memory).

Checked in a fresh interpreter, since this test process has imported most modules already:
building the app and its services without a Pub/Sub subscription, a policy file or a break-glass
key, and reading the schema revision as `serve` does, must leave google-cloud-pubsub, Alembic,
PyYAML and PyNaCl unloaded; each loads once its feature is configured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Only a feature that is configured (or a command that migrates) may load these.
OPTIONAL_MODULES = ("google.cloud.pubsub_v1", "alembic", "yaml", "nacl")

_BUILD = """
import json, sys
from omni_secrets.adapters.db import migrate
from omni_secrets.api.app import create_app
from omni_secrets.bootstrap import build_services
from omni_secrets.config import load_settings

values = {{
    "OMNI_ENVIRONMENT": "development",
    "GCP_PROJECT_ID": "omni-dev",
    "OMNI_AUTH_HS256_SECRET": "fake-hs256-secret-for-lazy-import-tests-0123",
    "OMNI_GSM_ENDPOINT": "127.0.0.1:9",
    "OMNI_DATABASE_URL": "sqlite:///{database}",
}}
values.update({extra})
settings = load_settings(**values)
assert migrate.current(settings.database_url) is None  # what serve's migration check reads
create_app(settings)
build_services(settings)  # builds only: no connection, no task
print("modules:", json.dumps(sorted(sys.modules)))
"""


def _loaded(tmp_path: Path, **extra: str) -> set[str]:
    probe = _BUILD.format(database=tmp_path / "omni.db", extra=repr(extra))
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    # build_services may log (e.g. integrity.disabled) on stdout: take the probe's own line.
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("modules: "))
    return set(json.loads(line.removeprefix("modules: ")))


def test_serve_loads_no_optional_dependency_it_is_not_configured_for(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path)
    assert "omni_secrets.bootstrap" in loaded  # the probe really built the service
    assert sorted(name for name in OPTIONAL_MODULES if name in loaded) == []


def test_a_pubsub_subscription_loads_the_pubsub_client(tmp_path: Path) -> None:
    # The probe is not vacuous: the same build with a subscription imports google-cloud-pubsub.
    loaded = _loaded(tmp_path, OMNI_PUBSUB_SUBSCRIPTION="projects/omni-dev/subscriptions/gsm")
    assert "google.cloud.pubsub_v1" in loaded
    assert "omni_secrets.adapters.pubsub" in loaded
