"""The auth policy (contract section 14): parsing, matching, reload, and the claims it reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from structlog.testing import capture_logs

from omni_secrets.api.auth import Hs256Verifier, Principal, Unauthenticated
from omni_secrets.api.auth_policy import (
    AuthPolicySource,
    PolicyVerifier,
    load_policy_file,
    parse_policy,
)
from omni_secrets.config import GOOGLE_ISSUERS, GOOGLE_JWKS_URL, AuthMode, load_settings
from omni_secrets.domain.errors import AuthPolicyInvalid, ConfigurationRejected

SECRET = "fake-hs256-secret-for-policy-tests"
AUDIENCE = "omni-secrets"

POLICY_YAML = """\
# operators by group, a workload by email, a robot by subject
grants:
  - principal: email:ops@example.com
    scopes: [omni-secrets:read]
  - principal: group:omni-operators
    scopes: [omni-secrets:read, omni-secrets:rotate]
  - principal: sub:robot-7
    scopes: [omni-secrets:refresh]
"""


def token(**claims: Any) -> str:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "sub": "someone",
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


async def verify(**claims: Any) -> Principal:
    return await Hs256Verifier(secret=SECRET, audience=AUDIENCE).verify(token(**claims))


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


class TestClaims:
    async def test_scp_array_okta_shape(self) -> None:
        """An Okta-style ``scp`` array grants its scopes."""
        principal = await verify(scp=["omni-secrets:read", "apex-omni:read"])
        assert principal.scopes == {"omni-secrets:read", "apex-omni:read"}

    async def test_scp_string_and_scope_are_unioned(self) -> None:
        """``scp`` as a space-separated string (Azure AD) adds to ``scope``."""
        principal = await verify(
            scope="omni-secrets:read", scp="omni-secrets:rotate apex-omni:read"
        )
        assert principal.scopes == {"omni-secrets:read", "omni-secrets:rotate", "apex-omni:read"}

    @pytest.mark.parametrize(
        "scp", [42, {"omni-secrets:read": True}, ["omni-secrets:read", 7], [None], True]
    )
    async def test_malformed_scp_is_unauthenticated(self, scp: Any) -> None:
        """An ``scp`` neither a string nor an array of strings → 401 with a clear message."""
        with pytest.raises(Unauthenticated) as caught:
            await verify(scp=scp)
        assert caught.value.message == "token scp claim must be a string or an array of strings"

    @pytest.mark.parametrize(
        ("claims", "email"),
        [
            ({"email": "a@example.com", "email_verified": True}, "a@example.com"),
            ({"email": "a@example.com", "email_verified": False}, None),
            ({"email": "a@example.com", "email_verified": "true"}, None),
            ({"email": "a@example.com"}, None),
            ({"email": "x" * 250 + "@e.com", "email_verified": True}, None),
        ],
    )
    async def test_only_a_verified_email_is_an_identity(
        self, claims: dict[str, Any], email: str | None
    ) -> None:
        """``email`` counts only with ``email_verified`` JSON true (and a plausible length)."""
        principal = await verify(**claims)
        assert principal.email == email
        assert principal.actor == (email or "someone")

    async def test_groups_strings_only(self) -> None:
        """``groups`` is read as an array of strings; other shapes grant no group."""
        assert (await verify(groups=["a", 3, "b"])).groups == {"a", "b"}
        assert (await verify(groups="a")).groups == frozenset()

    async def test_overlong_subject_is_refused(self) -> None:
        """A ``sub`` that cannot be recorded as an audit actor (varchar 255) → 401."""
        with pytest.raises(Unauthenticated, match="longer than 255"):
            await verify(sub="s" * 256)


class TestParse:
    def test_yaml_and_json_give_the_same_policy(self, tmp_path: Path) -> None:
        """The same grants in YAML and in JSON load to the same policy."""
        from_yaml = load_policy_file(write(tmp_path, POLICY_YAML))
        import yaml

        document = yaml.safe_load(POLICY_YAML)
        from_json = load_policy_file(write(tmp_path, json.dumps(document), "policy.json"))
        assert from_yaml.grants == from_json.grants
        assert len(from_yaml.grants) == 3

    def test_matching(self, tmp_path: Path) -> None:
        """sub, verified email (any case) and group principals each match; others get nothing."""
        policy = load_policy_file(write(tmp_path, POLICY_YAML))
        none: frozenset[str] = frozenset()
        assert policy.scopes_for(Principal("x", none, email="OPS@Example.com")) == {
            "omni-secrets:read"
        }
        assert policy.scopes_for(
            Principal("x", none, groups=frozenset({"other", "omni-operators"}))
        ) == {"omni-secrets:read", "omni-secrets:rotate"}
        assert policy.scopes_for(Principal("robot-7", none)) == {"omni-secrets:refresh"}
        assert policy.scopes_for(Principal("ops@example.com", none)) == none
        assert policy.scopes_for(Principal("x", none, email="dev@example.com")) == none

    def test_empty_grants_is_a_valid_policy(self, tmp_path: Path) -> None:
        """``grants: []`` loads and grants nothing."""
        policy = load_policy_file(write(tmp_path, "grants: []\n"))
        assert policy.grants == ()

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "grants:\n  - principal: email:a@example.com\n    scopes: [omni-secrets:admin]\n",
                "grants[0] ('email:a@example.com'): unknown scope 'omni-secrets:admin'",
                id="unknown-scope",
            ),
            pytest.param(
                "grants:\n  - principal: a@example.com\n    scopes: [omni-secrets:read]\n",
                "grants[0] ('a@example.com'): principal must be sub:VALUE, email:VALUE or "
                "group:VALUE",
                id="no-prefix",
            ),
            pytest.param(
                "grants:\n  - principal: user:a\n    scopes: [omni-secrets:read]\n",
                "grants[0] ('user:a'): principal must be",
                id="unknown-prefix",
            ),
            pytest.param(
                "grants:\n  - principal: 'group:'\n    scopes: [omni-secrets:read]\n",
                "grants[0] ('group:'): principal must be",
                id="empty-value",
            ),
            pytest.param(
                "grants:\n"
                "  - {principal: email:a@example.com, scopes: [omni-secrets:read]}\n"
                "  - {principal: email:A@example.com, scopes: [omni-secrets:rotate]}\n",
                "grants[1]: duplicate principal 'email:A@example.com' (already granted in "
                "grants[0])",
                id="duplicate-principal",
            ),
            pytest.param(
                "grants:\n  - {principal: sub:a, scopes: [omni-secrets:read, omni-secrets:read]}\n",
                "grants[0] ('sub:a'): a scope is listed twice",
                id="duplicate-scope",
            ),
            pytest.param(
                "grants:\n  - principal: sub:a\n    scopes: [omni-secrets:read\n",
                "invalid YAML at line",
                id="invalid-yaml",
            ),
            pytest.param("- sub:a\n", "must be a mapping with a 'grants' list", id="a-list"),
            pytest.param("", "must be a mapping with a 'grants' list", id="empty-file"),
            pytest.param("grants: sub:a\n", "'grants' must be a list", id="grants-not-list"),
            pytest.param(
                "grant:\n  - {principal: sub:a, scopes: [omni-secrets:read]}\n",
                "unknown top-level key 'grant'",
                id="misspelt-grants",
            ),
            pytest.param(
                "grants:\n  - {principal: sub:a, scope: [omni-secrets:read]}\n",
                "grants[0] ('sub:a'): unknown key 'scope'",
                id="misspelt-scopes",
            ),
            pytest.param(
                "grants:\n  - {principal: sub:a, scopes: []}\n",
                "grants[0] ('sub:a'): 'scopes' must be a non-empty list",
                id="no-scopes",
            ),
            pytest.param(
                "grants:\n  - {scopes: [omni-secrets:read]}\n",
                "grants[0]: 'principal' must be a non-empty string",
                id="no-principal",
            ),
        ],
    )
    def test_invalid_file_one_line_naming_file_and_entry(
        self, tmp_path: Path, text: str, expected: str
    ) -> None:
        """Every invalid file is refused with one line naming the file and the entry."""
        path = write(tmp_path, text)
        with pytest.raises(AuthPolicyInvalid) as caught:
            load_policy_file(path)
        assert isinstance(caught.value, ConfigurationRejected)
        message = caught.value.message
        assert "\n" not in message
        assert f"OMNI_AUTH_POLICY_FILE={path!r}: " in message
        assert expected in message

    def test_invalid_json_names_line(self, tmp_path: Path) -> None:
        """A ``.json`` file is decoded as JSON, and a JSON error names its line."""
        path = write(tmp_path, '{"grants": [\n  {"principal": "sub:a",}\n]}', "policy.json")
        with pytest.raises(AuthPolicyInvalid, match="invalid JSON at line 2"):
            load_policy_file(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that cannot be read is refused, named."""
        with pytest.raises(AuthPolicyInvalid, match="cannot be read: No such file"):
            load_policy_file(str(tmp_path / "absent.yaml"))

    def test_parse_policy_rejects_non_string_scope(self) -> None:
        """A scope that is not a string is an unknown scope."""
        with pytest.raises(AuthPolicyInvalid, match="unknown scope 3"):
            parse_policy({"grants": [{"principal": "sub:a", "scopes": [3]}]}, source="inline")


