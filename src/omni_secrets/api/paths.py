"""Every route path of the HTTP API, declared once for the routes and for the CLI that calls them.

The route modules declare their routes with these constants and the CLI's
:class:`~omni_secrets.cli.client.ApiClient` requests them, so a path the CLI calls is by
construction one the API serves. Standard library only: the CLI imports this at start-up, and
``omni-secrets --help`` must not load FastAPI (``tests/unit/test_cli_lazy_imports.py``); the
``omni_secrets.api`` package itself loads nothing heavy on import.

Templates name their parameters in camelCase, like every other name on the wire; :func:`fill`
puts a value in, percent-quoted.
"""

from __future__ import annotations

from urllib.parse import quote

# Unauthenticated probes.
HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"

# The ApeX Omni consumer route (scope apex-omni:read).
ACCOUNT_PATH = "/apex-omni/account"

# Operator routes of the secrets themselves.
SECRETS_PREFIX = "/ops/apex-omni/secrets"
STATUS_PATH = f"{SECRETS_PREFIX}/status"
SELF_TEST_PATH = f"{SECRETS_PREFIX}/self-test"

ROTATION_PREVIEW_PATH = f"{SECRETS_PREFIX}/rotation-preview"
ROTATION_PATH = f"{SECRETS_PREFIX}/rotations/{{previewId}}"
ROTATION_COMMIT_PATH = f"{ROTATION_PATH}/commit"
ROTATION_ROLLBACK_PATH = f"{SECRETS_PREFIX}/rotations/rollback"

BREAK_GLASS_PATH = f"{SECRETS_PREFIX}/break-glass"
BREAK_GLASS_PUBLIC_KEY_PATH = f"{BREAK_GLASS_PATH}/public-key"
BREAK_GLASS_OVERRIDE_PATH = f"{BREAK_GLASS_PATH}/{{overrideId}}"

# Internal, service-to-service.
CACHE_REFRESH_PATH = "/internal/apex-omni/secrets/cache/refresh"
CACHE_REFRESH_REQUEST_PATH = f"{CACHE_REFRESH_PATH}/{{requestId}}"


def fill(template: str, **parameters: str) -> str:
    """``template`` with each ``{name}`` replaced by its value, quoted so a ``/`` stays in it."""
    return template.format_map({name: quote(value, safe="") for name, value in parameters.items()})
