"""The ApeX request signer against every vector of apex-omni-signing.md."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from omni_secrets.adapters.apex import render_data, sign, signed_headers
from omni_secrets.domain.exchange import ApexCredentials

KEY = "test-api-key-0000"
SECRET = "test-secret-ABCdef0123456789"
PASSPHRASE = "test-passphrase"
T = 1700000000000

VECTORS = [
    pytest.param(
        "GET",
        "/api/v3/account",
        None,
        "AZX0ym63jHfHEWgLgFMPGwI1TpbNC5O8oV7v8+H6r9A=",
        id="get-account",
    ),
    pytest.param(
        "GET", "/api/v3/user", None, "0cJNiJcZRhG+aGwoytWiO+p5jCI+gtCI3uRYzTKVPQU=", id="get-user"
    ),
    pytest.param(
        "POST",
        "/api/v3/delete-order",
        {"id": "123456"},
        "qEqmGYrVJoQRYL2QuxGMIliH37zG+xbxHQ//RhZqV8E=",
        id="post-delete-order",
    ),
    pytest.param(
        "POST",
        "/api/v3/set-initial-margin-rate",
        {"symbol": "BTC-USDT", "initialMarginRate": 0.05},
        "yBzzMGSf97FoF7sVnt2ui6nMCWZQD9ktctkoyanWVf8=",
        id="post-sorted-params",
    ),
    pytest.param(
        "POST",
        "/api/v3/x",
        {"b": None, "reduceOnly": False, "a": "1"},
        "aOGSGO8tdIpTwfgyMM4hdKyhEHAp38zdqIJdcl/Te9c=",
        id="post-none-dropped-bool-python-style",
    ),
]

RAW_SECRET_KEY_SIGNATURE = "RuRW+j5Zw4alFS9SXebdK64dKvPHezQb3oEVNIjdmGw="
HEX_SIGNATURE = "0195f4ca6eb78c77c711680b80530f1b02354e96cd0b93bca15eeff3e1faafd0"


class TestSign:
    @pytest.mark.parametrize(("method", "path", "data", "expected"), VECTORS)
    def test_matches_the_documented_vector(
        self, method: str, path: str, data: dict[str, object] | None, expected: str
    ) -> None:
        """Each request of the signing doc produces exactly the documented APEX-SIGNATURE."""
        assert sign(SECRET, T, method, path, data) == expected

    def test_string_timestamp_signs_like_the_integer(self) -> None:
        """The timestamp may be given as the decimal string sent in APEX-TIMESTAMP."""
        assert sign(SECRET, str(T), "GET", "/api/v3/account") == VECTORS[0].values[3]

    def test_method_is_upper_cased(self) -> None:
        """A lower-case method signs as its upper-case form."""
        assert sign(SECRET, T, "get", "/api/v3/account") == VECTORS[0].values[3]

    def test_is_not_keyed_with_the_raw_secret(self) -> None:
        """Keying HMAC with the raw secret gives the doc's wrong vector; we do not produce it."""
        message = b"1700000000000GET/api/v3/account"
        raw_keyed = hmac.new(SECRET.encode(), message, hashlib.sha256).digest()
        assert base64.b64encode(raw_keyed).decode() == RAW_SECRET_KEY_SIGNATURE
        assert sign(SECRET, T, "GET", "/api/v3/account") != RAW_SECRET_KEY_SIGNATURE

    def test_output_is_base64_not_hex(self) -> None:
        """Hex rendering of the right digest gives the doc's wrong vector; we emit base64."""
        signature = sign(SECRET, T, "GET", "/api/v3/account")
        assert base64.b64decode(signature).hex() == HEX_SIGNATURE
        assert signature != HEX_SIGNATURE

    @pytest.mark.parametrize("bad", [-1, "17e11", "", "1700000000000.5", True])
    def test_rejects_a_timestamp_that_is_not_whole_milliseconds(self, bad: object) -> None:
        """A negative, fractional, empty or boolean timestamp is a programming error."""
        with pytest.raises(ValueError, match="timestamp_ms"):
            sign(SECRET, bad, "GET", "/api/v3/account")  # type: ignore[arg-type]


class TestRenderData:
    def test_sorts_drops_none_and_renders_python_booleans(self) -> None:
        """DATA is k=v sorted by key, None dropped, True/False as Python prints them."""
        rendered = render_data({"z": True, "b": None, "a": 0.05, "m": False})
        assert rendered == "a=0.05&m=False&z=True"

    def test_empty_for_none_or_empty(self) -> None:
        """A GET has no DATA."""
        assert render_data(None) == ""
        assert render_data({}) == ""

    def test_values_are_not_url_encoded(self) -> None:
        """Raw values go into the message as they are."""
        assert render_data({"q": "a b&c"}) == "q=a b&c"


class TestSignedHeaders:
    def test_carries_the_four_apex_headers(self) -> None:
        """The headers are the documented signature, key, timestamp and passphrase."""
        credentials = ApexCredentials.of(KEY, SECRET, PASSPHRASE)
        headers = signed_headers(credentials, "GET", "/api/v3/account", None, T)
        assert headers == {
            "APEX-SIGNATURE": "AZX0ym63jHfHEWgLgFMPGwI1TpbNC5O8oV7v8+H6r9A=",
            "APEX-API-KEY": KEY,
            "APEX-TIMESTAMP": "1700000000000",
            "APEX-PASSPHRASE": PASSPHRASE,
        }

    def test_post_data_is_signed(self) -> None:
        """POST parameters enter the signature exactly as in the doc's vector."""
        credentials = ApexCredentials.of(KEY, SECRET, PASSPHRASE)
        headers = signed_headers(credentials, "POST", "/api/v3/delete-order", {"id": 123456}, T)
        assert headers["APEX-SIGNATURE"] == "qEqmGYrVJoQRYL2QuxGMIliH37zG+xbxHQ//RhZqV8E="


class TestApexCredentials:
    def test_repr_and_str_redact_every_value(self) -> None:
        """No credential value shows in repr or str."""
        credentials = ApexCredentials.of(KEY, SECRET, PASSPHRASE)
        for text in (repr(credentials), str(credentials), f"{credentials}"):
            for value in (KEY, SECRET, PASSPHRASE):
                assert value not in text
        assert "redacted" in repr(credentials)

    def test_equal_when_values_equal(self) -> None:
        """Two wrappers of the same values compare equal; a different secret does not."""
        assert ApexCredentials.of(KEY, SECRET, PASSPHRASE) == ApexCredentials.of(
            KEY, SECRET, PASSPHRASE
        )
        assert ApexCredentials.of(KEY, SECRET, PASSPHRASE) != ApexCredentials.of(
            KEY, "fake-other", PASSPHRASE
        )