class TestReload:
    async def test_reload_adds_a_grant_and_a_bad_reload_keeps_it(self, tmp_path: Path) -> None:
        """A reload takes effect at the next verification; a malformed one changes nothing."""
        path = write(tmp_path, "grants: []\n")
        source = AuthPolicySource(path)
        verifier = PolicyVerifier(Hs256Verifier(secret=SECRET, audience=AUDIENCE), source)
        caller = token(sub="robot-7")
        assert (await verifier.verify(caller)).scopes == frozenset()

        write(tmp_path, POLICY_YAML)
        with capture_logs() as logs:
            assert source.reload() is True
        assert logs[-1]["event"] == "auth_policy.reloaded" and logs[-1]["grants"] == 3
        assert (await verifier.verify(caller)).scopes == {"omni-secrets:refresh"}

        write(tmp_path, "grants:\n  - principal: robot-7\n    scopes: [omni-secrets:read]\n")
        with capture_logs() as logs:
            assert source.reload() is False
        assert logs[-1]["event"] == "auth_policy.reload_rejected"
        assert logs[-1]["log_level"] == "error"
        assert "grants[0] ('robot-7'): principal must be" in logs[-1]["reason"]
        assert logs[-1]["grants_in_force"] == 3
        assert (await verifier.verify(caller)).scopes == {"omni-secrets:refresh"}

    async def test_token_scopes_and_grants_are_unioned(self, tmp_path: Path) -> None:
        """A token's own scopes stay; the policy only adds."""
        source = AuthPolicySource(write(tmp_path, POLICY_YAML))
        verifier = PolicyVerifier(Hs256Verifier(secret=SECRET, audience=AUDIENCE), source)
        principal = await verifier.verify(
            token(scp=["apex-omni:read"], email="ops@example.com", email_verified=True)
        )
        assert principal.scopes == {"apex-omni:read", "omni-secrets:read"}
        assert principal.actor == "ops@example.com"

    def test_no_policy_file_reload_is_a_no_op(self) -> None:
        """Without OMNI_AUTH_POLICY_FILE a reload changes nothing and says why."""
        source = AuthPolicySource(None)
        with capture_logs() as logs:
            assert source.reload() is False
        assert logs[-1]["event"] == "auth_policy.reload_skipped"
        assert source.policy.grants == ()

    def test_invalid_file_at_construction_raises(self, tmp_path: Path) -> None:
        """Startup (constructing the source) refuses an invalid file."""
        with pytest.raises(AuthPolicyInvalid):
            AuthPolicySource(write(tmp_path, "grants: [1]\n"))


