"""Builds the ``current`` alias naming from explicit collaborators (after the pinned fetch)."""

from __future__ import annotations

from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.service.aliases.service import CurrentAliasService
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.serving.pinned_versions import PinnedVersions


def build_current_aliases(
    *, catalog: Catalog, store: SecretStore, pins: PinnedVersions, clock: Clock, bus: EventBus
) -> CurrentAliasService:
    """The service start-up and every reconcile ask to name missing ``current`` aliases."""
    return CurrentAliasService(catalog=catalog, store=store, pins=pins, clock=clock, bus=bus)
