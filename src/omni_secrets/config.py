"""Configuration: one frozen, typed :class:`Settings` read from the environment, and the guard.

The settings object is built once by an entry point (``load_settings``) and passed down; nothing
reads the environment anywhere else. This module is pure: it validates, it never does I/O
(checking that the break-glass key file matches the public key happens at startup, in the
composition root).

The environment guard (:func:`check_environment`) encodes the startup refusals of contract
section 2 (environment isolation, production hardening, an auth mode, ranges). A refusal raises
:class:`~omni_secrets.domain.errors.ConfigurationRejected` naming the variables, their values and
the rule; secret values are named, never shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field, HttpUrl, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from omni_secrets.domain.catalog import DEFAULT_GSM_SECRET_PREFIX
from omni_secrets.domain.errors import ConfigurationRejected, ConfigViolation

DEFAULT_DATABASE_URL = "sqlite:///./omni-secrets.db"
DEFAULT_GSM_TIMEOUT_SECONDS = 5.0
DEFAULT_DATABASE_TIMEOUT_SECONDS = 5.0
DEFAULT_CACHE_TTL_SECONDS = 300
MIN_CACHE_TTL_SECONDS = 5
MAX_CACHE_TTL_SECONDS = 86_400
DEFAULT_ROTATION_PERIOD_DAYS = 365
DEFAULT_ROTATION_WARNING_DAYS = 30
DEFAULT_ROTATION_CHECK_INTERVAL_SECONDS = 3600
DEFAULT_ALERT_CONSECUTIVE_FAILURES = 3
DEFAULT_PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_APEX_BASE_URL = "https://omni.apex.exchange"
DEFAULT_AUTH_AUDIENCE = "omni-secrets"
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
# Google ID tokens carry either spelling of the issuer.
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
PRODUCTION_PROJECT_SUFFIXES = ("-prod", "-production")
MIN_HS256_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key at least as long as the hash output (256 bits)."""


