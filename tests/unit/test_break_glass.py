"""Break-glass keys, sealed payloads, TTL bounds and override windows (domain/break_glass.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey, PublicKey, SealedBox

from omni_secrets.domain import break_glass
from omni_secrets.domain.break_glass import (
    BreakGlassKeyPair,
    OpenedOverride,
    OverrideWindow,
    generate_private_key,
    key_id,
    load_key_pair,
    open_override,
    parse_duration,
    seal_payload,
    validate_ttl,
)
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.errors import (
    BreakGlassKeyInvalid,
    CiphertextInvalid,
    ConfigurationRejected,
    InvalidInput,
    OmniSecretsError,
    PayloadExpired,
    PayloadMismatch,
    TtlTooLong,
    UnknownKeyId,
    UnknownSecretType,
)
from omni_secrets.domain.values import SecretValue

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
VALUE = "fake-api-secret-0123456789"
NONCE = bytes(range(16))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def make_pair() -> tuple[BreakGlassKeyPair, str]:
    private_b64, public_b64, _ = generate_private_key()
    return load_key_pair(public_b64, private_b64), public_b64


def seal_raw(public_b64: str, payload: Any) -> str:
    """Seal arbitrary plaintext (bypassing seal_payload's own checks) to ``public_b64``."""
    message = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    box = SealedBox(PublicKey(base64.b64decode(public_b64)))
    return b64(box.encrypt(message))


def payload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "secretType": "api_secret",
        "value": VALUE,
        "issuedAt": "2026-11-25T10:00:00Z",
        "nonce": b64(NONCE),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def open_(pair: BreakGlassKeyPair, ciphertext: str, **kw: Any) -> OpenedOverride:
    args: dict[str, Any] = {
        "key_id": pair.key_id,
        "ciphertext_b64": ciphertext,
        "expected_secret_type": "api_secret",
        "now": NOW,
    }
    args.update(kw)
    return open_override(pair, **args)


class TestKeyId:
    def test_matches_an_independent_sha256_vector(self) -> None:
        """The key id of the all-zero key is the first 16 hex chars of its known SHA-256."""
        # sha256(32 zero bytes) = 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
        assert key_id(bytes(32)) == "66687aadf862bd77"

    def test_is_sha256_prefix_of_the_raw_public_key(self) -> None:
        """A generated pair's key id is SHA-256 over the raw 32 bytes, not over the base64 text."""
        _, public_b64, kid = generate_private_key()
        raw = base64.b64decode(public_b64)
        assert kid == hashlib.sha256(raw).hexdigest()[:16]
        assert kid != hashlib.sha256(public_b64.encode()).hexdigest()[:16]

    def test_refuses_a_key_of_the_wrong_size(self) -> None:
        """Only a raw 32-byte key has a key id."""
        with pytest.raises(ValueError, match="32 bytes"):
            key_id(b"\x01" * 31)


class TestKeyPair:
    def test_loads_a_matching_pair(self) -> None:
        """A private key and its own public key load, with the public key's id and base64."""
        private_b64, public_b64, kid = generate_private_key()
        pair = load_key_pair(public_b64, private_b64 + "\n")
        assert pair.key_id == kid
        assert pair.public_key_b64 == public_b64
        assert pair.public_key_raw == base64.b64decode(public_b64)

    def test_rejects_a_mismatched_pair(self) -> None:
        """A private key whose public half is not the configured public key is refused."""
        private_b64, _, _ = generate_private_key()
        _, other_public, other_id = generate_private_key()
        with pytest.raises(BreakGlassKeyInvalid) as info:
            load_key_pair(other_public, private_b64)
        assert "does not match" in info.value.message
        assert other_id in info.value.message
        assert private_b64 not in str(info.value)
        assert isinstance(info.value, ConfigurationRejected)
        assert info.value.violations[0].variables == (
            "OMNI_BREAKGLASS_PUBLIC_KEY",
            "OMNI_BREAKGLASS_PRIVATE_KEY_FILE",
        )

    @pytest.mark.parametrize(
        "public_text", ["not base64!", b64(b"\x01" * 31), b64(b"\x01" * 33), "", "ÿÿÿÿ"]
    )
    def test_rejects_a_malformed_public_key(self, public_text: str) -> None:
        """A public key that is not base64 of 32 bytes is refused, naming the variable."""
        private_b64, _, _ = generate_private_key()
        with pytest.raises(BreakGlassKeyInvalid, match="OMNI_BREAKGLASS_PUBLIC_KEY is not"):
            load_key_pair(public_text, private_b64)

    @pytest.mark.parametrize("private_text", ["%%%", b64(b"\x02" * 16), ""])
    def test_rejects_a_malformed_private_key_without_quoting_it(self, private_text: str) -> None:
        """A malformed private key is refused, and the message does not quote it."""
        _, public_b64, _ = generate_private_key()
        with pytest.raises(BreakGlassKeyInvalid, match="PRIVATE_KEY_FILE") as info:
            load_key_pair(public_b64, private_text)
        if private_text:
            assert private_text not in str(info.value)

    def test_repr_shows_only_the_key_id(self) -> None:
        """The key pair's repr names the key id and never the private key."""
        private_b64, public_b64, kid = generate_private_key()
        pair = load_key_pair(public_b64, private_b64)
        assert repr(pair) == f"BreakGlassKeyPair(key_id={kid!r})"
        assert private_b64 not in repr(pair)
        assert private_b64 not in str(pair)

    def test_refuses_pickling(self) -> None:
        """The key pair cannot be serialised with pickle."""
        pair, _ = make_pair()
        with pytest.raises(TypeError):
            pickle.dumps(pair)

    def test_generated_keys_are_fresh(self) -> None:
        """Two generated private keys differ."""
        assert generate_private_key()[0] != generate_private_key()[0]


class TestSealPayload:
    def test_round_trip(self) -> None:
        """A payload sealed by the client opens on the server with the same fields."""
        pair, public_b64 = make_pair()
        ciphertext = seal_payload(
            public_b64, secret_type="api_secret", value=VALUE, issued_at=NOW, nonce=NONCE
        )
        opened = open_(pair, ciphertext)
        assert opened.secret_type is SecretType.API_SECRET
        assert opened.value.reveal() == VALUE
        assert opened.issued_at == NOW
        assert opened.nonce == b64(NONCE)

    def test_sealed_plaintext_has_the_contract_shape(self) -> None:
        """The sealed plaintext is UTF-8 JSON with secretType, value, issuedAt (Z) and nonce."""
        private = PrivateKey.generate()
        ciphertext = seal_payload(
            b64(bytes(private.public_key)),
            secret_type=SecretType.API_KEY,
            value=SecretValue(VALUE),
            issued_at=NOW + timedelta(microseconds=500),
        )
        plain = json.loads(SealedBox(private).decrypt(base64.b64decode(ciphertext)))
        assert set(plain) == {"secretType", "value", "issuedAt", "nonce"}
        assert plain["secretType"] == "api_key"
        assert plain["value"] == VALUE
        assert plain["issuedAt"] == "2026-11-25T10:00:00.000500Z"
        assert len(base64.b64decode(plain["nonce"], validate=True)) >= 16

    def test_default_nonces_are_random(self) -> None:
        """Two seals of the same value carry different nonces and ciphertexts."""
        pair, public_b64 = make_pair()
        first, second = (
            seal_payload(public_b64, secret_type="api_secret", value=VALUE, issued_at=NOW)
            for _ in range(2)
        )
        assert first != second
        assert open_(pair, first).nonce != open_(pair, second).nonce

    def test_refuses_a_malformed_public_key(self) -> None:
        """A public key that is not base64 of 32 bytes is invalid input."""
        with pytest.raises(InvalidInput, match="public key"):
            seal_payload("abc", secret_type="api_secret", value=VALUE, issued_at=NOW)

    def test_refuses_an_empty_value(self) -> None:
        """An empty value is invalid input."""
        _, public_b64 = make_pair()
        with pytest.raises(InvalidInput, match="empty"):
            seal_payload(public_b64, secret_type="api_secret", value="", issued_at=NOW)

    def test_refuses_an_unknown_secret_type(self) -> None:
        """A type outside the catalog is refused before sealing."""
        _, public_b64 = make_pair()
        with pytest.raises(UnknownSecretType):
            seal_payload(public_b64, secret_type="api_pin", value=VALUE, issued_at=NOW)

    def test_refuses_a_short_nonce(self) -> None:
        """A caller-supplied nonce under 16 bytes is a programming error."""
        _, public_b64 = make_pair()
        with pytest.raises(ValueError, match="16 bytes"):
            seal_payload(
                public_b64, secret_type="api_secret", value=VALUE, issued_at=NOW, nonce=b"x" * 15
            )


class TestOpenOverride:
    def test_unknown_key_id(self) -> None:
        """A key id other than the service's is UNKNOWN_KEY_ID."""
        pair, public_b64 = make_pair()
        ciphertext = seal_raw(public_b64, payload())
        with pytest.raises(UnknownKeyId) as info:
            open_(pair, ciphertext, key_id="0123456789abcdef")
        assert info.value.code == "UNKNOWN_KEY_ID"
        assert info.value.details == {"currentKeyId": pair.key_id}

    def test_wrong_key(self) -> None:
        """A box sealed to another public key is CIPHERTEXT_INVALID."""
        pair, _ = make_pair()
        _, other_public = make_pair()
        with pytest.raises(CiphertextInvalid) as info:
            open_(pair, seal_raw(other_public, payload()))
        assert info.value.code == "CIPHERTEXT_INVALID"

    def test_tampered_ciphertext(self) -> None:
        """A box with one flipped byte is CIPHERTEXT_INVALID."""
        pair, public_b64 = make_pair()
        raw = bytearray(base64.b64decode(seal_raw(public_b64, payload())))
        raw[-1] ^= 0x01
        with pytest.raises(CiphertextInvalid, match="tampered"):
            open_(pair, b64(bytes(raw)))

    @pytest.mark.parametrize("text", ["not base64 at all!", "QUJD=x", "", "ÿÿÿÿ"])
    def test_bad_base64(self, text: str) -> None:
        """Ciphertext that is not strict base64 (or is empty) is CIPHERTEXT_INVALID."""
        pair, _ = make_pair()
        with pytest.raises(CiphertextInvalid):
            open_(pair, text)

    def test_mismatched_secret_type(self) -> None:
        """An inner secretType other than the request's is PAYLOAD_MISMATCH."""
        pair, public_b64 = make_pair()
        with pytest.raises(PayloadMismatch) as info:
            open_(pair, seal_raw(public_b64, payload(secretType="api_key")))
        assert info.value.code == "PAYLOAD_MISMATCH"
        assert "api_key" in info.value.message

    def test_mismatch_does_not_echo_a_non_catalog_inner_type(self) -> None:
        """An inner secretType outside the catalog is not quoted (it is plaintext)."""
        pair, public_b64 = make_pair()
        with pytest.raises(PayloadMismatch) as info:
            open_(pair, seal_raw(public_b64, payload(secretType="fake-leaky-type")))
        assert "fake-leaky-type" not in str(info.value)

    def test_stale_issued_at(self) -> None:
        """issuedAt 5 minutes and 1 second before now is PAYLOAD_EXPIRED."""
        pair, public_b64 = make_pair()
        issued = to_rfc3339(NOW - timedelta(minutes=5, seconds=1))
        with pytest.raises(PayloadExpired, match="301s ago") as info:
            open_(pair, seal_raw(public_b64, payload(issuedAt=issued)))
        assert info.value.code == "PAYLOAD_EXPIRED"

    def test_issued_at_exactly_five_minutes_ago_is_accepted(self) -> None:
        """issuedAt exactly 5 minutes old is still inside the window."""
        pair, public_b64 = make_pair()
        issued = to_rfc3339(NOW - timedelta(minutes=5))
        assert open_(pair, seal_raw(public_b64, payload(issuedAt=issued))).value.reveal() == VALUE

    def test_future_issued_at(self) -> None:
        """issuedAt 1 minute and 1 second ahead of now is PAYLOAD_EXPIRED."""
        pair, public_b64 = make_pair()
        issued = to_rfc3339(NOW + timedelta(minutes=1, seconds=1))
        with pytest.raises(PayloadExpired, match="61s in the future"):
            open_(pair, seal_raw(public_b64, payload(issuedAt=issued)))

    def test_issued_at_one_minute_ahead_is_accepted(self) -> None:
        """issuedAt exactly 1 minute ahead is tolerated clock skew."""
        pair, public_b64 = make_pair()
        issued = "2026-11-25T11:01:00+01:00"  # NOW + 1 min, written in another zone
        assert open_(pair, seal_raw(public_b64, payload(issuedAt=issued))).issued_at == NOW + (
            timedelta(minutes=1)
        )

    def test_short_nonce(self) -> None:
        """A nonce of 15 bytes is CIPHERTEXT_INVALID."""
        pair, public_b64 = make_pair()
        with pytest.raises(CiphertextInvalid, match="nonce"):
            open_(pair, seal_raw(public_b64, payload(nonce=b64(b"n" * 15))))

    def test_nonce_is_returned_canonically(self) -> None:
        """The nonce comes back re-encoded from its bytes, so spellings cannot dodge replays."""
        pair, public_b64 = make_pair()
        opened = open_(pair, seal_raw(public_b64, payload(nonce=b64(b"\xfb" * 18))))
        assert opened.nonce == b64(b"\xfb" * 18)

    @pytest.mark.parametrize(
        ("plaintext", "match"),
        [
            (b"\xff\xfe not utf-8", "UTF-8 JSON object"),
            (b"not json", "UTF-8 JSON object"),
            (b'["a list"]', "UTF-8 JSON object"),
            (b"1" * 5000, "UTF-8 JSON object"),
            (json.dumps(payload(nonce=None)).encode(), "lacks nonce"),
            (json.dumps(payload(value=None, issuedAt=None)).encode(), "lacks value, issuedAt"),
            (json.dumps(payload(value="")).encode(), "value is not a non-empty string"),
            (json.dumps(payload(value=42)).encode(), "value is not a non-empty string"),
            (json.dumps(payload(secretType=7)).encode(), "secretType is not a string"),
            (json.dumps(payload(issuedAt="yesterday")).encode(), "issuedAt"),
            (json.dumps(payload(issuedAt="2026-11-25T10:00:00")).encode(), "issuedAt"),
            (json.dumps(payload(nonce="***")).encode(), "nonce"),
            (json.dumps(payload(nonce=12)).encode(), "nonce"),
        ],
    )
    def test_malformed_payload(self, plaintext: bytes, match: str) -> None:
        """A sealed plaintext that is not the contract's JSON object is CIPHERTEXT_INVALID."""
        pair, public_b64 = make_pair()
        with pytest.raises(CiphertextInvalid, match=match) as info:
            open_(pair, seal_raw(public_b64, plaintext))
        assert info.value.__context__ is None
        assert info.value.__cause__ is None

    def test_opened_override_repr_redacts_the_value(self) -> None:
        """The opened payload's repr shows the value redacted."""
        pair, public_b64 = make_pair()
        opened = open_(pair, seal_raw(public_b64, payload()))
        assert VALUE not in repr(opened)
        assert "**********" in repr(opened)

    def test_refuses_a_naive_now(self) -> None:
        """A naive ``now`` is a programming error."""
        pair, public_b64 = make_pair()
        with pytest.raises(ValueError, match="naive"):
            open_(pair, seal_raw(public_b64, payload()), now=NOW.replace(tzinfo=None))


# Shared across hypothesis examples: generating a key pair per example would only slow it down.
_PAIR, _PUBLIC = make_pair()
_OTHER_PUBLIC = make_pair()[1]


def _exception_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), repr(exc.args)]
    if isinstance(exc, OmniSecretsError):
        parts.append(json.dumps(exc.details, default=str))
    for chained in (exc.__cause__, exc.__context__):
        if chained is not None:
            parts.append(_exception_text(chained))
    return "\n".join(parts)


