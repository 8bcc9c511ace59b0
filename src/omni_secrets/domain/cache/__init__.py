"""The in-process cache of ApeX Omni credentials (:class:`OmniSecretCache`) and its values.

The names other packages use are re-exported here; the modules inside are the cache's own.
"""

from omni_secrets.domain.cache.models import (
    CachedSecret,
    CacheEntryInfo,
    CacheSource,
    CacheState,
    FetchFailure,
    HydrationReport,
    Operation,
    OverrideInfo,
    RefreshOutcome,
)
from omni_secrets.domain.cache.secret_cache import Fetch, OmniSecretCache

__all__ = [
    "CacheEntryInfo",
    "CacheSource",
    "CacheState",
    "CachedSecret",
    "Fetch",
    "FetchFailure",
    "HydrationReport",
    "OmniSecretCache",
    "Operation",
    "OverrideInfo",
    "RefreshOutcome",
]
