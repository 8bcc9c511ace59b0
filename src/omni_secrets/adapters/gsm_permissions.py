"""The IAM permissions :mod:`omni_secrets.adapters.gsm` needs, per secret, and nothing more.

One source of truth: ``deploy/gcp/setup.sh`` grants exactly these on each catalog secret (a test
runs it with ``--dry-run`` and compares), ``docs/deploy-gke.md`` explains them, and a test drives
every method of the adapter against the emulator and checks each RPC it made is listed here.

Why not ``roles/secretmanager.secretAccessor``: it holds only ``versions.access``, while
``db seed``, the first pin and every rotation preview call ListSecretVersions. With that role
alone seed pins nothing, the first fetch is PERMISSION_DENIED (permanent), every type fails
closed and ``/readyz`` never turns green.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: gRPC method of ``google.cloud.secretmanager.v1.SecretManagerService`` -> the IAM permission
#: it checks on the secret resource.
PERMISSION_BY_RPC: Mapping[str, str] = MappingProxyType(
    {
        "AccessSecretVersion": "secretmanager.versions.access",
        # Confirms a GSM event's revocation before failing closed (contract section 12).
        "GetSecretVersion": "secretmanager.versions.get",
        "ListSecretVersions": "secretmanager.versions.list",
        # Reads the version aliases (which version is served) and the etag (contract section 15).
        "GetSecret": "secretmanager.secrets.get",
        # Moves the aliases (compare-and-set on the etag), annotations and GSM's rotation
        # reminder. It could also change labels, topics or the destroy TTL: the service never
        # sends those mask paths (adapters/gsm.py writes one path per call).
        "UpdateSecret": "secretmanager.secrets.update",
    }
)

#: What the service account needs on each catalog secret, sorted (the custom role's content).
SECRET_PERMISSIONS: tuple[str, ...] = tuple(sorted(set(PERMISSION_BY_RPC.values())))

#: What the service account needs on the audit-anchor secret (``<prefix>audit-anchor``, contract
#: section 17) and nowhere else: GetSecret (etag, the anchored head) and UpdateSecret of its
#: ``annotations``. ``deploy/gcp/setup.sh`` binds exactly these there (a custom role of its own).
ANCHOR_PERMISSIONS: tuple[str, ...] = (
    PERMISSION_BY_RPC["GetSecret"],
    PERMISSION_BY_RPC["UpdateSecret"],
)