class TestRedaction:
    @settings(max_examples=60, deadline=None)
    @given(
        value=st.text(
            alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"]),
            min_size=12,
            max_size=64,
        ),
        case=st.sampled_from(
            ["mismatch", "stale", "future", "short_nonce", "bad_time", "wrong_key", "no_nonce"]
        ),
    )
    def test_no_error_carries_the_value(self, value: str, case: str) -> None:
        """Whatever the value and whichever rule fails, no message, repr or chain shows it."""
        fields: dict[str, Any] = {
            "mismatch": {"secretType": "api_key"},
            "stale": {"issuedAt": "2026-11-25T09:50:00Z"},
            "future": {"issuedAt": "2026-11-25T10:10:00Z"},
            "short_nonce": {"nonce": b64(b"n" * 8)},
            "bad_time": {"issuedAt": value},
            "wrong_key": {},
            "no_nonce": {"nonce": None},
        }[case]
        public = _OTHER_PUBLIC if case == "wrong_key" else _PUBLIC
        plaintext = json.dumps(payload(value=value, **fields))
        with pytest.raises(OmniSecretsError) as info:
            open_(_PAIR, seal_raw(public, plaintext.encode()))
        text = _exception_text(info.value)
        assert value not in text
        assert json.dumps(value) not in text
        assert plaintext not in text

    @settings(max_examples=30, deadline=None)
    @given(value=st.text(min_size=12, max_size=64).filter(lambda v: v.strip() == v))
    def test_opened_values_never_show_in_repr(self, value: str) -> None:
        """An opened override's repr and str never contain the value."""
        ciphertext = seal_payload(_PUBLIC, secret_type="api_secret", value=value, issued_at=NOW)
        opened = open_(_PAIR, ciphertext)
        assert opened.value.reveal() == value
        assert value not in repr(opened)
        assert value not in str(opened)