BASE_ENV = {"OMNI_ENVIRONMENT": "test", "GCP_PROJECT_ID": "omni-test"}


class TestProviderSettings:
    def test_google_preset(self, clean_env: pytest.MonkeyPatch) -> None:
        """OMNI_AUTH_PROVIDER=google presets Google's JWKS and both issuer spellings."""
        settings = load_settings(**BASE_ENV, OMNI_AUTH_PROVIDER="google")
        assert settings.auth_mode is AuthMode.JWKS
        assert settings.effective_auth_jwks_url == GOOGLE_JWKS_URL
        assert settings.effective_auth_issuers == GOOGLE_ISSUERS
        assert GOOGLE_ISSUERS == ("https://accounts.google.com", "accounts.google.com")
        assert settings.auth_audience == "omni-secrets"

    def test_explicit_variables_win(self, clean_env: pytest.MonkeyPatch) -> None:
        """Explicit OMNI_AUTH_JWKS_URL / OMNI_AUTH_ISSUER override the preset."""
        settings = load_settings(
            **BASE_ENV,
            OMNI_AUTH_PROVIDER="google",
            OMNI_AUTH_JWKS_URL="http://127.0.0.1:9/certs",
            OMNI_AUTH_ISSUER="https://issuer.example",
        )
        assert settings.effective_auth_jwks_url == "http://127.0.0.1:9/certs"
        assert settings.effective_auth_issuers == ("https://issuer.example",)

    def test_unknown_provider_is_refused(self, clean_env: pytest.MonkeyPatch) -> None:
        """An unknown provider names the variable and the value."""
        with pytest.raises(ConfigurationRejected, match="OMNI_AUTH_PROVIDER='okta'"):
            load_settings(**BASE_ENV, OMNI_AUTH_PROVIDER="okta")

    def test_no_provider_no_jwks(self, clean_env: pytest.MonkeyPatch) -> None:
        """Without provider or JWKS URL there is no JWKS mode and no issuer constraint."""
        settings = load_settings(**BASE_ENV)
        assert settings.effective_auth_jwks_url is None
        assert settings.effective_auth_issuers == ()
        assert settings.auth_mode is None


