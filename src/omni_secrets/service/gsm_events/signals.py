"""``SecretSignals``: what GSM events established about each type, applied on this replica.

Two kinds of signal, both kept in the database (``omni_secret_signals``) so every replica
applies them, and in memory here so the hot path and status never touch the database:

- **Revocation** of the served version (disabled, destroyed, scheduled for destruction) or of
  the whole secret (deleted): the type stops being served at once, whatever the TTL or the
  stale window (:meth:`OmniSecretCache.revoke`); a break-glass override still wins. While it
  holds, every fetch of that version first asks GSM for the version's state
  (:meth:`SignalTable.check`): still revoked → fail closed with the revocation's code; ENABLED
  again → the revocation is cleared everywhere and the value is served again; GSM unreachable →
  fail closed, saying it could not confirm. GSM stays the source of truth: a stale or forged
  signal lasts one fetch.
- **Candidate**: a version newer than the active one exists in GSM (status
  ``rotation.candidateVersion``, gauge ``omni_secret_rotation_candidate_available``). Nothing is
  served from it until a rotation preview is committed.

Two objects share the signals, so nothing has to be bound late: the pinned fetch asks the
:class:`SignalTable` (built first, it needs no pins) before it reads a version, and
:class:`SecretSignals` (built after the pins, which say what is served) applies signals to the
cache and answers status. What follows (log lines, the revocation alert's resolution, the
candidate gauge, telling the other replicas) is emitted as events (``events.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.cluster import ANY_VERSION, RevocationCode, SecretSignal, SignalStore
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import SecretStore, VersionState
from omni_secrets.service.gsm_events.events import (
    CandidatesInstalled,
    RevocationCleared,
    RevocationClearNotStored,
    ServedVersionRevoked,
    SignalStored,
)
from omni_secrets.service.messagebus import EventBus


def _is_newer(candidate: str | None, active: str | None) -> bool:
    if candidate is None or not candidate.isdigit():
        return False
    return active is None or not active.isdigit() or int(candidate) > int(active)


class SignalTable:
    """The signals held on this replica, and the check the pinned fetch makes before a read.

    Args:
        store: GSM, to confirm a revocation's version state.
        signal_store: the ``omni_secret_signals`` rows (a cleared revocation is stored).
        bus: reports cleared revocations and stored rows (``events.py``).
    """

    def __init__(self, *, store: SecretStore, signal_store: SignalStore, bus: EventBus) -> None:
        self._store = store
        self._signal_store = signal_store
        self._bus = bus
        self._signals: dict[SecretType, SecretSignal] = {}

    def get(self, secret_type: SecretType) -> SecretSignal:
        """The type's signal (an empty one when GSM events established nothing)."""
        return self._signals.get(secret_type) or SecretSignal(secret_type)

    def held(self, secret_type: SecretType) -> SecretSignal | None:
        """The type's signal as held, None when there is none."""
        return self._signals.get(secret_type)

    def hold(self, signal: SecretSignal) -> None:
        """Keep ``signal`` as its type's signal (applying it is :class:`SecretSignals`' job)."""
        self._signals[signal.secret_type] = signal

    async def check(self, secret_type: SecretType, secret_id: str, version: str | None) -> None:
        """Before a fetch of ``version``: refuse it while GSM confirms it is revoked.

        Clears the revocation (everywhere) when GSM says the version is ENABLED again (or the
        deleted secret exists again).

        Raises:
            SecretStoreError: permanent, with the revocation's code, while it holds or cannot
                be confirmed.
        """
        signal = self._signals.get(secret_type)
        if signal is None or signal.revoked_code is None:
            return
        if signal.revoked_version != ANY_VERSION and signal.revoked_version != version:
            return
        code = signal.revoked_code
        try:
            if signal.revoked_version == ANY_VERSION:
                await self._store.list_versions(secret_id)
                enabled = True
            else:
                info = await self._store.get_version(secret_id, signal.revoked_version or "")
                enabled = info.state is VersionState.ENABLED
                state = info.state.value
        except SecretStoreError as exc:
            if exc.transient:
                raise SecretStoreError(
                    f"{describe_revocation(code, secret_id, signal.revoked_version)}; "
                    f"not confirmed: GSM unreachable ({exc.reason}), failing closed",
                    reason=code,
                    transient=False,
                    secret_id=secret_id,
                ) from None
            raise SecretStoreError(
                describe_revocation(code, secret_id, signal.revoked_version),
                reason=code,
                transient=False,
                secret_id=secret_id,
            ) from None
        if not enabled:
            raise SecretStoreError(
                f"{secret_id} version {signal.revoked_version} is {state} in GSM",
                reason=code,
                transient=False,
                secret_id=secret_id,
            )
        await self._clear(signal)

    async def _clear(self, signal: SecretSignal) -> None:
        cleared = replace(
            signal,
            revoked_version=None,
            revoked_code=None,
            revoked_message=None,
            revoked_at=None,
            confirmed=True,
        )
        self._signals[signal.secret_type] = cleared
        await self._bus.emit(RevocationCleared(signal.secret_type))
        try:
            await self._signal_store.put(cleared)
        except Exception as exc:  # the next reconcile would re-apply it; GSM is checked again
            await self._bus.emit(RevocationClearNotStored(type(exc).__name__))
            return
        await self._bus.emit(SignalStored(signal.secret_type))


