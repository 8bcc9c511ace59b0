"""The IAM permission list (adapters/gsm_permissions.py) covers every RPC the GSM adapter makes.

Drives each method of the SecretStore port against the emulator over real gRPC and collects the
RPC names the adapter reported: deploy/gcp/setup.sh grants exactly the permissions of the list,
so an RPC missing from it would be PERMISSION_DENIED in production.
"""

from __future__ import annotations

from omni_secrets.adapters.gsm import GsmCallRecord, GsmSecretManagerClient
from omni_secrets.adapters.gsm_permissions import PERMISSION_BY_RPC, SECRET_PERMISSIONS
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.emulator import GsmEmulator

from .conftest import GSM_PROJECT

KEY = "apex-omni-api-key"


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
    assert port_methods == {"access", "list_versions"}, "a new port method needs a call below"

    await gsm_store.access(KEY)
    await gsm_store.access(KEY, "1")
    await gsm_store.list_versions(KEY)

    made = {record.method for record in gsm_calls}
    assert made == set(PERMISSION_BY_RPC)
    assert all(record.code == "OK" for record in gsm_calls)


def test_the_list_is_what_secret_accessor_lacks() -> None:
    """versions.list is the reason roles/secretmanager.secretAccessor is not enough."""
    assert SECRET_PERMISSIONS == ("secretmanager.versions.access", "secretmanager.versions.list")
