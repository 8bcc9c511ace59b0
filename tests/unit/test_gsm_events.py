"""Parsing GSM event notifications: every well-formed shape, and every malformed one refused."""

from __future__ import annotations

import json

import pytest

from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.gsm_events import (
    Dismissed,
    GsmEvent,
    GsmEventType,
    RawGsmMessage,
    parse_gsm_message,
)

PROJECT = "omni-test"
SECRET = f"projects/{PROJECT}/secrets/apex-omni-api-secret"
VERSION = f"{SECRET}/versions/3"
TYPES = {entry.gsm_secret_id: entry.secret_type for entry in Catalog("apex-omni-")}


def message(
    attributes: dict[str, str] | None = None, data: bytes | None = None, message_id: str = "m-1"
) -> RawGsmMessage:
    attrs = {
        "eventType": "SECRET_VERSION_DISABLE",
        "secretId": SECRET,
        "versionId": VERSION,
        "dataFormat": "JSON_API_V1",
    }
    attrs.update(attributes or {})
    attrs = {k: v for k, v in attrs.items() if v is not None}
    body = json.dumps({"name": VERSION, "state": "DISABLED"}).encode() if data is None else data
    return RawGsmMessage(message_id=message_id, attributes=attrs, data=body)


def parse(raw: RawGsmMessage, projects: tuple[str, ...] = (PROJECT,)) -> GsmEvent | Dismissed:
    return parse_gsm_message(raw, projects=frozenset(projects), secret_types=TYPES)


class TestParseGsmMessage:
    def test_a_version_event_of_a_catalog_secret_parses(self) -> None:
        """A well-formed DISABLE names its type and version number."""
        event = parse(message())
        assert isinstance(event, GsmEvent)
        assert event.event_type is GsmEventType.SECRET_VERSION_DISABLE
        assert event.secret_type is SecretType.API_SECRET
        assert event.secret_id == "apex-omni-api-secret"
        assert event.version == "3"

    def test_secret_events_need_no_version(self) -> None:
        """SECRET_DELETE and SECRET_ROTATE carry only secretId, and parse with version None."""
        for kind in ("SECRET_DELETE", "SECRET_ROTATE"):
            data = json.dumps({"name": SECRET}).encode()
            event = parse(message({"eventType": kind, "versionId": None}, data))
            assert isinstance(event, GsmEvent), kind
            assert event.version is None

    def test_the_project_number_counts_as_ours_when_configured(self) -> None:
        """GSM names projects by number: a configured number is not foreign."""
        secret = "projects/123456/secrets/apex-omni-api-key"
        raw = message(
            {"secretId": secret, "versionId": f"{secret}/versions/1"},
            json.dumps({"name": f"{secret}/versions/1"}).encode(),
        )
        assert isinstance(parse(raw, (PROJECT, "123456")), GsmEvent)
        refused = parse(raw)
        assert isinstance(refused, Dismissed) and refused.reason.endswith("foreign project")

    @pytest.mark.parametrize(
        ("attributes", "data", "reason"),
        [
            ({"eventType": None}, None, "no eventType attribute"),
            ({"eventType": ""}, None, "no eventType attribute"),
            ({"dataFormat": None}, None, "dataFormat is not JSON_API_V1"),
            ({"dataFormat": "PROTOCOL_BUFFER"}, None, "dataFormat is not JSON_API_V1"),
            ({"secretId": None}, None, "secretId is not projects/P/secrets/ID"),
            ({"secretId": "apex-omni-api-secret"}, None, "secretId is not projects/P/secrets/ID"),
            (
                {"secretId": "projects/other-proj/secrets/apex-omni-api-secret"},
                None,
                "secretId names a foreign project",
            ),
            ({"versionId": None}, None, "versionId is not projects/P/secrets/ID/versions/N"),
            (
                {"versionId": f"{SECRET}/versions/latest"},
                None,
                "versionId is not projects/P/secrets/ID/versions/N",
            ),
            (
                {"versionId": f"projects/{PROJECT}/secrets/apex-omni-api-key/versions/3"},
                None,
                "versionId does not belong to secretId",
            ),
            ({}, b"\xff\xfe not utf-8", "data is not JSON"),
            ({}, b"{garbage", "data is not JSON"),
            ({}, b"[1, 2]", "data is not a JSON object"),
            ({}, json.dumps({"name": VERSION, "payload": {"data": "x"}}).encode(), "payload"),
            ({}, json.dumps({"name": f"{SECRET}/versions/9"}).encode(), "another resource"),
            ({}, b"{" + b" " * (64 * 1024) + b"}", "data is too large"),
        ],
    )
    def test_malformed_messages_are_rejected(
        self, attributes: dict[str, str], data: bytes | None, reason: str
    ) -> None:
        """Each malformed shape is rejected with its reason; nothing is acted on."""
        outcome = parse(message(attributes, data))
        assert isinstance(outcome, Dismissed)
        assert outcome.result == "rejected"
        assert reason in outcome.reason

    def test_unknown_secrets_and_event_types_are_ignored(self) -> None:
        """A secret outside the catalog, an unknown or a no-action event type: ignored."""
        other = f"projects/{PROJECT}/secrets/someone-elses-secret"
        unknown = parse(
            message(
                {"secretId": other, "versionId": f"{other}/versions/1"},
                json.dumps({"name": f"{other}/versions/1"}).encode(),
            )
        )
        assert isinstance(unknown, Dismissed) and unknown.result == "ignored"
        novel = parse(message({"eventType": "SECRET_TELEPORT"}))
        assert isinstance(novel, Dismissed) and novel.result == "ignored"
        create = parse(message({"eventType": "SECRET_CREATE", "versionId": None}, b"{}"))
        assert isinstance(create, Dismissed) and create.result == "ignored"
        # Section 15: an alias change is a reason to look again (the follower decides).
        update = parse(message({"eventType": "SECRET_UPDATE", "versionId": None}, b"{}"))
        assert isinstance(update, GsmEvent) and update.version is None
        # ... but an alias moved on a secret outside the catalog is none of our business.
        foreign_update = parse(
            message(
                {"eventType": "SECRET_UPDATE", "secretId": other, "versionId": None},
                json.dumps({"name": other}).encode(),
            )
        )
        assert isinstance(foreign_update, Dismissed) and foreign_update.result == "ignored"