def test_the_example_policy_in_deploy_is_valid() -> None:
    """``deploy/auth-policy.example.yaml`` loads (it is what operators copy)."""
    example = Path(__file__).parents[2] / "deploy" / "auth-policy.example.yaml"
    policy = load_policy_file(str(example))
    assert {g.principal.partition(":")[0] for g in policy.grants} == {"email", "group"}


class TestAsciiCaseOnly:
    """Contract section 17: e-mail principals match after ASCII lower-casing only."""

    def test_ascii_case_still_matches(self, tmp_path: Path) -> None:
        """``OPS@STRASSE.Example`` is the grant's ``ops@strasse.example`` (ASCII case)."""
        policy = load_policy_file(
            write(
                tmp_path,
                "grants:\n  - principal: email:ops@strasse.example\n"
                "    scopes: [omni-secrets:read]\n",
            )
        )
        caller = Principal("x", frozenset(), email="OPS@STRASSE.Example")
        assert policy.scopes_for(caller) == {"omni-secrets:read"}

    @pytest.mark.parametrize(
        ("granted", "presented"),
        [
            pytest.param("ops@strasse.example", "ops@straße.example", id="sharp-s-folds-to-ss"),
            pytest.param("ops@straße.example", "ops@strasse.example", id="ss-is-not-sharp-s"),
            pytest.param("ops@key.example", "ops@\u212aey.example", id="kelvin-sign-lowers-to-k"),
            pytest.param("ops@i.example", "ops@\u0130.example", id="dotted-capital-i"),
            pytest.param("\u03c3@example.com", "\u03c2@example.com", id="final-sigma"),
        ],
    )
    def test_unicode_case_folding_does_not_match(
        self, tmp_path: Path, granted: str, presented: str
    ) -> None:
        """An address that equals the grant only under Unicode folding or lower-casing gets
        nothing (``str.casefold`` and ``str.lower`` would both have matched some of these)."""
        policy = load_policy_file(
            write(
                tmp_path,
                f"grants:\n  - principal: 'email:{granted}'\n    scopes: [omni-secrets:read]\n",
            )
        )
        assert policy.scopes_for(Principal("x", frozenset(), email=presented)) == frozenset()
        assert policy.scopes_for(Principal("x", frozenset(), email=granted.upper())) == (
            {"omni-secrets:read"} if granted.isascii() else frozenset()
        )

    def test_unicode_lookalikes_are_distinct_principals(self, tmp_path: Path) -> None:
        """Two grants that differ beyond ASCII case are two principals, not a duplicate."""
        policy = load_policy_file(
            write(
                tmp_path,
                "grants:\n"
                "  - {principal: 'email:ops@strasse.example', scopes: [omni-secrets:read]}\n"
                "  - {principal: 'email:ops@straße.example', scopes: [omni-secrets:rotate]}\n",
            )
        )
        assert len(policy.grants) == 2
        assert policy.scopes_for(Principal("x", frozenset(), email="ops@straße.example")) == {
            "omni-secrets:rotate"
        }

    async def test_through_the_verifier(self, tmp_path: Path) -> None:
        """End to end: a verified ``ops@straße.example`` token gets no grant of
        ``ops@strasse.example``; the granted address does."""
        source = AuthPolicySource(
            write(
                tmp_path,
                "grants:\n  - principal: email:ops@strasse.example\n"
                "    scopes: [omni-secrets:read]\n",
            )
        )
        verifier = PolicyVerifier(Hs256Verifier(secret=SECRET, audience=AUDIENCE), source)
        folded = await verifier.verify(token(email="ops@straße.example", email_verified=True))
        assert folded.scopes == frozenset()
        exact = await verifier.verify(token(email="Ops@Strasse.example", email_verified=True))
        assert exact.scopes == {"omni-secrets:read"}


