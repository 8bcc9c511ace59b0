"""Log redaction through the real processor chain, in both formats (issue 15).

Every shape a value can take in a log call is logged through ``configure_logging`` (structlog
and a stdlib logger, as uvicorn and grpc log) and the whole output is grepped for the canary in
each spelling it could have there: raw, JSON-escaped and ``repr``-escaped.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from omni_secrets.observability.logging import configure_logging
from omni_secrets.observability.redaction import (
    MIN_REGISTERED_CHARS,
    Redactor,
    is_sensitive_key,
)

# Quotes, a backslash and a non-ASCII letter: JSON and repr both escape this one.
CANARY = 'fake-canary-"q"-\\-\u00e9-7731'
PLAIN_CANARY = "fake-plain-canary-5120"


def spellings(value: str) -> set[str]:
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
    }


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    saved_access = access.disabled
    try:
        yield
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.disabled = saved_access


def log_every_shape(value: str) -> None:
    log = structlog.get_logger("shapes")
    log.info("plain", note=f"before {value} after")
    log.info("repr", note=repr(value))
    log.info("json", note=json.dumps({"v": value}))
    log.info("bytes", note=value.encode("utf-8"))
    log.info("set", note={value, "other"})
    log.info("tuple", note=("x", value))
    log.info("nested", details={"a": [{"b": value}]})
    log.info("exception", error=ValueError(f"bad {value}"))
    try:
        raise RuntimeError(f"failed with {value}")
    except RuntimeError:
        log.exception("with traceback")
    log.info(f"in the event itself {value}")
    logging.getLogger("uvicorn.error").warning("stdlib %s line", value)
    logging.getLogger("grpc").error("stdlib repr %r", value)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["json", "console"])
@pytest.mark.parametrize("canary", [CANARY, PLAIN_CANARY])
def test_every_shape_is_masked_in_both_formats(log_format: str, canary: str) -> None:
    out = io.StringIO()
    redactor = Redactor()
    configure_logging(log_format=log_format, redactor=redactor, stream=out)
    assert redactor.register(canary)
    log_every_shape(canary)
    text = out.getvalue()
    assert text.count("**********") >= 12, text
    for spelling in spellings(canary):
        assert spelling not in text, f"{spelling!r} leaked in {log_format}:\n{text}"
    if log_format == "json":
        for line in text.splitlines():
            json.loads(line)  # still valid JSON after masking


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["json", "console"])
def test_sensitive_keys_and_url_credentials(log_format: str) -> None:
    """Fields named like secrets are masked whole; URL passwords are masked anywhere."""
    out = io.StringIO()
    configure_logging(log_format=log_format, redactor=Redactor(), stream=out)
    secret = "fake-unregistered-7c1e"  # never registered: only the names protect it
    structlog.get_logger("keys").info(
        "keys",
        api_key=secret,
        **{"APEX-API-KEY": secret, "Apex-Passphrase": secret, "X-Api-Key": secret},
        db_secret=secret,
        client_secret=secret,
        refresh_token=secret,
        dsn=f"postgresql://omni:{secret}@db/omni",
        target=f"connect to https://user:{secret}@host.example/path please",
        headers={"authorization": f"Bearer {secret}", "cookie": secret},
    )
    logging.getLogger("sqlalchemy").warning("url postgresql+psycopg://u:%s@h/d", secret)
    text = out.getvalue()
    assert secret not in text
    assert "https://user:**********@host.example/path" in text


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("api_key", True),
        ("APEX-API-KEY", True),
        ("apex-signature", True),
        ("pagerduty_routing_key", True),
        ("jwt_secret", True),
        ("database_url", True),
        ("secret_type", False),
        ("key_id", False),
        ("gsm_secret_id", False),
        ("override_id", False),
    ],
)
def test_sensitive_key_names(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


class TestRegistration:
    def test_short_values_are_not_registered(self) -> None:
        """A short value would mask ordinary words (a break-glass holder could pick them)."""
        redactor = Redactor()
        assert not redactor.register("x" * (MIN_REGISTERED_CHARS - 1))
        assert redactor.registered_count == 0
        assert redactor.scrub_text("principal alice") == "principal alice"
        assert redactor.register("fake-twelve!")  # exactly 12
        assert redactor.scrub_text("a fake-twelve! b") == "a ********** b"

    def test_forget_is_reference_counted(self) -> None:
        """A break-glass value equal to a served GSM value stays masked when the override ends."""
        redactor = Redactor()
        redactor.register(PLAIN_CANARY)  # served from GSM
        redactor.register(PLAIN_CANARY)  # the same value pushed as an override
        redactor.forget(PLAIN_CANARY)  # the override ends
        assert PLAIN_CANARY not in redactor.scrub_text(PLAIN_CANARY)
        redactor.forget(PLAIN_CANARY)
        assert redactor.scrub_text(PLAIN_CANARY) == PLAIN_CANARY
        assert redactor.registered_count == 0

    def test_the_set_is_capped(self) -> None:
        redactor = Redactor(max_values=3)
        values = [f"fake-capped-value-{i:04d}" for i in range(5)]
        for value in values:
            redactor.register(value)
        assert redactor.registered_count == 3
        assert redactor.scrub_text(values[0]) == values[0]  # least recently registered: gone
        assert redactor.scrub_text(values[-1]) == "**********"

    def test_repr_does_not_show_values(self) -> None:
        redactor = Redactor()
        redactor.register(PLAIN_CANARY)
        assert PLAIN_CANARY not in repr(redactor)
