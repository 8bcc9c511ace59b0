"""GSM event notifications (Pub/Sub messages in GSM's format) parsed into typed events. Pure.

GSM publishes to a secret's topics with attributes ``eventType``, ``secretId``
(``projects/P/secrets/ID``), ``versionId`` (``projects/P/secrets/ID/versions/N``, on version
events) and ``dataFormat`` (``JSON_API_V1``); ``data`` is the JSON of the secret or version
resource, never a payload. :func:`parse_gsm_message` checks all of it and returns either a
:class:`GsmEvent` to act on or a :class:`Dismissed` saying why not (malformed, wrong data format,
foreign project, unknown secret, an event type we do not act on). It never raises on input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from omni_secrets.domain.catalog import SecretType

DATA_FORMAT: Final = "JSON_API_V1"
MAX_DATA_BYTES: Final = 64 * 1024


class GsmEventType(StrEnum):
    SECRET_CREATE = "SECRET_CREATE"
    SECRET_UPDATE = "SECRET_UPDATE"
    SECRET_DELETE = "SECRET_DELETE"
    SECRET_VERSION_ADD = "SECRET_VERSION_ADD"
    SECRET_VERSION_ENABLE = "SECRET_VERSION_ENABLE"
    SECRET_VERSION_DISABLE = "SECRET_VERSION_DISABLE"
    SECRET_VERSION_DESTROY = "SECRET_VERSION_DESTROY"
    SECRET_VERSION_DESTROY_SCHEDULED = "SECRET_VERSION_DESTROY_SCHEDULED"
    SECRET_ROTATE = "SECRET_ROTATE"
    TOPIC_CONFIGURED = "TOPIC_CONFIGURED"


REVOKING: Final = frozenset(
    {
        GsmEventType.SECRET_VERSION_DISABLE,
        GsmEventType.SECRET_VERSION_DESTROY,
        GsmEventType.SECRET_VERSION_DESTROY_SCHEDULED,
    }
)
VERSION_EVENTS: Final = REVOKING | {
    GsmEventType.SECRET_VERSION_ADD,
    GsmEventType.SECRET_VERSION_ENABLE,
}
ACTED_ON: Final = VERSION_EVENTS | {
    GsmEventType.SECRET_DELETE,
    GsmEventType.SECRET_ROTATE,
    GsmEventType.SECRET_UPDATE,
}

_SECRET_NAME = re.compile(r"projects/([A-Za-z0-9._:-]{1,100})/secrets/([A-Za-z0-9_-]{1,255})")
_VERSION_NAME = re.compile(
    r"projects/([A-Za-z0-9._:-]{1,100})/secrets/([A-Za-z0-9_-]{1,255})/versions/([0-9]{1,18})"
)


@dataclass(frozen=True, slots=True)
class RawGsmMessage:
    """A Pub/Sub message as received (the adapter copies it off the client's thread)."""

    message_id: str
    attributes: Mapping[str, str]
    data: bytes
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class GsmEvent:
    """A well-formed GSM event about a catalog secret of our project."""

    message_id: str
    event_type: GsmEventType
    secret_type: SecretType
    secret_id: str
    version: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class Dismissed:
    """A message not acted on: ``rejected`` (malformed, foreign) or ``ignored`` (not ours to act
    on: another event type, a secret outside the catalog).

    ``event_type`` is the attribute as sent (None when missing); ``reason`` is a short sentence
    for the log (it quotes no attribute values beyond the event type).
    """

    message_id: str
    event_type: str | None
    result: Literal["rejected", "ignored"]
    reason: str


def parse_gsm_message(
    message: RawGsmMessage,
    *,
    projects: Collection[str],
    secret_types: Mapping[str, SecretType],
) -> GsmEvent | Dismissed:
    """Validate ``message`` as a GSM event about one of ``secret_types`` in ``projects``.

    Args:
        message: the received message.
        projects: the project ids (and numbers) whose secrets we serve.
        secret_types: the catalog's GSM secret ids and their types.

    Returns:
        The event, or why it is dismissed. Never raises.
    """
    attrs = message.attributes

    def dismiss(result: Literal["rejected", "ignored"], reason: str) -> Dismissed:
        return Dismissed(message.message_id, attrs.get("eventType"), result, reason)

    event_type_text = attrs.get("eventType")
    if not event_type_text:
        return dismiss("rejected", "no eventType attribute")
    if attrs.get("dataFormat") != DATA_FORMAT:
        return dismiss("rejected", f"dataFormat is not {DATA_FORMAT}")
    try:
        event_type = GsmEventType(event_type_text)
    except ValueError:
        return dismiss("ignored", "unknown event type")
    secret_name = attrs.get("secretId", "")
    secret_match = _SECRET_NAME.fullmatch(secret_name)
    if secret_match is None:
        return dismiss("rejected", "secretId is not projects/P/secrets/ID")
    project, secret_id = secret_match.groups()
    if project not in projects:
        return dismiss("rejected", "secretId names a foreign project")
    version: str | None = None
    if event_type in VERSION_EVENTS:
        version_match = _VERSION_NAME.fullmatch(attrs.get("versionId", ""))
        if version_match is None:
            return dismiss("rejected", "versionId is not projects/P/secrets/ID/versions/N")
        if version_match.group(1) != project or version_match.group(2) != secret_id:
            return dismiss("rejected", "versionId does not belong to secretId")
        version = str(int(version_match.group(3)))
    problem = _check_data(message.data, version_name=attrs.get("versionId"), secret=secret_name)
    if problem is not None:
        return dismiss("rejected", problem)
    secret_type = secret_types.get(secret_id)
    if secret_type is None:
        return dismiss("ignored", "secret is not in the catalog")
    if event_type not in ACTED_ON:
        return dismiss("ignored", "event type needs no action")
    return GsmEvent(
        message_id=message.message_id,
        event_type=event_type,
        secret_type=secret_type,
        secret_id=secret_id,
        version=version,
        published_at=message.published_at,
    )


def _check_data(data: bytes, *, version_name: str | None, secret: str) -> str | None:
    """Why ``data`` is not the JSON resource GSM sends, or None when it is."""
    if len(data) > MAX_DATA_BYTES:
        return "data is too large"
    try:
        resource = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "data is not JSON"
    if not isinstance(resource, dict):
        return "data is not a JSON object"
    if "payload" in resource:
        return "data carries a payload"  # GSM never sends one; refuse to hold it at all
    name = resource.get("name")
    if name is not None and name not in {version_name, secret}:
        return "data names another resource"
    return None