class Environment(StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"
    DEVELOPMENT = "development"
    TEST = "test"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class AuthMode(StrEnum):
    HS256 = "hs256"
    JWKS = "jwks"


class AuthProvider(StrEnum):
    """``OMNI_AUTH_PROVIDER``: presets for a known identity provider (contract section 14)."""

    GOOGLE = "google"


class Settings(BaseSettings):
    """Every variable of contract section 2. Field aliases are the environment variable names.

    Build with :func:`load_settings` (which turns validation failures into a
    ``ConfigurationRejected``), or directly with keyword arguments named like the variables in
    tests: ``Settings(OMNI_ENVIRONMENT="test", GCP_PROJECT_ID="omni-test", ...)``.
    """

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", populate_by_name=False, case_sensitive=True
    )

    environment: Environment | None = Field(default=None, alias="OMNI_ENVIRONMENT")
    gcp_project_id: str | None = Field(default=None, alias="GCP_PROJECT_ID", min_length=1)
    production_gcp_project_ids_raw: str = Field(default="", alias="OMNI_PRODUCTION_GCP_PROJECT_IDS")
    nonproduction_gcp_project_numbers_raw: str = Field(
        default="", alias="OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS"
    )
    gsm_endpoint: str | None = Field(default=None, alias="OMNI_GSM_ENDPOINT")
    gsm_secret_prefix: str = Field(
        default=DEFAULT_GSM_SECRET_PREFIX, alias="OMNI_GSM_SECRET_PREFIX"
    )
    gsm_timeout_seconds: float = Field(
        default=DEFAULT_GSM_TIMEOUT_SECONDS, alias="OMNI_GSM_TIMEOUT_SECONDS", gt=0, le=300
    )
    database_url: str = Field(default=DEFAULT_DATABASE_URL, alias="OMNI_DATABASE_URL", min_length=1)
    database_timeout_seconds: float = Field(
        default=DEFAULT_DATABASE_TIMEOUT_SECONDS,
        alias="OMNI_DATABASE_TIMEOUT_SECONDS",
        gt=0,
        le=300,
    )
    audit_buffer_events: int = Field(
        default=10_000,
        alias="OMNI_AUDIT_BUFFER_EVENTS",
        ge=10,
        le=100_000,
    )
    cache_ttl_seconds: int = Field(
        default=DEFAULT_CACHE_TTL_SECONDS,
        alias="OMNI_CACHE_TTL_SECONDS",
        ge=MIN_CACHE_TTL_SECONDS,
        le=MAX_CACHE_TTL_SECONDS,
    )
    cache_max_stale_seconds: int = Field(
        default=0, alias="OMNI_CACHE_MAX_STALE_SECONDS", ge=0, le=MAX_CACHE_TTL_SECONDS
    )
    breakglass_public_key: str | None = Field(default=None, alias="OMNI_BREAKGLASS_PUBLIC_KEY")
    breakglass_private_key_file: str | None = Field(
        default=None, alias="OMNI_BREAKGLASS_PRIVATE_KEY_FILE"
    )
    auth_hs256_secret: SecretStr | None = Field(default=None, alias="OMNI_AUTH_HS256_SECRET")
    auth_jwks_url: HttpUrl | None = Field(default=None, alias="OMNI_AUTH_JWKS_URL")
    auth_issuer: str | None = Field(default=None, alias="OMNI_AUTH_ISSUER")
    auth_audience: str = Field(
        default=DEFAULT_AUTH_AUDIENCE, alias="OMNI_AUTH_AUDIENCE", min_length=1
    )
    auth_provider: AuthProvider | None = Field(default=None, alias="OMNI_AUTH_PROVIDER")
    auth_policy_file: str | None = Field(default=None, alias="OMNI_AUTH_POLICY_FILE")
    rotation_period_days: int = Field(
        default=DEFAULT_ROTATION_PERIOD_DAYS, alias="OMNI_ROTATION_PERIOD_DAYS", ge=1, le=3650
    )
    rotation_warning_days: int = Field(
        default=DEFAULT_ROTATION_WARNING_DAYS, alias="OMNI_ROTATION_WARNING_DAYS", ge=0, le=3650
    )
    rotation_check_interval_seconds: int = Field(
        default=DEFAULT_ROTATION_CHECK_INTERVAL_SECONDS,
        alias="OMNI_ROTATION_CHECK_INTERVAL_SECONDS",
        ge=1,
        le=MAX_CACHE_TTL_SECONDS,
    )
    alert_consecutive_failures: int = Field(
        default=DEFAULT_ALERT_CONSECUTIVE_FAILURES,
        alias="OMNI_ALERT_CONSECUTIVE_FAILURES",
        ge=1,
        le=1000,
    )
    pagerduty_routing_key: SecretStr | None = Field(
        default=None, alias="OMNI_PAGERDUTY_ROUTING_KEY"
    )
    pagerduty_events_url: HttpUrl = Field(
        default=HttpUrl(DEFAULT_PAGERDUTY_EVENTS_URL), alias="OMNI_PAGERDUTY_EVENTS_URL"
    )
    apex_base_url: HttpUrl = Field(
        default=HttpUrl(DEFAULT_APEX_BASE_URL), alias="OMNI_APEX_BASE_URL"
    )
    log_format: LogFormat = Field(default=LogFormat.JSON, alias="OMNI_LOG_FORMAT")
    # Section 12: GSM event notifications (unset = off). GSM names resources by project number
    # in its events; OMNI_GCP_PROJECT_NUMBER lets those through as our own project.
    pubsub_subscription: str | None = Field(
        default=None,
        alias="OMNI_PUBSUB_SUBSCRIPTION",
        pattern=r"^projects/[A-Za-z0-9._:-]{1,100}/subscriptions/[A-Za-z][A-Za-z0-9._~%+-]{2,254}$",
    )
    gcp_project_number: str | None = Field(
        default=None, alias="OMNI_GCP_PROJECT_NUMBER", pattern=r"^[0-9]{1,20}$"
    )
    integrity_key_file: str | None = Field(default=None, alias="OMNI_INTEGRITY_KEY_FILE")
    allow_table_owner: bool = Field(default=False, alias="OMNI_ALLOW_TABLE_OWNER")

    @field_validator(
        "gsm_endpoint",
        "breakglass_public_key",
        "breakglass_private_key_file",
        "auth_issuer",
        "auth_hs256_secret",
        "auth_jwks_url",
        "auth_provider",
        "auth_policy_file",
        "pagerduty_routing_key",
        "environment",
        "gcp_project_id",
        "pubsub_subscription",
        "gcp_project_number",
        "integrity_key_file",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: Any) -> Any:
        # An exported-but-empty variable (FOO=) is treated as unset, as operators expect.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    # -- derived values -------------------------------------------------------------------------

    @property
    def production_gcp_project_ids(self) -> frozenset[str]:
        return frozenset(
            part.strip() for part in self.production_gcp_project_ids_raw.split(",") if part.strip()
        )

    @property
    def nonproduction_gcp_project_numbers(self) -> frozenset[str]:
        return frozenset(
            part.strip()
            for part in self.nonproduction_gcp_project_numbers_raw.split(",")
            if part.strip()
        )

    def is_production_project(self, project_id: str) -> bool:
        """A project is production if listed explicitly or named ``*-prod``/``*-production``."""
        return project_id in self.production_gcp_project_ids or project_id.endswith(
            PRODUCTION_PROJECT_SUFFIXES
        )

    @property
    def event_projects(self) -> frozenset[str]:
        """How GSM events may name our project: its id, and its number when configured."""
        names = {self.gcp_project_id or "", self.gcp_project_number or ""}
        return frozenset(name for name in names if name)

    @property
    def effective_auth_jwks_url(self) -> str | None:
        """``OMNI_AUTH_JWKS_URL``, else the provider preset's, else None."""
        if self.auth_jwks_url is not None:
            return str(self.auth_jwks_url)
        if self.auth_provider is AuthProvider.GOOGLE:
            return GOOGLE_JWKS_URL
        return None

    @property
    def effective_auth_issuers(self) -> tuple[str, ...]:
        """The accepted ``iss`` values: ``OMNI_AUTH_ISSUER``, else the preset's; empty = any."""
        if self.auth_issuer is not None:
            return (self.auth_issuer,)
        if self.auth_provider is AuthProvider.GOOGLE:
            return GOOGLE_ISSUERS
        return ()

    @property
    def auth_mode(self) -> AuthMode | None:
        """JWKS wins when both are set (production refuses HS256 anyway)."""
        if self.effective_auth_jwks_url is not None:
            return AuthMode.JWKS
        if self.auth_hs256_secret is not None:
            return AuthMode.HS256
        return None

    @property
    def integrity_key_files(self) -> tuple[str, ...]:
        """``OMNI_INTEGRITY_KEY_FILE`` split on commas: the first signs, all verify."""
        raw = self.integrity_key_file or ""
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    @property
    def break_glass_enabled(self) -> bool:
        return self.breakglass_public_key is not None

    @property
    def gsm(self) -> GsmConfig:
        return GsmConfig(
            project_id=self.gcp_project_id or "",
            endpoint=self.gsm_endpoint,
            secret_prefix=self.gsm_secret_prefix,
            timeout_seconds=self.gsm_timeout_seconds,
        )