class TestValidateTtl:
    @pytest.mark.parametrize("seconds", [60, 900, 1800])
    def test_accepts_the_bounds(self, seconds: int) -> None:
        """60 s to 1800 s inclusive is accepted unchanged."""
        assert validate_ttl(seconds) == seconds

    def test_too_long(self) -> None:
        """1801 s is TTL_TOO_LONG."""
        with pytest.raises(TtlTooLong) as info:
            validate_ttl(1801)
        assert info.value.code == "TTL_TOO_LONG"
        assert info.value.details == {"ttlSeconds": 1801, "maxTtlSeconds": 1800}

    def test_too_short(self) -> None:
        """59 s is VALIDATION_FAILED (not TTL_TOO_LONG)."""
        with pytest.raises(InvalidInput) as info:
            validate_ttl(59)
        assert type(info.value) is InvalidInput
        assert info.value.code == "VALIDATION_FAILED"

    def test_maximum_is_thirty_minutes(self) -> None:
        """The ceiling is a constant of 30 minutes."""
        assert break_glass.MAX_TTL_SECONDS == 30 * 60
        assert break_glass.MIN_TTL_SECONDS == 60


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("900", 900), ("900s", 900), ("15m", 900), ("31m", 1860), (" 60s ", 60), ("0", 0)],
    )
    def test_parses(self, text: str, seconds: int) -> None:
        """Plain seconds, ``s`` and ``m`` suffixes parse to seconds."""
        assert parse_duration(text) == seconds

    def test_thirty_one_minutes_parses_then_fails_validation(self) -> None:
        """``31m`` parses to 1860, which validate_ttl refuses as too long."""
        with pytest.raises(TtlTooLong):
            validate_ttl(parse_duration("31m"))

    @pytest.mark.parametrize(
        "text",
        ["", "m", "15 m", "1h", "15M", "-5", "1.5m", "15min", "abc", "9" * 10, "\u0661\u0665"],
    )
    def test_rejects_garbage(self, text: str) -> None:
        """Anything but digits with an optional ``s``/``m`` is invalid input with a hint."""
        with pytest.raises(InvalidInput, match=r"use seconds \('900' or '900s'\) or minutes"):
            parse_duration(text)

    def test_quotes_long_garbage_truncated(self) -> None:
        """A long rejected duration is quoted only up to 32 characters."""
        with pytest.raises(InvalidInput) as info:
            parse_duration("x" * 200)
        assert "x" * 32 + "..." in info.value.message
        assert "x" * 33 not in info.value.message


