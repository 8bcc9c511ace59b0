"""The settings object and the environment guard (contract section 2)."""

from __future__ import annotations

from typing import Any

import pytest

from omni_secrets.config import (
    AuthMode,
    Environment,
    Settings,
    check_environment,
    load_checked_settings,
    load_settings,
)
from omni_secrets.domain.errors import ConfigurationRejected

HS256 = {"OMNI_AUTH_HS256_SECRET": "fake-hs256-secret-for-config-tests-0123"}


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {"OMNI_ENVIRONMENT": "development", "GCP_PROJECT_ID": "omni-dev"}
    base.update(HS256)
    base.update(values)
    return load_settings(**{k: v for k, v in base.items() if v is not None})


PRODUCTION = {
    "OMNI_ENVIRONMENT": "production",
    "GCP_PROJECT_ID": "acme-prod",
    "OMNI_AUTH_HS256_SECRET": None,
    "OMNI_AUTH_JWKS_URL": "https://idp.example.test/jwks.json",
    "OMNI_AUTH_ISSUER": "https://idp.example.test",
    "OMNI_DATABASE_URL": "postgresql+psycopg://omni@db.example.test/omni",
    "OMNI_INTEGRITY_KEY_FILE": "/run/secrets/fake-integrity.key",
}


def rejection(**values: Any) -> ConfigurationRejected:
    with pytest.raises(ConfigurationRejected) as info:
        check_environment(settings(**values))
    return info.value


@pytest.mark.usefixtures("clean_env")
class TestSettings:
    def test_defaults_match_the_contract(self) -> None:
        """Unset variables take the documented defaults."""
        s = settings()
        assert s.gsm_secret_prefix == "apex-omni-"
        assert s.gsm_timeout_seconds == 5
        assert s.database_url == "sqlite:///./omni-secrets.db"
        assert s.cache_ttl_seconds == 300
        assert s.cache_max_stale_seconds == 0
        assert s.rotation_period_days == 365
        assert s.rotation_warning_days == 30
        assert s.rotation_check_interval_seconds == 3600
        assert s.alert_consecutive_failures == 3
        assert str(s.pagerduty_events_url) == "https://events.pagerduty.com/v2/enqueue"
        assert str(s.apex_base_url).rstrip("/") == "https://omni.apex.exchange"
        assert s.auth_audience == "omni-secrets"
        assert s.log_format == "json"
        assert s.break_glass_enabled is False

    def test_reads_the_environment(self, clean_env: pytest.MonkeyPatch) -> None:
        """Variables are read by their contract names."""
        clean_env.setenv("OMNI_ENVIRONMENT", "staging")
        clean_env.setenv("GCP_PROJECT_ID", "omni-staging")
        clean_env.setenv("OMNI_CACHE_TTL_SECONDS", "60")
        clean_env.setenv("OMNI_PRODUCTION_GCP_PROJECT_IDS", "bank-live, other-live")
        s = load_settings()
        assert s.environment is Environment.STAGING
        assert s.cache_ttl_seconds == 60
        assert s.production_gcp_project_ids == {"bank-live", "other-live"}

    @pytest.mark.parametrize("ttl", ["4", "86401", "abc"])
    def test_cache_ttl_out_of_range_is_rejected(self, ttl: str) -> None:
        """OMNI_CACHE_TTL_SECONDS outside 5..86400 names the variable and the value."""
        with pytest.raises(ConfigurationRejected) as info:
            settings(OMNI_CACHE_TTL_SECONDS=ttl)
        assert "OMNI_CACHE_TTL_SECONDS" in info.value.message
        assert ttl in info.value.message

    def test_secret_values_are_never_shown(self) -> None:
        """A settings repr and a rejection name the secret variables but hide their values."""
        s = settings(OMNI_AUTH_HS256_SECRET="fake-do-not-print")
        assert "fake-do-not-print" not in repr(s)
        assert s.auth_mode is AuthMode.HS256
        err = rejection(
            OMNI_ENVIRONMENT="production",
            OMNI_INTEGRITY_KEY_FILE="/run/secrets/fake-integrity.key",
            GCP_PROJECT_ID="acme-prod",
            OMNI_AUTH_HS256_SECRET="fake-do-not-print",
        )
        assert "fake-do-not-print" not in err.message
        assert "OMNI_AUTH_HS256_SECRET" in err.message