@dataclass(frozen=True, slots=True)
class GsmConfig:
    project_id: str
    endpoint: str | None = None
    secret_prefix: str = DEFAULT_GSM_SECRET_PREFIX
    timeout_seconds: float = DEFAULT_GSM_TIMEOUT_SECONDS


_SENSITIVE_VARIABLES = frozenset({"OMNI_AUTH_HS256_SECRET", "OMNI_PAGERDUTY_ROUTING_KEY"})


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus ``overrides``, keyed by variable name) into :class:`Settings`.

    Raises:
        ConfigurationRejected: a value is malformed or out of range; the message names the
            variable and the offending value (sensitive variables are named, never shown).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationRejected(_violations_from(exc)) from None


def _violations_from(exc: ValidationError) -> list[ConfigViolation]:
    violations = []
    for error in exc.errors(include_url=False):
        variable = str(error["loc"][0]) if error["loc"] else "?"
        hidden = variable in _SENSITIVE_VARIABLES
        shown = "(value hidden)" if hidden else repr(error.get("input"))
        violations.append(
            ConfigViolation(
                variables=(variable,),
                rule="value out of range",
                message=f"{variable}={shown} is invalid: {error['msg']}",
            )
        )
    return violations


def check_environment(settings: Settings) -> None:
    """The startup guard: refuse configurations that break environment isolation or hardening.

    Rules: see :func:`environment_violations`.

    Raises:
        ConfigurationRejected: listing every broken rule at once.
    """
    violations = environment_violations(settings)
    if violations:
        raise ConfigurationRejected(violations)


def load_checked_settings(**overrides: Any) -> Settings:
    """:func:`load_settings` then :func:`check_environment`, reporting every broken rule at once.

    A malformed value does not hide the other rules: the guard still runs, on the settings with
    each malformed variable at its default, and rules about those variables are left out (their
    value violation already names them).

    Raises:
        ConfigurationRejected: every malformed value and every broken rule, in one message.
    """
    try:
        return _checked(Settings(**overrides), [])
    except ValidationError as exc:
        value_violations = _violations_from(exc)
        defaults = {
            variable: _default_of(variable)
            for violation in value_violations
            for variable in violation.variables
        }
    try:
        fallback = Settings(**{**overrides, **defaults})
    except ValidationError:
        raise ConfigurationRejected(value_violations) from None
    return _checked(fallback, value_violations)


