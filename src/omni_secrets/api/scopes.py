"""The OAuth scopes the API grants, in a module of their own.

Kept apart from ``api.auth`` (which imports PyJWT and cryptography) so that the CLI can name a
scope without paying for the token libraries at start-up.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    READ = "omni-secrets:read"
    ROTATE = "omni-secrets:rotate"
    BREAK_GLASS = "omni-secrets:break-glass"
    REFRESH = "omni-secrets:refresh"
    APEX_READ = "apex-omni:read"
