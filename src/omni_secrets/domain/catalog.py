"""The catalog: which ApeX Omni credentials exist, where they live in GSM, how they rotate.

ApeX issues key, secret and passphrase together, so one rotation covers the whole
``api_credentials`` group; the zk seeds and the L2 key derived from them form ``zk_keys``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from omni_secrets.domain.errors import UnknownSecretType

DEFAULT_GSM_SECRET_PREFIX = "apex-omni-"


class SecretType(StrEnum):
    API_KEY = "api_key"
    API_SECRET = "api_secret"
    API_PASSPHRASE = "api_passphrase"
    ZK_SEEDS = "zk_seeds"
    ZK_L2_KEY = "zk_l2_key"


class RotationGroup(StrEnum):
    API_CREDENTIALS = "api_credentials"
    ZK_KEYS = "zk_keys"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One secret type of the catalog.

    Attributes:
        secret_type: the type's stable name.
        gsm_secret_id: the GSM secret id (prefix included).
        required: whether Omni consumer calls need it (FR-012 degrades without it).
        rotation_group: the group rotated together.
    """

    secret_type: SecretType
    gsm_secret_id: str
    required: bool
    rotation_group: RotationGroup


_ENTRIES: tuple[tuple[SecretType, bool, RotationGroup], ...] = (
    (SecretType.API_KEY, True, RotationGroup.API_CREDENTIALS),
    (SecretType.API_SECRET, True, RotationGroup.API_CREDENTIALS),
    (SecretType.API_PASSPHRASE, True, RotationGroup.API_CREDENTIALS),
    (SecretType.ZK_SEEDS, False, RotationGroup.ZK_KEYS),
    (SecretType.ZK_L2_KEY, False, RotationGroup.ZK_KEYS),
)


class Catalog:
    """The catalog for one GSM secret-id prefix, in the contract's order.

    Args:
        prefix: prefix of the GSM secret ids (``OMNI_GSM_SECRET_PREFIX``).
    """

    def __init__(self, prefix: str = DEFAULT_GSM_SECRET_PREFIX) -> None:
        self.prefix = prefix
        self.entries: tuple[CatalogEntry, ...] = tuple(
            CatalogEntry(
                secret_type=secret_type,
                gsm_secret_id=prefix + secret_type.value.replace("_", "-"),
                required=required,
                rotation_group=group,
            )
            for secret_type, required, group in _ENTRIES
        )
        self._by_type = {entry.secret_type: entry for entry in self.entries}

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Catalog(prefix={self.prefix!r})"

    @property
    def types(self) -> tuple[SecretType, ...]:
        return tuple(entry.secret_type for entry in self.entries)

    @property
    def required_types(self) -> tuple[SecretType, ...]:
        return tuple(entry.secret_type for entry in self.entries if entry.required)

    def entry(self, secret_type: SecretType | str) -> CatalogEntry:
        """The entry of ``secret_type``.

        Raises:
            UnknownSecretType: the name is not in the catalog.
        """
        return self._by_type[parse_secret_type(secret_type)]

    def group_members(self, group: RotationGroup) -> tuple[CatalogEntry, ...]:
        """The entries rotated together with ``group``, in catalog order."""
        return tuple(entry for entry in self.entries if entry.rotation_group is group)


def parse_secret_type(value: SecretType | str) -> SecretType:
    """Parse a secret type name.

    Raises:
        UnknownSecretType: ``value`` is not one of the catalog's types.
    """
    try:
        return SecretType(value)
    except ValueError:
        raise UnknownSecretType(str(value)) from None