def _checked(settings: Settings, value_violations: list[ConfigViolation]) -> Settings:
    named = {variable for violation in value_violations for variable in violation.variables}
    violations = value_violations + [
        violation
        for violation in environment_violations(settings)
        if not named.intersection(violation.variables)
    ]
    if violations:
        raise ConfigurationRejected(violations)
    return settings


def _default_of(variable: str) -> Any:
    for field in Settings.model_fields.values():
        if field.alias == variable:
            return field.get_default(call_default_factory=True)
    return None


def _is_project_number(project: str) -> bool:
    # GSM resource names accept a project number wherever they accept an id.
    return project.isascii() and project.isdigit()


def _is_sqlite(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite"


def environment_violations(settings: Settings) -> list[ConfigViolation]:
    """Every startup rule ``settings`` breaks (empty when the configuration is acceptable).

    Rules (contract section 2 and issue 15), reported in the order of :data:`ENVIRONMENT_RULES`:
    ``OMNI_ENVIRONMENT`` and ``GCP_PROJECT_ID`` are set;
    a non-production environment never points at a production project, nor at a project
    *number* unless it is listed in ``OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS`` (a number can name
    any project, production included); ``production`` points at a production project (listed
    in ``OMNI_PRODUCTION_GCP_PROJECT_IDS``, numbers included, or named ``*-prod``/
    ``*-production``); ``production`` never uses ``OMNI_GSM_ENDPOINT``,
    ``OMNI_AUTH_HS256_SECRET``, a plain ``http://`` JWKS, ApeX or PagerDuty URL, or SQLite, and
    always sets ``OMNI_AUTH_ISSUER`` and ``OMNI_INTEGRITY_KEY_FILE`` (its contents are checked at
    startup); an HS256 secret has at least 32 bytes (any environment);
    an auth mode is configured; the break-glass public key and private key file come together;
    the rotation warning window is shorter than the rotation period.
    """
    return [violation for rule in ENVIRONMENT_RULES for violation in rule(settings)]


def _refusal(rule: str, message: str, *variables: str) -> ConfigViolation:
    return ConfigViolation(variables=variables, rule=rule, message=message)


def _required_variables(settings: Settings) -> Iterator[ConfigViolation]:
    if settings.environment is None:
        yield _refusal(
            "required",
            "OMNI_ENVIRONMENT is not set (one of production, staging, development, test)",
            "OMNI_ENVIRONMENT",
        )
    if settings.gcp_project_id is None:
        yield _refusal("required", "GCP_PROJECT_ID is not set", "GCP_PROJECT_ID")


def _environment_isolation(settings: Settings) -> Iterator[ConfigViolation]:
    env, project = settings.environment, settings.gcp_project_id
    if env is None or project is None:
        return  # _required_variables names them
    production_project = settings.is_production_project(project)
    if env is not Environment.PRODUCTION and production_project:
        yield _refusal(
            "environment isolation",
            f"OMNI_ENVIRONMENT={env.value!r} must not use production project "
            f"GCP_PROJECT_ID={project!r}",
            "OMNI_ENVIRONMENT",
            "GCP_PROJECT_ID",
        )
    if (
        env is not Environment.PRODUCTION
        and not production_project
        and _is_project_number(project)
        and project not in settings.nonproduction_gcp_project_numbers
    ):
        yield _refusal(
            "environment isolation",
            f"OMNI_ENVIRONMENT={env.value!r} uses GCP_PROJECT_ID={project!r}, a project "
            f"number that could name a production project; list it in "
            f"OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS if it is not production",
            "OMNI_ENVIRONMENT",
            "GCP_PROJECT_ID",
            "OMNI_NONPRODUCTION_GCP_PROJECT_NUMBERS",
        )
    if env is Environment.PRODUCTION and not production_project:
        yield _refusal(
            "environment isolation",
            f"OMNI_ENVIRONMENT='production' must use a production project, but "
            f"GCP_PROJECT_ID={project!r} is neither listed in OMNI_PRODUCTION_GCP_PROJECT_IDS "
            f"nor named *-prod/*-production",
            "OMNI_ENVIRONMENT",
            "GCP_PROJECT_ID",
            "OMNI_PRODUCTION_GCP_PROJECT_IDS",
        )


def _production_hardening(settings: Settings) -> Iterator[ConfigViolation]:
    if settings.environment is not Environment.PRODUCTION:
        return

    def refuse(variable: str, message: str) -> ConfigViolation:
        return _refusal("production hardening", message, "OMNI_ENVIRONMENT", variable)

    if settings.gsm_endpoint is not None:
        yield refuse(
            "OMNI_GSM_ENDPOINT",
            f"OMNI_ENVIRONMENT='production' must not set "
            f"OMNI_GSM_ENDPOINT={settings.gsm_endpoint!r} (insecure emulator channel)",
        )
    if settings.auth_hs256_secret is not None:
        yield refuse(
            "OMNI_AUTH_HS256_SECRET",
            "OMNI_ENVIRONMENT='production' must not set OMNI_AUTH_HS256_SECRET "
            "(shared-secret tokens); use OMNI_AUTH_JWKS_URL",
        )
    for variable, url in (
        ("OMNI_AUTH_JWKS_URL", settings.auth_jwks_url),
        ("OMNI_APEX_BASE_URL", settings.apex_base_url),
        ("OMNI_PAGERDUTY_EVENTS_URL", settings.pagerduty_events_url),
    ):
        if url is not None and url.scheme != "https":
            yield refuse(
                variable,
                f"OMNI_ENVIRONMENT='production' must not use {variable}={str(url)!r}: "
                "only https:// is accepted",
            )
    if settings.auth_issuer is None:
        yield refuse(
            "OMNI_AUTH_ISSUER",
            "OMNI_ENVIRONMENT='production' requires OMNI_AUTH_ISSUER (the token issuer to enforce)",
        )
    if _is_sqlite(settings.database_url):
        yield refuse(
            "OMNI_DATABASE_URL",
            f"OMNI_ENVIRONMENT='production' must not use the embedded SQLite database "
            f"OMNI_DATABASE_URL={settings.database_url!r}; use PostgreSQL "
            "(postgresql+psycopg://...)",
        )
    if not settings.integrity_key_files:
        yield refuse(
            "OMNI_INTEGRITY_KEY_FILE",
            "OMNI_ENVIRONMENT='production' requires OMNI_INTEGRITY_KEY_FILE (a file holding "
            "at least 32 random bytes, base64) so that database rows cannot be forged",
        )


def _hs256_secret_strength(settings: Settings) -> Iterator[ConfigViolation]:
    hs256 = settings.auth_hs256_secret
    if hs256 is not None and len(hs256.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES:
        yield _refusal(
            "weak secret",
            f"OMNI_AUTH_HS256_SECRET (value hidden) is shorter than {MIN_HS256_SECRET_BYTES} "
            "bytes; use a random secret of at least 32 bytes",
            "OMNI_AUTH_HS256_SECRET",
        )


def _auth_mode_configured(settings: Settings) -> Iterator[ConfigViolation]:
    if settings.auth_mode is None:
        yield _refusal(
            "authentication required",
            "no auth mode is configured: set OMNI_AUTH_JWKS_URL (with OMNI_AUTH_ISSUER) or, "
            "outside production, OMNI_AUTH_HS256_SECRET",
            "OMNI_AUTH_JWKS_URL",
            "OMNI_AUTH_HS256_SECRET",
        )


def _break_glass_key_pair(settings: Settings) -> Iterator[ConfigViolation]:
    if (settings.breakglass_public_key is None) != (settings.breakglass_private_key_file is None):
        yield _refusal(
            "break-glass key pair",
            "OMNI_BREAKGLASS_PUBLIC_KEY and OMNI_BREAKGLASS_PRIVATE_KEY_FILE must be set together "
            f"(public key {'set' if settings.breakglass_public_key else 'unset'}, private key "
            f"file {settings.breakglass_private_key_file!r})",
            "OMNI_BREAKGLASS_PUBLIC_KEY",
            "OMNI_BREAKGLASS_PRIVATE_KEY_FILE",
        )


def _rotation_window(settings: Settings) -> Iterator[ConfigViolation]:
    if settings.rotation_warning_days >= settings.rotation_period_days:
        yield _refusal(
            "value out of range",
            f"OMNI_ROTATION_WARNING_DAYS={settings.rotation_warning_days} must be less than "
            f"OMNI_ROTATION_PERIOD_DAYS={settings.rotation_period_days}",
            "OMNI_ROTATION_WARNING_DAYS",
            "OMNI_ROTATION_PERIOD_DAYS",
        )


ENVIRONMENT_RULES: tuple[Callable[[Settings], Iterator[ConfigViolation]], ...] = (
    _required_variables,
    _environment_isolation,
    _production_hardening,
    _hs256_secret_strength,
    _auth_mode_configured,
    _break_glass_key_pair,
    _rotation_window,
)
"""The guard's rule groups, in the order their violations are reported."""