@pytest.mark.usefixtures("clean_env")
class TestEnvironmentGuard:
    def test_valid_development_config_passes(self) -> None:
        """A development environment on a development project with HS256 is accepted."""
        check_environment(settings())

    @pytest.mark.parametrize("env", ["staging", "development", "test"])
    @pytest.mark.parametrize("project", ["acme-prod", "acme-production"])
    def test_non_production_env_on_production_project(self, env: str, project: str) -> None:
        """Non-production environments must not point at a *-prod/*-production project."""
        err = rejection(OMNI_ENVIRONMENT=env, GCP_PROJECT_ID=project)
        assert env in err.message and project in err.message
        assert "environment isolation" in err.message

    def test_listed_production_project(self) -> None:
        """A project listed in OMNI_PRODUCTION_GCP_PROJECT_IDS is production whatever its name."""
        err = rejection(OMNI_PRODUCTION_GCP_PROJECT_IDS="bank-live", GCP_PROJECT_ID="bank-live")
        assert "bank-live" in err.message

    def test_production_env_on_non_production_project(self) -> None:
        """Production must point at a production project."""
        err = rejection(**{**PRODUCTION, "GCP_PROJECT_ID": "acme-staging"})
        assert "acme-staging" in err.message and "production" in err.message
        assert len(err.violations) == 1

    def test_production_refuses_emulator_endpoint(self) -> None:
        """Production must not use OMNI_GSM_ENDPOINT."""
        err = rejection(
            OMNI_ENVIRONMENT="production",
            OMNI_INTEGRITY_KEY_FILE="/run/secrets/fake-integrity.key",
            GCP_PROJECT_ID="acme-prod",
            OMNI_AUTH_HS256_SECRET=None,
            OMNI_AUTH_JWKS_URL="https://idp.example.test/jwks.json",
            OMNI_GSM_ENDPOINT="127.0.0.1:8085",
        )
        assert "OMNI_GSM_ENDPOINT" in err.message and "127.0.0.1:8085" in err.message

    def test_production_refuses_hs256(self) -> None:
        """Production must not accept shared-secret tokens."""
        err = rejection(**{**PRODUCTION, **HS256})
        assert [v.variables for v in err.violations] == [
            ("OMNI_ENVIRONMENT", "OMNI_AUTH_HS256_SECRET")
        ]

    def test_valid_production_config_passes(self) -> None:
        """Production on a production project with JWKS auth is accepted."""
        check_environment(settings(**PRODUCTION))

    def test_production_requires_integrity_key(self) -> None:
        """Production without OMNI_INTEGRITY_KEY_FILE is refused, naming the variable."""
        err = rejection(**{**PRODUCTION, "OMNI_INTEGRITY_KEY_FILE": None})
        assert [v.variables for v in err.violations] == [
            ("OMNI_ENVIRONMENT", "OMNI_INTEGRITY_KEY_FILE")
        ]

    def test_integrity_key_files_are_a_comma_list(self) -> None:
        """Several key files: first signs, all verify; blanks are ignored."""
        s = settings(OMNI_INTEGRITY_KEY_FILE=" /a.key, /b.key ,")
        assert s.integrity_key_files == ("/a.key", "/b.key")
        assert settings().integrity_key_files == ()

    def test_no_auth_mode(self) -> None:
        """Some auth mode must be configured."""
        err = rejection(OMNI_AUTH_HS256_SECRET=None)
        assert "no auth mode" in err.message

    def test_missing_environment_and_project(self) -> None:
        """Both required variables are reported together."""
        err = rejection(OMNI_ENVIRONMENT=None, GCP_PROJECT_ID=None)
        assert "OMNI_ENVIRONMENT" in err.message and "GCP_PROJECT_ID" in err.message

    def test_break_glass_half_configured(self) -> None:
        """A public key without its private key file is refused."""
        err = rejection(OMNI_BREAKGLASS_PUBLIC_KEY="x" * 44)
        assert "OMNI_BREAKGLASS_PRIVATE_KEY_FILE" in err.message

    def test_message_is_one_line(self) -> None:
        """Several violations still make one line."""
        err = rejection(
            OMNI_ENVIRONMENT="staging", GCP_PROJECT_ID="x-prod", OMNI_AUTH_HS256_SECRET=None
        )
        assert len(err.violations) == 2
        assert "\n" not in err.message