class SecretSignals:
    """Signals of every type on this replica (see the module docstring).

    Args:
        catalog: the secret types.
        table: the signals held on this replica (the pinned fetch checks them).
        signal_store: the ``omni_secret_signals`` rows.
        active_version: the version this replica serves for a type (the pin), or None.
        bus: reports revoked entries, candidates and stored rows (``events.py``).
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        table: SignalTable,
        signal_store: SignalStore,
        active_version: Callable[[SecretType], str | None],
        bus: EventBus,
    ) -> None:
        self._catalog = catalog
        self._table = table
        self._signal_store = signal_store
        self._active_version = active_version
        self._bus = bus

    def get(self, secret_type: SecretType) -> SecretSignal:
        """The type's signal (an empty one when GSM events established nothing)."""
        return self._table.get(secret_type)

    def candidate_version(self, secret_type: SecretType) -> str | None:
        """A GSM version newer than the active one, announced by ``SECRET_VERSION_ADD``."""
        signal = self._table.held(secret_type)
        candidate = signal.candidate_version if signal is not None else None
        if candidate is None:  # status asks for every type on every call: skip the rest
            return None
        return candidate if _is_newer(candidate, self._active_version(secret_type)) else None

    def revocation_applies(self, signal: SecretSignal) -> bool:
        """Whether ``signal`` revokes what this replica serves (or would serve) for its type."""
        if signal.revoked_code is None:
            return False
        if signal.revoked_version == ANY_VERSION:
            return True
        return signal.revoked_version == self._active_version(signal.secret_type)

    async def reload(self, cache: OmniSecretCache) -> None:
        """Read every signal from the database and apply it (reconcile; a notification).

        Raises:
            DatabaseUnavailable: the database cannot be reached (nothing changes).
        """
        await self.install(await self._signal_store.all(), cache)

    async def install(self, signals: Iterable[SecretSignal], cache: OmniSecretCache) -> None:
        """Apply ``signals``: revocations drop the served entry; candidates are reported."""
        fresh = {s.secret_type: s for s in signals}
        for secret_type, signal in fresh.items():
            before = self._table.held(secret_type)
            self._table.hold(signal)
            if self.revocation_applies(signal):
                served = cache.describe(secret_type).gsm_version
                if before != signal or served is not None:
                    await self._revoke_in(cache, signal)
            elif before is not None and self.revocation_applies(before):
                # Cleared elsewhere (GSM said ENABLED again): fetch now, not at the next retry.
                cache.request_refresh([secret_type])
        await self._bus.emit(
            CandidatesInstalled(
                tuple((t, self.candidate_version(t) is not None) for t in self._catalog.types)
            )
        )

    async def put(self, signal: SecretSignal, cache: OmniSecretCache) -> None:
        """Store ``signal``, apply it here and tell the other replicas.

        Raises:
            DatabaseUnavailable: it could not be stored (it is applied here all the same).
        """
        await self.install([signal], cache)
        await self._signal_store.put(signal)
        await self._bus.emit(SignalStored(signal.secret_type))

    async def _revoke_in(self, cache: OmniSecretCache, signal: SecretSignal) -> None:
        version = None if signal.revoked_version == ANY_VERSION else signal.revoked_version
        dropped = cache.revoke(
            signal.secret_type,
            version,
            signal.revoked_code or RevocationCode.VERSION_DISABLED.value,
            signal.revoked_message or "revoked in GSM",
        )
        if dropped:
            await self._bus.emit(
                ServedVersionRevoked(
                    signal.secret_type, signal.revoked_version, signal.revoked_code
                )
            )


def describe_revocation(code: str, secret_id: str, version: str | None) -> str:
    """The sentence status shows for a revocation (no value, ever)."""
    if code == RevocationCode.SECRET_DELETED:
        return f"{secret_id} was deleted in GSM"
    return f"{secret_id} version {version} was disabled or destroyed in GSM"
