"""Where API commands get their URL and token from (contract section 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_secrets.api.auth import Scope
from omni_secrets.cli._target import is_loopback, resolve_target, token_env_var

URL = "http://127.0.0.1:8080"


def resolve(environ: dict[str, str], **flags: object) -> tuple[str, str]:
    args: dict[str, object] = {
        "url": None,
        "token": None,
        "token_file": None,
        "insecure": False,
        "scope": Scope.READ,
    }
    args.update(flags)
    target = resolve_target(environ=environ, **args)  # type: ignore[arg-type]
    return target.url, target.token


def one_line_exit(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], **flags: object
) -> tuple[object, str]:
    with pytest.raises(SystemExit) as exited:
        resolve(environ, **flags)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return exited.value.code, err


class TestTokenEnvVar:
    @pytest.mark.parametrize(
        ("scope", "name"),
        [
            (Scope.READ, "OMNI_TOKEN_OMNI_SECRETS_READ"),
            (Scope.ROTATE, "OMNI_TOKEN_OMNI_SECRETS_ROTATE"),
            (Scope.BREAK_GLASS, "OMNI_TOKEN_OMNI_SECRETS_BREAK_GLASS"),
            (Scope.REFRESH, "OMNI_TOKEN_OMNI_SECRETS_REFRESH"),
            (Scope.APEX_READ, "OMNI_TOKEN_APEX_OMNI_READ"),
        ],
    )
    def test_naming_rule(self, scope: Scope, name: str) -> None:
        """Upper-case the scope and replace every run of other characters by one underscore."""
        assert token_env_var(scope) == name

    def test_names_are_distinct(self) -> None:
        """No two scopes share a variable."""
        assert len({token_env_var(s) for s in Scope}) == len(Scope)


class TestResolution:
    def test_flags_beat_the_environment(self) -> None:
        """--url and --token win over OMNI_URL and OMNI_TOKEN."""
        env = {"OMNI_URL": "http://127.0.0.2:1", "OMNI_TOKEN": "fake-env-token"}
        assert resolve(env, url=URL + "/", token="fake-flag-token") == (URL, "fake-flag-token")

    def test_environment_alone(self) -> None:
        """OMNI_URL and OMNI_TOKEN suffice."""
        assert resolve({"OMNI_URL": URL, "OMNI_TOKEN": "fake-env-token"}) == (
            URL,
            "fake-env-token",
        )

    def test_token_file_flag_and_env(self, tmp_path: Path) -> None:
        """--token-file and OMNI_TOKEN_FILE are read with whitespace stripped."""
        path = tmp_path / "token"
        path.write_text("  fake-file-token\n")
        assert resolve({"OMNI_URL": URL}, token_file=path)[1] == "fake-file-token"
        env = {"OMNI_URL": URL, "OMNI_TOKEN_FILE": str(path)}
        assert resolve(env)[1] == "fake-file-token"
        assert resolve(env, token="fake-flag-token")[1] == "fake-flag-token"

    def test_order_of_the_environment(self, tmp_path: Path) -> None:
        """OMNI_TOKEN, then OMNI_TOKEN_FILE, then the per-scope variable."""
        path = tmp_path / "token"
        path.write_text("fake-file-token")
        env = {
            "OMNI_URL": URL,
            "OMNI_TOKEN": "fake-generic",
            "OMNI_TOKEN_FILE": str(path),
            "OMNI_TOKEN_OMNI_SECRETS_READ": "fake-scoped",
        }
        assert resolve(env)[1] == "fake-generic"
        del env["OMNI_TOKEN"]
        assert resolve(env)[1] == "fake-file-token"
        del env["OMNI_TOKEN_FILE"]
        assert resolve(env)[1] == "fake-scoped"

    def test_per_scope_variable_follows_the_command_scope(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A command needing rotate does not pick the read token."""
        env = {"OMNI_URL": URL, "OMNI_TOKEN_OMNI_SECRETS_READ": "fake-scoped"}
        code, err = one_line_exit(capsys, env, scope=Scope.ROTATE)
        assert code == 2
        assert "OMNI_TOKEN_OMNI_SECRETS_ROTATE" in err

    def test_missing_url_names_both_ways(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No URL: exit 2 with one line naming --url and OMNI_URL."""
        code, err = one_line_exit(capsys, {"OMNI_TOKEN": "fake"})
        assert code == 2
        assert "--url" in err and "OMNI_URL" in err

    def test_missing_token_names_both_ways(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No token: exit 2 with one line naming the flags and the variables."""
        code, err = one_line_exit(capsys, {"OMNI_URL": URL})
        assert code == 2
        for way in ("--token", "--token-file", "OMNI_TOKEN", "OMNI_TOKEN_FILE"):
            assert way in err

    def test_unreadable_or_empty_token_file(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A token file that is missing or blank is exit 2, not an empty bearer token."""
        code, err = one_line_exit(capsys, {"OMNI_URL": URL}, token_file=tmp_path / "missing")
        assert code == 2 and "cannot read" in err
        blank = tmp_path / "blank"
        blank.write_text("\n")
        code, err = one_line_exit(capsys, {"OMNI_URL": URL}, token_file=blank)
        assert code == 2 and "empty" in err

    def test_both_token_flags_is_usage_error(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """--token and --token-file together are ambiguous."""
        code, _ = one_line_exit(capsys, {"OMNI_URL": URL}, token="x", token_file=tmp_path)
        assert code == 2


class TestPlainHttp:
    @pytest.mark.parametrize(
        "url", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]
    )
    def test_loopback_http_is_allowed(self, url: str) -> None:
        """Plain http to this machine is fine (the dev service)."""
        assert resolve({"OMNI_TOKEN": "fake"}, url=url)[0] == url

    def test_remote_http_is_refused_unless_insecure(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """http:// to another host exits 2; --insecure allows it; https is always fine."""
        remote = "http://omni-secrets.internal:8080"
        code, err = one_line_exit(capsys, {"OMNI_TOKEN": "fake"}, url=remote)
        assert code == 2 and "--insecure" in err
        assert resolve({"OMNI_TOKEN": "fake"}, url=remote, insecure=True)[0] == remote
        secure = "https://omni-secrets.internal"
        assert resolve({"OMNI_TOKEN": "fake"}, url=secure)[0] == secure

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("127.0.0.1", True),
            ("127.1.2.3", True),
            ("::1", True),
            ("localhost", True),
            ("10.0.0.1", False),
            ("example.com", False),
            ("localhost.example.com", False),
            ("evil.localhost", False),  # contract section 17: not *.localhost
            ("LOCALHOST.", True),
        ],
    )
    def test_is_loopback(self, host: str, loopback: bool) -> None:
        """Loopback means 127/8, ::1 and localhost only (not its subdomains)."""
        assert is_loopback(host) is loopback


