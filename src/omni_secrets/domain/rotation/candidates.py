"""Candidate resolution: which GSM version a rotation preview proposes for each member."""

from __future__ import annotations

import re
from collections.abc import Sequence

from omni_secrets.domain.errors import CandidateVersionInvalid
from omni_secrets.domain.secret_store import LATEST, VersionInfo, VersionState, newest_enabled

_VERSION_NUMBER = re.compile(r"[1-9][0-9]{0,18}")


def resolve_candidate(
    requested: str, versions: Sequence[VersionInfo], *, secret_type: str | None = None
) -> VersionInfo:
    """The version a preview proposes to make active.

    ``latest`` means the newest ENABLED version. That differs on purpose from GSM's ``latest``
    (the newest version whatever its state), which may be disabled.

    Args:
        requested: ``latest`` or a version number as a string (``"4"``; no sign, no leading 0).
        versions: every version of the secret, any order.
        secret_type: named in error messages when given.

    Returns:
        The ENABLED version to propose.

    Raises:
        CandidateVersionInvalid: ``requested`` is neither ``latest`` nor a version number; the
            version does not exist or is not ENABLED; ``latest`` finds no ENABLED version.
    """
    where = f" of {secret_type}" if secret_type else ""
    details: dict[str, str] = {"candidateVersion": requested[:40]}
    if secret_type:
        details["secretType"] = secret_type
    if requested == LATEST:
        newest = newest_enabled(versions)
        if newest is None:
            raise CandidateVersionInvalid(
                f"no ENABLED version{where} exists to rotate to", details=details
            )
        return newest
    if _VERSION_NUMBER.fullmatch(requested) is None:
        raise CandidateVersionInvalid(
            f"candidate version {requested[:40]!r} is neither 'latest' nor a version number",
            details=details,
        )
    found = next((v for v in versions if v.version == requested), None)
    if found is None:
        raise CandidateVersionInvalid(f"version {requested}{where} does not exist", details=details)
    if found.state is not VersionState.ENABLED:
        raise CandidateVersionInvalid(
            f"version {requested}{where} is {found.state.value}; only an ENABLED version can "
            "become active",
            details=details,
        )
    return found