@pytest.mark.usefixtures("clean_env")
class TestGuardHardening:
    """The refusals added by issue 15; each was accepted before."""

    def test_staging_on_a_project_number_is_refused(self) -> None:
        """A project number can name a production project: refused unless listed."""
        err = rejection(OMNI_ENVIRONMENT="staging", GCP_PROJECT_ID="123456789012")
        assert "123456789012" in err.message
        assert "OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS" in err.message

    def test_listed_non_production_number_is_accepted(self) -> None:
        check_environment(
            settings(
                OMNI_ENVIRONMENT="staging",
                GCP_PROJECT_ID="123456789012",
                OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS="555, 123456789012",
            )
        )

    def test_number_listed_as_production_is_production(self) -> None:
        """Production may name its project by number when it is listed as production."""
        check_environment(
            settings(
                **{**PRODUCTION, "GCP_PROJECT_ID": "987654321098"},
                OMNI_PRODUCTION_GCP_PROJECT_IDS="987654321098",
            )
        )
        err = rejection(
            OMNI_ENVIRONMENT="staging",
            GCP_PROJECT_ID="987654321098",
            OMNI_PRODUCTION_GCP_PROJECT_IDS="987654321098",
            OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS="987654321098",
        )
        assert "must not use production project" in err.message

    @pytest.mark.parametrize(
        ("variable", "url"),
        [
            ("OMNI_AUTH_JWKS_URL", "http://idp.example.test/jwks.json"),
            ("OMNI_APEX_BASE_URL", "http://omni.apex.exchange"),
            ("OMNI_PAGERDUTY_EVENTS_URL", "http://events.pagerduty.com/v2/enqueue"),
        ],
    )
    def test_production_refuses_plain_http(self, variable: str, url: str) -> None:
        err = rejection(**{**PRODUCTION, variable: url})
        assert [v.variables for v in err.violations] == [("OMNI_ENVIRONMENT", variable)]
        assert "https://" in err.message

    def test_plain_http_is_fine_outside_production(self) -> None:
        check_environment(settings(OMNI_APEX_BASE_URL="http://127.0.0.1:9999"))

    def test_production_requires_an_issuer(self) -> None:
        err = rejection(**{**PRODUCTION, "OMNI_AUTH_ISSUER": None})
        assert [v.variables for v in err.violations] == [("OMNI_ENVIRONMENT", "OMNI_AUTH_ISSUER")]

    @pytest.mark.parametrize(
        "url", [None, "sqlite:////var/lib/omni/omni.db", "sqlite+aiosqlite:///x.db"]
    )
    def test_production_refuses_sqlite(self, url: str | None) -> None:
        """The default database (and any SQLite file) is refused in production."""
        err = rejection(**{**PRODUCTION, "OMNI_DATABASE_URL": url})
        assert [v.variables for v in err.violations] == [("OMNI_ENVIRONMENT", "OMNI_DATABASE_URL")]

    @pytest.mark.parametrize("env", ["development", "test", "staging"])
    def test_short_hs256_secret_is_refused_everywhere(self, env: str) -> None:
        project = "omni-staging" if env == "staging" else "omni-dev"
        short = "fake-31-bytes-hs256-secret-xxxx"
        assert len(short) == 31
        err = rejection(OMNI_ENVIRONMENT=env, GCP_PROJECT_ID=project, OMNI_AUTH_HS256_SECRET=short)
        assert [v.variables for v in err.violations] == [("OMNI_AUTH_HS256_SECRET",)]
        assert short not in err.message

    def test_32_byte_secret_is_accepted(self) -> None:
        check_environment(settings(OMNI_AUTH_HS256_SECRET="f" * 32))

    def test_every_broken_rule_in_one_line(self, clean_env: pytest.MonkeyPatch) -> None:
        """A malformed value does not hide the guard's rules: everything is reported at once."""
        for name, value in {
            "OMNI_ENVIRONMENT": "production",
            "GCP_PROJECT_ID": "acme-prod",
            "OMNI_CACHE_TTL_SECONDS": "1",
            "OMNI_AUTH_JWKS_URL": "http://idp.example.test/jwks.json",
            "OMNI_GSM_ENDPOINT": "127.0.0.1:8085",
        }.items():
            clean_env.setenv(name, value)
        with pytest.raises(ConfigurationRejected) as info:
            load_checked_settings()
        named = {v for violation in info.value.violations for v in violation.variables}
        assert {
            "OMNI_CACHE_TTL_SECONDS",
            "OMNI_AUTH_JWKS_URL",
            "OMNI_GSM_ENDPOINT",
            "OMNI_AUTH_ISSUER",
            "OMNI_DATABASE_URL",
            "OMNI_INTEGRITY_KEY_FILE",
        } <= named
        assert len(info.value.violations) == 6
        assert "\n" not in info.value.message
