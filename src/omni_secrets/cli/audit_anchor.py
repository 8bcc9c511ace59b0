"""``audit verify``'s anchor: where it comes from and what it says about the chain.

The anchor (contract section 17, :mod:`omni_secrets.domain.audit_anchor`) is read from the
annotation of GSM's ``<prefix>audit-anchor`` (the service writes it), or from a saved document
(``--anchor FILE``). The chain must contain the anchored id with the anchored hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omni_secrets.cli._common import EXIT_USAGE, fail

if TYPE_CHECKING:
    from omni_secrets.config import Settings
    from omni_secrets.domain.audit_anchor import AuditAnchor
    from omni_secrets.domain.audit_chain import ChainVerdict
    from omni_secrets.domain.integrity import IntegrityKeyring


@dataclass(frozen=True, slots=True)
class FoundAnchor:
    """An anchor and where it was read (``gsm:projects/P/secrets/S`` or ``file:PATH``), or why
    there is none (``anchor`` None, ``detail`` set)."""

    source: str | None
    anchor: AuditAnchor | None
    detail: str | None = None
    invalid: bool = False


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """The anchor's verdict: ``matched``, ``absent``, ``invalid``, ``unsigned`` or
    ``not_in_chain``."""

    found: FoundAnchor
    status: str

    @property
    def failed(self) -> bool:
        return self.status not in ("matched", "absent")

    def message(self, verdict: ChainVerdict) -> str:
        anchor, source = self.found.anchor, self.found.source
        if self.status == "absent":
            return (
                f"no anchor ({self.found.detail}): a truncated or deleted chain cannot be "
                "detected; see docs/runbooks/integrity.md"
            )
        if self.status == "invalid":
            return f"the anchor {source} is unusable: {self.found.detail}"
        assert anchor is not None
        named = f"the anchor {source} (id {anchor.id}, written {anchor.at})"
        if self.status == "unsigned":
            return f"{named} is not signed by a configured integrity key"
        if self.status == "not_in_chain":
            return (
                f"audit chain does not contain {named} with its hash: the chain was truncated, "
                f"deleted or replaced ({verdict.checked} events verified, the last id "
                f"{verdict.checked})"
            )
        return f"anchored at id {anchor.id} ({source}, written {anchor.at})"

    def document(self) -> dict[str, Any]:
        anchor = self.found.anchor
        return {
            "source": self.found.source,
            "status": self.status,
            "id": anchor.id if anchor else None,
            "hash": anchor.hash if anchor else None,
            "at": anchor.at if anchor else None,
            "keyId": anchor.key_id if anchor else None,
            "detail": self.found.detail,
        }


def load_anchor(settings: Settings, anchor_file: str | None) -> FoundAnchor:
    """The anchor of ``--anchor FILE`` (exit 2 when unreadable), else GSM's, else why none."""
    import asyncio

    from omni_secrets.domain.audit_anchor import AnchorInvalid, parse_anchor

    if anchor_file is not None:
        try:
            text = Path(anchor_file).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            fail(f"--anchor {anchor_file}: cannot read it ({type(exc).__name__})", code=EXIT_USAGE)
        try:
            return FoundAnchor(f"file:{anchor_file}", parse_anchor(text.strip()))
        except AnchorInvalid as exc:
            fail(f"--anchor {anchor_file}: {exc}", code=EXIT_USAGE)
    return asyncio.run(_from_gsm(settings))


async def _from_gsm(settings: Settings) -> FoundAnchor:
    from omni_secrets.bootstrap.gsm import build_secret_store
    from omni_secrets.domain.audit_anchor import (
        ANNOTATION,
        AnchorInvalid,
        anchor_secret_id,
        parse_anchor,
    )
    from omni_secrets.domain.errors import SecretStoreError

    if not settings.gcp_project_id:
        return FoundAnchor(None, None, "GCP_PROJECT_ID is not set, GSM was not asked")
    secret_id = anchor_secret_id(settings.gsm_secret_prefix)
    source = f"gsm:projects/{settings.gcp_project_id}/secrets/{secret_id}"
    store = build_secret_store(settings)
    try:
        info = await store.get_secret(secret_id)
    except SecretStoreError as exc:
        return FoundAnchor(source, None, f"{source}: {exc.reason}")
    finally:
        await store.aclose()  # type: ignore[attr-defined]
    text = info.annotations.get(ANNOTATION)
    if text is None:
        return FoundAnchor(source, None, f"{source} has no {ANNOTATION} annotation yet")
    try:
        return FoundAnchor(source, parse_anchor(text))
    except AnchorInvalid as exc:
        return FoundAnchor(source, None, str(exc), invalid=True)


def check_anchor(
    found: FoundAnchor,
    keyring: IntegrityKeyring | None,
    anchored_hash: str | None,
) -> AnchorCheck:
    """Whether the verified chain contains the anchored id with the anchored hash."""
    from omni_secrets.domain.integrity import IntegrityStatus

    anchor = found.anchor
    if anchor is None:
        return AnchorCheck(found, "invalid" if found.invalid else "absent")
    if anchor.verify(keyring) not in (IntegrityStatus.VERIFIED, IntegrityStatus.UNCHECKED):
        return AnchorCheck(found, "unsigned")
    if anchored_hash is None or anchored_hash != anchor.hash:
        return AnchorCheck(found, "not_in_chain")
    return AnchorCheck(found, "matched")