class TestTokenSource:
    def source(self, environ: dict[str, str], **flags: object) -> str:
        args: dict[str, object] = {
            "url": None, "token": None, "token_file": None, "insecure": False,
            "scope": Scope.READ,
        }  # fmt: skip
        args.update(flags)
        return resolve_target(environ={"OMNI_URL": URL, **environ}, **args).token_source  # type: ignore[arg-type]

    def test_each_way_names_itself(self, tmp_path: Path) -> None:
        path = tmp_path / "token"
        path.write_text("fake-file-token")
        scoped = {"OMNI_TOKEN_OMNI_SECRETS_READ": "fake-scoped"}
        assert self.source(scoped, token="fake-flag") == "--token"
        assert self.source(scoped, token_file=path) == f"--token-file {path}"
        assert self.source({"OMNI_TOKEN": "fake"}) == "OMNI_TOKEN"
        assert self.source({"OMNI_TOKEN": "fake", **scoped}) == (
            "OMNI_TOKEN (which beats OMNI_TOKEN_OMNI_SECRETS_READ)"
        )
        assert self.source({"OMNI_TOKEN_FILE": str(path)}) == f"OMNI_TOKEN_FILE ({path})"
        assert self.source(scoped) == "OMNI_TOKEN_OMNI_SECRETS_READ"


class TestUserInfo:
    def test_a_bad_url_is_printed_without_user_info(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, err = one_line_exit(capsys, {}, url="ftp://fake-user:fake-pass@example.com/")
        assert code == 2
        assert "ftp://example.com/" in err and "fake-pass" not in err and "fake-user" not in err