class TestOverrideWindow:
    def test_expires_after_the_ttl(self) -> None:
        """expires_at is activated_at plus the TTL."""
        window = OverrideWindow(activated_at=NOW, ttl_seconds=900)
        assert window.expires_at == NOW + timedelta(minutes=15)

    def test_active_from_activation_until_just_before_expiry(self) -> None:
        """Active at activation and one microsecond before expiry; not at expiry or before start."""
        window = OverrideWindow(activated_at=NOW, ttl_seconds=60)
        assert window.is_active(NOW)
        assert window.is_active(NOW + timedelta(seconds=60) - timedelta(microseconds=1))
        assert not window.is_active(NOW + timedelta(seconds=60))
        assert not window.is_active(NOW - timedelta(microseconds=1))

    @pytest.mark.parametrize("ttl", [59, 1801])
    def test_refuses_out_of_bounds_ttl(self, ttl: int) -> None:
        """A window outside 60..1800 s is a programming error."""
        with pytest.raises(ValueError, match="bounds"):
            OverrideWindow(activated_at=NOW, ttl_seconds=ttl)

    def test_refuses_a_naive_activation_time(self) -> None:
        """A naive activated_at is a programming error."""
        with pytest.raises(ValueError, match="naive"):
            OverrideWindow(activated_at=NOW.replace(tzinfo=None), ttl_seconds=60)
