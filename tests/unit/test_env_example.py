""".env.example documents the configuration a deployment sets (contract section 2)."""

from __future__ import annotations

import re
from pathlib import Path

from omni_secrets.config import load_settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
CONTRACT_VARIABLES = {
    "OMNI_ENVIRONMENT",
    "GCP_PROJECT_ID",
    "OMNI_PRODUCTION_GCP_PROJECT_IDS",
    "OMNI_GSM_ENDPOINT",
    "OMNI_GSM_SECRET_PREFIX",
    "OMNI_GSM_TIMEOUT_SECONDS",
    "OMNI_DATABASE_URL",
    "OMNI_CACHE_TTL_SECONDS",
    "OMNI_CACHE_MAX_STALE_SECONDS",
    "OMNI_BREAKGLASS_PUBLIC_KEY",
    "OMNI_BREAKGLASS_PRIVATE_KEY_FILE",
    "OMNI_AUTH_HS256_SECRET",
    "OMNI_AUTH_JWKS_URL",
    "OMNI_AUTH_ISSUER",
    "OMNI_AUTH_AUDIENCE",
    "OMNI_ROTATION_PERIOD_DAYS",
    "OMNI_ROTATION_WARNING_DAYS",
    "OMNI_ROTATION_CHECK_INTERVAL_SECONDS",
    "OMNI_ALERT_CONSECUTIVE_FAILURES",
    "OMNI_PAGERDUTY_ROUTING_KEY",
    "OMNI_PAGERDUTY_EVENTS_URL",
    "OMNI_APEX_BASE_URL",
    "OMNI_LOG_FORMAT",
    "OMNI_INTEGRITY_KEY_FILE",
}


def assignments() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    return dict(pairs)


def test_lists_every_contract_variable() -> None:
    """Each variable of the contract's configuration table has a line."""
    assert set(assignments()) >= CONTRACT_VARIABLES


def test_the_defaults_it_shows_are_accepted_by_settings() -> None:
    """The non-empty example values that Settings knows load without a violation."""
    values = {k: v for k, v in assignments().items() if v and k != "OMNI_INTEGRITY_KEY_FILE"}
    settings = load_settings(**values)
    assert settings.cache_ttl_seconds == 300
    assert settings.gsm_secret_prefix == "apex-omni-"
