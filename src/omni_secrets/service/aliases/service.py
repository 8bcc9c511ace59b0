"""``CurrentAliasService``: a catalog secret with no ``current`` alias gets one naming the served
(pinned) version (contract section 15).

It decides from what the last refresh read (:meth:`PinnedVersions.aliases`: aliases, etag, the
ENABLED versions), so it costs no extra read; the move is a compare-and-set on that read's etag.
A refused or failed move is never fatal: it is emitted (logged by the reactions) and tried
again once a refresh has read the secret anew (a new etag), never twice on the same read.
"""

from __future__ import annotations

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import CURRENT_ALIAS, SecretStore
from omni_secrets.service.aliases.events import CurrentAliasNamed, CurrentAliasNotNamed
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.serving.pinned_versions import PinnedVersions


class CurrentAliasService:
    """Names ``current`` where it is missing (see the module docstring).

    Args:
        catalog: the secret types.
        store: GSM (``update_aliases``).
        pins: the pins and the aliases each refresh read.
        clock: stamps the events.
        bus: runs the reactions (log lines, the ``current_alias_named`` audit row).
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        store: SecretStore,
        pins: PinnedVersions,
        clock: Clock,
        bus: EventBus,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._pins = pins
        self._clock = clock
        self._bus = bus
        self._refused: dict[SecretType, str] = {}  # the etag a move was refused on

    async def name_missing(self) -> None:
        """Name ``current`` on every catalog secret that lacks it and serves a pinned version.

        Skips a type whose aliases were never read, whose pin is missing or fails its
        integrity check, or whose pinned version is not ENABLED (that is not a version to name
        as served). Never raises for a store failure.
        """
        for entry in self._catalog:
            secret_type = entry.secret_type
            view = self._pins.aliases(secret_type)
            meta = self._pins.get(secret_type)
            if view is None or view.current is not None or meta is None:
                continue
            pinned = meta.active_version
            if (
                pinned is None
                or not meta.pin_integrity.servable
                or pinned not in view.enabled
                or self._refused.get(secret_type) == view.etag
            ):
                continue
            aliases = {**view.aliases, CURRENT_ALIAS: pinned}
            try:
                info = await self._store.update_aliases(view.secret_id, aliases, view.etag)
            except SecretStoreError as exc:
                self._refused[secret_type] = view.etag
                await self._bus.emit(
                    CurrentAliasNotNamed(
                        secret_type, view.secret_id, pinned, exc.reason, self._clock.now()
                    )
                )
                continue
            self._refused.pop(secret_type, None)
            self._pins.record_aliases(secret_type, info)
            await self._bus.emit(
                CurrentAliasNamed(secret_type, view.secret_id, pinned, self._clock.now())
            )
