"""The IAM permission list (adapters/gsm_permissions.py) covers every RPC the GSM adapter makes.

Drives each method of the SecretStore port against the emulator over real gRPC and collects the
RPC names the adapter reported: deploy/gcp/setup.sh grants exactly the permissions of the list,
so an RPC missing from it would be PERMISSION_DENIED in production, and one listed but never made
is a permission granted for nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from omni_secrets.adapters.gsm import GsmCallRecord, GsmSecretManagerClient
from omni_secrets.adapters.gsm_permissions import PERMISSION_BY_RPC, SECRET_PERMISSIONS
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.emulator import GsmEmulator

from .conftest import GSM_PROJECT

KEY = "apex-omni-api-key"

#: One call per port method (``get_version`` is on the way with the Pub/Sub work).
CALLS: dict[str, Callable[[Any], Awaitable[object]]] = {
    "access": lambda store: store.access(KEY, "1"),
    "list_versions": lambda store: store.list_versions(KEY),
    "get_version": lambda store: store.get_version(KEY, "1"),
    "get_secret": lambda store: store.get_secret(KEY),
    "update_aliases": lambda store: _with_etag(store, store.update_aliases, {"current": "1"}),
    "update_annotations": lambda store: _with_etag(store, store.update_annotations, {"a": "b"}),
    "update_rotation": lambda store: _with_etag(store, store.update_rotation, None, None),
}


async def _with_etag(store: Any, update: Callable[..., Awaitable[object]], *args: Any) -> object:
    info = await store.get_secret(KEY)
    return await update(KEY, *args, info.etag)


async def test_every_rpc_the_adapter_makes_is_listed(
    gsm_emulator: GsmEmulator,
    gsm_store: GsmSecretManagerClient,
    gsm_calls: list[GsmCallRecord],
) -> None:
    gsm_emulator.seed(GSM_PROJECT, {KEY: ["fake-key-v1", "fake-key-v2"]})
    port_methods = {
        name
        for name in vars(SecretStore)
        if not name.startswith("_") and callable(getattr(SecretStore, name))
    }
    assert port_methods >= {"access", "list_versions"}
    assert port_methods <= CALLS.keys(), f"add a call for {port_methods - CALLS.keys()} above"

    await gsm_store.access(KEY)
    for method in sorted(port_methods):
        await CALLS[method](gsm_store)

    made = {record.method for record in gsm_calls}
    assert all(record.code == "OK" for record in gsm_calls)
    missing = made - PERMISSION_BY_RPC.keys()
    assert not missing, (
        f"the adapter calls {sorted(missing)}: add each RPC's IAM permission to "
        "adapters/gsm_permissions.py, deploy/gcp/setup.sh and docs/deploy-gke.md's table"
    )
    unused = PERMISSION_BY_RPC.keys() - made
    assert not unused, f"{sorted(unused)} listed (and granted) but never called"


def test_the_list_includes_what_secret_accessor_lacks() -> None:
    """versions.list is the reason roles/secretmanager.secretAccessor is not enough."""
    assert "secretmanager.versions.access" in SECRET_PERMISSIONS
    assert "secretmanager.versions.list" in SECRET_PERMISSIONS
