"""omni-secrets: serves ApeX Omni exchange credentials from Google Secret Manager.

Nothing is created at import time: entry points build :class:`omni_secrets.config.Settings`
and pass it to :func:`omni_secrets.api.app.create_app` or the CLI commands.

Library use (``docs/library.md``): the names in ``__all__`` are the supported surface — build and
run the services (:func:`run_services`, or :func:`build_services` + :func:`start_services`),
read credentials from :class:`OmniSecretCache`, and handle the errors listed. They are loaded on
first use, so ``import omni_secrets`` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni_secrets.bootstrap import (
        Overrides,
        Services,
        build_services,
        run_services,
        start_services,
    )
    from omni_secrets.config import Settings, load_settings
    from omni_secrets.domain.cache import OmniSecretCache
    from omni_secrets.domain.catalog import SecretType
    from omni_secrets.domain.errors import (
        ConfigurationRejected,
        Conflict,
        InvalidInput,
        NotFound,
        OmniSecretsError,
        SecretStoreError,
        SecretsUnavailable,
        Unavailable,
        UnknownSecretType,
    )
    from omni_secrets.domain.values import SecretValue

__version__ = "0.1.0"

# name -> the module that defines it.
_EXPORTS = {
    "Overrides": "omni_secrets.bootstrap",
    "Services": "omni_secrets.bootstrap",
    "build_services": "omni_secrets.bootstrap",
    "run_services": "omni_secrets.bootstrap",
    "start_services": "omni_secrets.bootstrap",
    "Settings": "omni_secrets.config",
    "load_settings": "omni_secrets.config",
    "OmniSecretCache": "omni_secrets.domain.cache",
    "SecretType": "omni_secrets.domain.catalog",
    "SecretValue": "omni_secrets.domain.values",
    "OmniSecretsError": "omni_secrets.domain.errors",
    "NotFound": "omni_secrets.domain.errors",
    "InvalidInput": "omni_secrets.domain.errors",
    "Conflict": "omni_secrets.domain.errors",
    "Unavailable": "omni_secrets.domain.errors",
    "ConfigurationRejected": "omni_secrets.domain.errors",
    "SecretsUnavailable": "omni_secrets.domain.errors",
    "SecretStoreError": "omni_secrets.domain.errors",
    "UnknownSecretType": "omni_secrets.domain.errors",
}

__all__ = [
    "ConfigurationRejected",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "OmniSecretCache",
    "OmniSecretsError",
    "Overrides",
    "SecretStoreError",
    "SecretType",
    "SecretValue",
    "SecretsUnavailable",
    "Services",
    "Settings",
    "Unavailable",
    "UnknownSecretType",
    "__version__",
    "build_services",
    "load_settings",
    "run_services",
    "start_services",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
