"""The token subject as an identity: bounded, printable and never the service's own name.

The subject becomes the ``actor`` of audit rows (255 characters at most in the database), of
break-glass overrides and of log lines. Checking it once here, when the token is verified, means
no route can fail later on an identity it cannot store, and no caller can write audit rows that
look like the service's own (``actor`` = ``system``).
"""

from __future__ import annotations

from omni_secrets.domain.models import SYSTEM_ACTOR

MAX_SUBJECT_CHARS = 255


class SubjectRefused(ValueError):
    """The subject cannot be used as an identity; the message is safe to show."""


def checked_subject(subject: object) -> str:
    """The token's ``sub`` when it is usable as an audit actor.

    Raises:
        SubjectRefused: not a non-empty string, longer than 255 characters, holding a control
            or other non-printable character, or the reserved name ``system``.
    """
    if not isinstance(subject, str) or not subject:
        raise SubjectRefused("token has no subject")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise SubjectRefused(f"token subject is longer than {MAX_SUBJECT_CHARS} characters")
    if not subject.isprintable():
        raise SubjectRefused("token subject contains non-printable characters")
    if subject.strip().casefold() == SYSTEM_ACTOR.casefold():
        raise SubjectRefused(f"token subject {SYSTEM_ACTOR!r} is reserved for the service itself")
    return subject