DUPLICATE_KEY_FILES = [
    pytest.param(
        "grants:\n"
        "  - principal: sub:robot-7\n"
        "    scopes: [omni-secrets:read]\n"
        "    scopes: [omni-secrets:read, omni-secrets:rotate]\n",
        "duplicate key 'scopes'",
        "line 4",
        id="scopes-twice",
    ),
    pytest.param(
        "grants:\n"
        "  - principal: sub:robot-7\n"
        "    principal: sub:robot-8\n"
        "    scopes: [omni-secrets:read]\n",
        "duplicate key 'principal'",
        "line 3",
        id="principal-twice",
    ),
    pytest.param(
        "grants: []\ngrants:\n  - {principal: sub:robot-7, scopes: [omni-secrets:rotate]}\n",
        "duplicate key 'grants'",
        "line 2",
        id="grants-twice",
    ),
    pytest.param(
        "grants:\n"
        "  - {principal: sub:a, scopes: [omni-secrets:read], scopes: [omni-secrets:rotate]}\n",
        "duplicate key 'scopes'",
        "line 2",
        id="flow-mapping",
    ),
]


class TestDuplicateKeys:
    """Contract section 17: a policy file with duplicate keys is refused (startup and SIGHUP)."""

    @pytest.mark.parametrize(("text", "problem", "where"), DUPLICATE_KEY_FILES)
    def test_yaml_duplicate_key_is_refused_naming_it(
        self, tmp_path: Path, text: str, problem: str, where: str
    ) -> None:
        """PyYAML alone keeps the last value (a silent grant); the loader refuses instead."""
        import yaml

        assert isinstance(yaml.safe_load(text), dict)  # what the old loader silently accepted
        path = write(tmp_path, text)
        with pytest.raises(AuthPolicyInvalid) as caught:
            load_policy_file(path)
        message = caught.value.message
        assert "\n" not in message
        assert f"OMNI_AUTH_POLICY_FILE={path!r}: " in message
        assert problem in message and where in message

    def test_json_duplicate_key_is_refused(self, tmp_path: Path) -> None:
        """The same rule for a ``.json`` policy (``json.loads`` keeps the last value)."""
        text = (
            '{"grants": [{"principal": "sub:a", "scopes": ["omni-secrets:read"],'
            ' "scopes": ["omni-secrets:rotate"]}]}'
        )
        path = write(tmp_path, text, "policy.json")
        with pytest.raises(AuthPolicyInvalid, match="duplicate key 'scopes'"):
            load_policy_file(path)

    def test_refused_at_startup(self, tmp_path: Path) -> None:
        """Constructing the source (what ``serve`` and ``api.install`` do) refuses it."""
        with pytest.raises(AuthPolicyInvalid, match="duplicate key 'scopes'"):
            AuthPolicySource(write(tmp_path, DUPLICATE_KEY_FILES[0].values[0]))

    async def test_refused_on_reload_keeping_the_policy_in_force(self, tmp_path: Path) -> None:
        """A reload of a file with a duplicate key is rejected and changes nothing."""
        path = write(
            tmp_path, "grants:\n  - {principal: sub:robot-7, scopes: [omni-secrets:read]}\n"
        )
        source = AuthPolicySource(path)
        verifier = PolicyVerifier(Hs256Verifier(secret=SECRET, audience=AUDIENCE), source)
        write(tmp_path, DUPLICATE_KEY_FILES[0].values[0])
        with capture_logs() as logs:
            assert source.reload() is False
        assert logs[-1]["event"] == "auth_policy.reload_rejected"
        assert "duplicate key 'scopes'" in logs[-1]["reason"]
        assert (await verifier.verify(token(sub="robot-7"))).scopes == {"omni-secrets:read"}

    def test_anchors_and_distinct_keys_still_load(self, tmp_path: Path) -> None:
        """The check refuses repeated keys only: anchors and aliases, and the same key in
        different mappings, load as before."""
        policy = load_policy_file(
            write(
                tmp_path,
                "grants:\n"
                "  - {principal: sub:a, scopes: &both [omni-secrets:read, omni-secrets:rotate]}\n"
                "  - {principal: sub:b, scopes: *both}\n",
            )
        )
        assert [g.principal for g in policy.grants] == ["sub:a", "sub:b"]
        assert policy.grants[1].scopes == {"omni-secrets:read", "omni-secrets:rotate"}
