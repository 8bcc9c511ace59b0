"""The dependency audit script (scripts/audit_dependencies.py) against tiny fixture snapshots."""

from __future__ import annotations

import importlib.util
import io
import json
import socket
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit_dependencies.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve their module through sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


audit = _load_script()

FAKE_COMMIT = "0123456789abcdef" * 2 + "01234567"
README = (
    f"# Python advisories, offline snapshot\n\nSnapshot of commit {FAKE_COMMIT} (2024-10-10).\n"
)


def write_advisory(db: Path, folder: str, document: Mapping[str, Any]) -> None:
    """Write one OSV advisory as YAML under ``db/vulns/<folder>/<id>.yaml``."""
    target = db / "vulns" / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{document['id']}.yaml").write_text(yaml.safe_dump(dict(document)))


def osv(
    advisory_id: str,
    name: str,
    *,
    events: Sequence[Mapping[str, str]] = (),
    versions: Sequence[str] = (),
    aliases: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """An OSV document with one PyPI ``affected`` entry."""
    affected: dict[str, Any] = {"package": {"name": name, "ecosystem": "PyPI"}}
    if events:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": [dict(e) for e in events]}]
    if versions:
        affected["versions"] = list(versions)
    return {
        "id": advisory_id,
        "details": "fake advisory for tests",
        "affected": [affected],
        "aliases": list(aliases),
        "modified": "2024-01-01T00:00:00Z",
        **extra,
    }


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """An advisory folder laid out as shared/advisories: README beside ``pypa/vulns/``."""
    root = tmp_path / "advisories"
    db = root / "pypa"
    (db / "vulns").mkdir(parents=True)
    (root / "README.md").write_text(README)
    write_advisory(
        db,
        "pyjwt",
        osv(
            "PYSEC-0000-1",
            "PyJWT",
            events=[{"introduced": "0"}, {"fixed": "2.4.0"}],
            aliases=["CVE-0000-0001", "GHSA-fake-0000-0001"],
        ),
    )
    write_advisory(
        db,
        "typing-extensions",
        osv(
            "PYSEC-0000-2",
            "typing_extensions",
            events=[{"introduced": "4.0"}, {"last_affected": "4.2.0"}],
        ),
    )
    write_advisory(db, "foo-bar", osv("PYSEC-0000-3", "Foo.Bar", versions=["1.0", "1.1"]))
    write_advisory(
        db,
        "pyjwt",
        osv(
            "PYSEC-0000-4",
            "pyjwt",
            events=[{"introduced": "0"}, {"fixed": "9.0"}],
            withdrawn="2024-02-02T00:00:00Z",
        ),
    )
    return db


def packages(*pairs: tuple[str, str]) -> list[Any]:
    return [audit.Package(name=name, version=version) for name, version in pairs]


def findings_of(db: Path, *pairs: tuple[str, str]) -> list[Any]:
    return audit.audit_against_snapshot(packages(*pairs), audit.load_advisories(db))


class FakeDistributions:
    """Installed distributions as a dict: name -> (version, requirements)."""

    def __init__(self, dists: Mapping[str, tuple[str, Sequence[str]]]) -> None:
        self.dists = dict(dists)
        self.looked_up: list[str] = []

    def __call__(self, name: str) -> Any:
        self.looked_up.append(name)
        key = name.lower().replace("_", "-")
        if key not in self.dists:
            return None
        version, requires = self.dists[key]
        return audit.InstalledDistribution(name=name, version=version, requires=tuple(requires))


def fake_project(**dists: tuple[str, Sequence[str]]) -> FakeDistributions:
    return FakeDistributions({"omni-secrets": ("0.1.0", ["pyjwt[crypto]==2.3.0"]), **dists})


class TestRuntimeDependencies:
    def test_follows_extras_and_markers_transitively(self) -> None:
        """Extras asked for pull their packages in; other extras and false markers stay out."""
        lookup = FakeDistributions(
            {
                "omni-secrets": (
                    "0.1.0",
                    [
                        "Foo[one]==1.0",
                        "dev-tool==1.0; extra == 'dev'",
                        "win-only==1.0; sys_platform == 'win32'",
                    ],
                ),
                "foo": ("1.0", ["bar>=1", "baz; extra == 'one'", "qux; extra == 'two'"]),
                "bar": ("2.0", []),
                "baz": ("3.0", []),
            }
        )
        found = audit.runtime_dependencies(lookup=lookup)
        assert [(p.name, p.version) for p in found] == [
            ("bar", "2.0"),
            ("baz", "3.0"),
            ("foo", "1.0"),
        ]

    def test_revisits_a_package_for_extras_asked_later(self) -> None:
        """A package first reached without extras is walked again when another asks for one."""
        lookup = FakeDistributions(
            {
                "omni-secrets": ("0.1.0", ["a==1", "b==1"]),
                "a": ("1", ["c; extra == 'x'"]),
                "b": ("1", ["a[x]"]),
                "c": ("1", []),
            }
        )
        assert {p.name for p in audit.runtime_dependencies(lookup=lookup)} == {"a", "b", "c"}

    def test_a_missing_requirement_is_a_setup_error(self) -> None:
        """A runtime requirement that is not installed stops the audit, naming it."""
        lookup = FakeDistributions({"omni-secrets": ("0.1.0", ["ghost==1.0"])})
        with pytest.raises(audit.AuditSetupError, match="ghost"):
            audit.runtime_dependencies(lookup=lookup)

    def test_the_project_itself_must_be_installed(self) -> None:
        """Without omni-secrets installed there is nothing to resolve from."""
        with pytest.raises(audit.AuditSetupError, match="omni-secrets is not installed"):
            audit.runtime_dependencies(lookup=FakeDistributions({}))

    def test_the_real_venv_has_runtime_extras_and_no_dev_tools(self) -> None:
        """In this venv, extras' packages are in and the dev tools (pytest, mypy, pip-audit) out."""
        names = {p.name for p in audit.runtime_dependencies()}
        assert {"psycopg-binary", "cryptography", "greenlet", "httptools", "pyjwt"} <= names
        assert names.isdisjoint({"pytest", "mypy", "pip-audit", "ruff", "omni-secrets"})


class TestSnapshotMatching:
    def test_introduced_fixed_range(self, snapshot: Path) -> None:
        """A version below ``fixed`` is affected; the fixed version is not."""
        found = findings_of(snapshot, ("pyjwt", "2.3.0"), ("requests", "2.3.0"))
        assert [(f.package, f.advisory_id) for f in found] == [("pyjwt", "PYSEC-0000-1")]
        assert findings_of(snapshot, ("pyjwt", "2.4.0")) == []

    def test_introduced_is_inclusive_and_lower_bounds(self, tmp_path: Path) -> None:
        """``introduced: 1.0`` affects 1.0 and up, not 0.9."""
        write_advisory(
            tmp_path, "x", osv("PYSEC-0000-9", "x", events=[{"introduced": "1.0"}, {"fixed": "2"}])
        )
        assert [f.version for f in findings_of(tmp_path, ("x", "1.0"))] == ["1.0"]
        assert findings_of(tmp_path, ("x", "0.9")) == []

    def test_last_affected_range(self, snapshot: Path) -> None:
        """``last_affected`` includes that version and excludes anything newer."""
        assert [f.advisory_id for f in findings_of(snapshot, ("typing-extensions", "4.2"))] == [
            "PYSEC-0000-2"
        ]
        assert findings_of(snapshot, ("typing-extensions", "4.2.1")) == []
        assert findings_of(snapshot, ("typing-extensions", "3.9")) == []

    def test_explicit_versions_list(self, snapshot: Path) -> None:
        """A version in ``versions`` is affected even without a range; others are not."""
        assert [f.advisory_id for f in findings_of(snapshot, ("foo-bar", "1.1"))] == [
            "PYSEC-0000-3"
        ]
        assert findings_of(snapshot, ("foo-bar", "1.2")) == []

    def test_withdrawn_advisory_is_ignored(self, snapshot: Path) -> None:
        """PYSEC-0000-4 would match pyjwt 2.5 but is withdrawn, so nothing is reported."""
        assert findings_of(snapshot, ("pyjwt", "2.5.0")) == []

    def test_names_are_normalised(self, snapshot: Path) -> None:
        """Names match PEP 503-normalised: case, ``_``, ``.`` and ``-`` do not matter."""
        found = findings_of(
            snapshot, ("PyJWT", "2.0"), ("typing_extensions", "4.1"), ("foo_bar", "1.0")
        )
        assert [(f.package, f.advisory_id) for f in found] == [
            ("foo-bar", "PYSEC-0000-3"),
            ("pyjwt", "PYSEC-0000-1"),
            ("typing-extensions", "PYSEC-0000-2"),
        ]

    def test_other_ecosystems_and_git_ranges_do_not_match(self, tmp_path: Path) -> None:
        """Only PyPI entries and ECOSYSTEM ranges count."""
        doc = osv("PYSEC-0000-5", "x")
        doc["affected"] = [
            {
                "package": {"name": "x", "ecosystem": "npm"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            },
            {
                "package": {"name": "x", "ecosystem": "PyPI"},
                "ranges": [{"type": "GIT", "repo": "fake", "events": [{"introduced": "0"}]}],
            },
        ]
        write_advisory(tmp_path, "x", doc)
        assert findings_of(tmp_path, ("x", "1.0")) == []

    def test_fixed_in_lists_only_fixes_above_the_installed_version(self, tmp_path: Path) -> None:
        """Of two branches' fixes, the one below the installed version is not offered."""
        events = [{"introduced": "0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}]
        write_advisory(tmp_path, "x", osv("PYSEC-0000-6", "x", events=events))
        (found,) = findings_of(tmp_path, ("x", "2.1"))
        assert found.fixed_in == ("2.3",)
        assert findings_of(tmp_path, ("x", "1.7")) == []

    def test_version_equality_follows_pep_440(self, tmp_path: Path) -> None:
        """``1.0`` in the list matches an installed ``1.0.0``."""
        write_advisory(tmp_path, "x", osv("PYSEC-0000-7", "x", versions=["1.0"]))
        assert len(findings_of(tmp_path, ("x", "1.0.0"))) == 1

    def test_a_non_pep440_version_matches_only_its_exact_string(self, tmp_path: Path) -> None:
        """An installed version packaging cannot parse is matched against the list verbatim."""
        write_advisory(
            tmp_path,
            "x",
            osv("PYSEC-0000-10", "x", events=[{"introduced": "0"}], versions=["1.0-custom"]),
        )
        assert len(findings_of(tmp_path, ("x", "1.0-custom"))) == 1
        assert findings_of(tmp_path, ("x", "2.0-custom")) == []

    def test_malformed_yaml_is_a_setup_error(self, tmp_path: Path) -> None:
        """A broken advisory file stops the audit, naming the file."""
        folder = tmp_path / "vulns" / "x"
        folder.mkdir(parents=True)
        (folder / "PYSEC-BAD.yaml").write_text("id: [unclosed\n")
        with pytest.raises(audit.AuditSetupError, match=r"PYSEC-BAD\.yaml"):
            audit.load_advisories(tmp_path)

    def test_missing_snapshot_is_a_setup_error(self, tmp_path: Path) -> None:
        """A folder without vulns/ is reported as a missing snapshot."""
        with pytest.raises(audit.AuditSetupError, match="advisory snapshot not found"):
            audit.load_advisories(tmp_path / "nowhere")


class TestSnapshotLocation:
    def test_reads_commit_and_date_from_the_readme(self, snapshot: Path) -> None:
        """The README beside ``pypa/`` gives the commit and the date."""
        info = audit.read_snapshot_info(snapshot)
        assert info.commit == FAKE_COMMIT
        assert info.date == "2024-10-10"

    def test_without_readme_both_are_unknown(self, tmp_path: Path) -> None:
        """No README: neither commit nor date is made up."""
        assert audit.read_snapshot_info(tmp_path / "pypa") == audit.SnapshotInfo(None, None)

    def test_environment_overrides_the_path(self, tmp_path: Path) -> None:
        """``OMNI_ADVISORY_DB`` wins over the default location."""
        chosen = audit.advisory_db_path(tmp_path / "repo", {"OMNI_ADVISORY_DB": "/x/pypa"})
        assert chosen == Path("/x/pypa")

    def test_default_is_shared_beside_the_repo_root(self, tmp_path: Path) -> None:
        """CI's layout: ``<parent>/shared/advisories/pypa`` beside the clone."""
        (tmp_path / "shared" / "advisories" / "pypa" / "vulns").mkdir(parents=True)
        chosen = audit.advisory_db_path(tmp_path / "repo", {})
        assert chosen == (tmp_path / "shared" / "advisories" / "pypa").resolve()

    def test_a_nested_worktree_finds_shared_further_up(self, tmp_path: Path) -> None:
        """A worktree one level deeper still finds the snapshot beside an ancestor."""
        (tmp_path / "shared" / "advisories" / "pypa" / "vulns").mkdir(parents=True)
        chosen = audit.advisory_db_path(tmp_path / "wt" / "repo", {})
        assert chosen == (tmp_path / "shared" / "advisories" / "pypa").resolve()

    def test_when_nothing_exists_the_expected_path_is_named(self, tmp_path: Path) -> None:
        """With no snapshot anywhere the path beside the repo root is returned for the error."""
        chosen = audit.advisory_db_path(tmp_path / "wt" / "repo", {})
        assert chosen == (tmp_path / "wt" / "shared" / "advisories" / "pypa").resolve()


def entry(advisory_id: str, expires: date, reason: str = "fake reason") -> Any:
    return audit.IgnoreEntry(advisory_id=advisory_id, reason=reason, expires=expires)


FINDING_A = audit.Finding("pyjwt", "2.3.0", "PYSEC-0000-1", ("CVE-0000-0001",), ("2.4.0",))
FINDING_B = audit.Finding("pyjwt", "2.3.0", "PYSEC-0000-8", (), ())


class TestIgnoreList:
    def test_parses_dates_and_date_strings(self, tmp_path: Path) -> None:
        """``expires`` may be a TOML date or a ``"YYYY-MM-DD"`` string."""
        path = tmp_path / "audit-ignore.toml"
        path.write_text(
            "# comment\n"
            '[[ignore]]\nid = "PYSEC-0000-1"\nreason = "not reachable"\nexpires = 2025-01-31\n'
            '[[ignore]]\nid = "GHSA-fake"\nreason = "waiting"\nexpires = "2025-02-01"\n'
        )
        assert audit.load_ignore_file(path) == [
            entry("PYSEC-0000-1", date(2025, 1, 31), "not reachable"),
            entry("GHSA-fake", date(2025, 2, 1), "waiting"),
        ]

    def test_missing_file_means_no_entries(self, tmp_path: Path) -> None:
        """No ignore file is the same as an empty one."""
        assert audit.load_ignore_file(tmp_path / "absent.toml") == []

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ('[[ignore]]\nid = "X"\nexpires = 2025-01-01\n', "reason"),
            ('[[ignore]]\nid = "X"\nreason = "r"\nexpires = "01/02/2025"\n', "YYYY-MM-DD"),
            ('[[ignore]]\nid = "X"\nreason = "r"\nexpires = 2025-01-01\nextra = 1\n', "unknown"),
            ('[[ignore]]\nreason = "r"\nexpires = 2025-01-01\n', "'id'"),
            ("ignores = []\n", "unknown top-level"),
            ('[[ignore]]\nid = "X"\nreason = "r"\nexpires = 2025-01-01T00:00:00\n', "YYYY-MM-DD"),
            ("[[ignore]\n", "cannot read"),
        ],
    )
    def test_rejects_malformed_entries(self, tmp_path: Path, body: str, message: str) -> None:
        """A malformed file is a setup error, never half-applied."""
        path = tmp_path / "audit-ignore.toml"
        path.write_text(body)
        with pytest.raises(audit.AuditSetupError, match=message):
            audit.load_ignore_file(path)

    def test_rejects_duplicate_ids(self, tmp_path: Path) -> None:
        """The same advisory listed twice is ambiguous and rejected."""
        path = tmp_path / "audit-ignore.toml"
        one = '[[ignore]]\nid = "X"\nreason = "r"\nexpires = 2025-01-01\n'
        path.write_text(one + one.replace('"X"', '"x"'))
        with pytest.raises(audit.AuditSetupError, match="duplicate"):
            audit.load_ignore_file(path)

    def test_silences_only_the_named_advisory(self) -> None:
        """An entry for one advisory leaves another advisory on the same package reported."""
        verdict = audit.apply_ignores(
            [FINDING_A, FINDING_B], [entry("PYSEC-0000-1", date(2025, 1, 31))], date(2025, 1, 1)
        )
        assert verdict.reported == (FINDING_B,)
        assert [f for f, _ in verdict.ignored] == [FINDING_A]
        assert not verdict.passed

    def test_an_alias_names_the_advisory_too(self) -> None:
        """An entry by CVE id silences the advisory that carries that alias."""
        verdict = audit.apply_ignores(
            [FINDING_A], [entry("cve-0000-0001", date(2025, 1, 31))], date(2025, 1, 1)
        )
        assert verdict.reported == ()
        assert verdict.passed

    def test_holds_through_its_expiry_date_and_fails_after(self) -> None:
        """On the expiry date the entry holds; the day after it fails and silences nothing."""
        entries = [entry("PYSEC-0000-1", date(2025, 1, 31))]
        on_the_day = audit.apply_ignores([FINDING_A], entries, date(2025, 1, 31))
        assert on_the_day.passed
        assert on_the_day.expired == ()
        after = audit.apply_ignores([FINDING_A], entries, date(2025, 2, 1))
        assert after.reported == (FINDING_A,)
        assert after.expired == tuple(entries)
        assert not after.passed

    def test_an_expired_entry_fails_even_without_its_finding(self) -> None:
        """A stale expired entry still fails, so it gets reviewed."""
        verdict = audit.apply_ignores(
            [], [entry("PYSEC-0000-1", date(2024, 1, 1))], date(2025, 1, 1)
        )
        assert not verdict.passed

    def test_an_unused_entry_is_noted_not_failed(self) -> None:
        """An unexpired entry that matches nothing passes but is listed as unused."""
        e = entry("PYSEC-0000-1", date(2025, 1, 31))
        verdict = audit.apply_ignores([], [e], date(2025, 1, 1))
        assert verdict.passed
        assert verdict.unused == (e,)


class TestPipAuditOutput:
    def test_parses_findings_with_aliases_and_fixes(self) -> None:
        """pip-audit's JSON becomes findings with aliases and fix versions."""
        text = json.dumps(
            {
                "dependencies": [
                    {
                        "name": "pyjwt",
                        "version": "2.3.0",
                        "vulns": [
                            {
                                "id": "GHSA-fake-0000-0001",
                                "fix_versions": ["2.4.0"],
                                "aliases": ["CVE-0000-0001"],
                            },
                        ],
                    },
                    {"name": "idna", "version": "3.20", "vulns": []},
                ],
                "fixes": [],
            }
        )
        assert audit.parse_pip_audit_json(text) == [
            audit.Finding("pyjwt", "2.3.0", "GHSA-fake-0000-0001", ("CVE-0000-0001",), ("2.4.0",))
        ]

    def test_a_skipped_package_makes_the_result_unusable(self) -> None:
        """A package pip-audit could not look up means "unknown", not "clean"."""
        text = json.dumps(
            {"dependencies": [{"name": "idna", "skip_reason": "Dependency not found on PyPI"}]}
        )
        with pytest.raises(audit.LiveServiceUnavailable, match="could not audit 1 of 1"):
            audit.parse_pip_audit_json(text)

    def test_garbage_is_unavailable(self) -> None:
        """Output that is not pip-audit's JSON is treated as the service being unavailable."""
        with pytest.raises(audit.LiveServiceUnavailable, match="unexpected"):
            audit.parse_pip_audit_json("Traceback ...")


class _Handler(BaseHTTPRequestHandler):
    status = 200
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pypi_stub() -> Iterator[tuple[str, type[_Handler]]]:
    """A loopback HTTP server standing in for the per-release JSON endpoint."""
    handler = type("Handler", (_Handler,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/pypi/{{name}}/{{version}}/json", handler
    finally:
        server.shutdown()
        server.server_close()


class TestProbe:
    def test_answers_with_vulnerability_data(self, pypi_stub: tuple[str, Any]) -> None:
        """A JSON answer with a ``vulnerabilities`` key means the service is usable."""
        url, handler = pypi_stub
        handler.body = b'{"info": {}, "vulnerabilities": []}'
        audit.probe_pypi(audit.Package("idna", "3.20"), url=url, timeout=2)

    def test_a_404_means_unavailable(self, pypi_stub: tuple[str, Any]) -> None:
        """A mirror without the per-release API answers 404: unavailable, not clean."""
        url, handler = pypi_stub
        handler.status, handler.body = 404, b""
        with pytest.raises(audit.LiveServiceUnavailable, match="HTTP 404"):
            audit.probe_pypi(audit.Package("idna", "3.20"), url=url, timeout=2)

    def test_json_without_vulnerabilities_means_unavailable(
        self, pypi_stub: tuple[str, Any]
    ) -> None:
        """An answer lacking vulnerability data cannot back an audit."""
        url, handler = pypi_stub
        handler.body = b'{"info": {}}'
        with pytest.raises(audit.LiveServiceUnavailable, match="without vulnerability data"):
            audit.probe_pypi(audit.Package("idna", "3.20"), url=url, timeout=2)

    def test_nothing_listening_means_unavailable(self) -> None:
        """A refused connection is reported as no answer."""
        with socket.socket() as sock:  # a port that was just free and is closed again
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(audit.LiveServiceUnavailable, match="no answer"):
            audit.probe_pypi(
                audit.Package("idna", "3.20"),
                url=f"http://127.0.0.1:{port}/pypi/{{name}}/{{version}}/json",
                timeout=2,
            )


def unavailable(_: Sequence[Any]) -> list[Any]:
    raise audit.LiveServiceUnavailable("fake service down")


def run_main(
    *argv: str,
    lookup: Any = None,
    today: date = date(2025, 1, 1),
    live_audit: Any = unavailable,
    environ: Mapping[str, str] | None = None,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = audit.main(
        list(argv),
        today=today,
        environ=environ or {},
        lookup=lookup
        or fake_project(
            pyjwt=("2.3.0", ["cryptography; extra == 'crypto'"]), cryptography=("43.0.0", [])
        ),
        live_audit=live_audit,
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


class TestMain:
    def test_reports_a_finding_with_aliases_and_fails(self, snapshot: Path, tmp_path: Path) -> None:
        """One VULNERABLE line with package, version, id, aliases and fix; exit 1."""
        code, out, _ = run_main(
            "--advisory-db", str(snapshot), "--ignore-file", str(tmp_path / "none.toml")
        )
        assert code == 1
        assert (
            "VULNERABLE pyjwt 2.3.0 PYSEC-0000-1 aliases=CVE-0000-0001,GHSA-fake-0000-0001 "
            "fixed-in=2.4.0"
        ) in out.splitlines()
        assert "audit: FAILED: 1 finding(s)" in out

    def test_names_the_snapshot_source_with_commit_and_date(self, snapshot: Path) -> None:
        """The source line gives the snapshot path, commit, date and age."""
        _, out, _ = run_main("--advisory-db", str(snapshot), today=date(2024, 10, 20))
        assert "offline snapshot" in out
        assert "commit 0123456789ab; 2024-10-10, 10 days old" in out
        assert "fake service down" in out

    def test_passes_when_nothing_matches(self, snapshot: Path) -> None:
        """A clean set exits 0."""
        lookup = fake_project(pyjwt=("2.4.0", []))
        code, out, _ = run_main("--advisory-db", str(snapshot), lookup=lookup)
        assert code == 0
        assert "audit: passed: 0 finding(s)" in out

    def test_an_ignore_entry_silences_until_expiry(self, snapshot: Path, tmp_path: Path) -> None:
        """Before expiry the run passes with an IGNORED line; after it, it fails with EXPIRED."""
        ignores = tmp_path / "audit-ignore.toml"
        ignores.write_text(
            '[[ignore]]\nid = "PYSEC-0000-1"\nreason = "fake: not reachable"\n'
            "expires = 2025-01-31\n"
        )
        args = ("--advisory-db", str(snapshot), "--ignore-file", str(ignores))
        code, out, _ = run_main(*args, today=date(2025, 1, 31))
        assert code == 0
        assert "IGNORED pyjwt 2.3.0 PYSEC-0000-1 until 2025-01-31: fake: not reachable" in out
        code, out, _ = run_main(*args, today=date(2025, 2, 1))
        assert code == 1
        assert "EXPIRED ignore entry PYSEC-0000-1" in out
        assert "VULNERABLE pyjwt 2.3.0 PYSEC-0000-1" in out

    def test_uses_the_live_service_when_it_answers(self, tmp_path: Path) -> None:
        """A live answer is used and no snapshot is needed."""
        live = [
            audit.Finding("pyjwt", "2.3.0", "GHSA-fake-0000-0001", ("CVE-0000-0001",), ("2.4.0",))
        ]
        code, out, _ = run_main(
            "--advisory-db", str(tmp_path / "missing"), live_audit=lambda packages: live
        )
        assert code == 1
        assert "source: pip-audit against its live PyPI vulnerability service" in out
        assert "VULNERABLE pyjwt 2.3.0 GHSA-fake-0000-0001 aliases=CVE-0000-0001" in out

    def test_live_audit_receives_the_runtime_set(self, snapshot: Path) -> None:
        """The live auditor is asked about the resolved runtime packages, extras included."""
        seen: list[list[tuple[str, str]]] = []

        def live(pkgs: Sequence[Any]) -> list[Any]:
            seen.append([(p.name, p.version) for p in pkgs])
            return []

        code, _, _ = run_main("--advisory-db", str(snapshot), live_audit=live)
        assert code == 0
        assert seen == [[("cryptography", "43.0.0"), ("pyjwt", "2.3.0")]]

    def test_offline_skips_the_live_service(self, snapshot: Path) -> None:
        """--offline never calls the live auditor."""

        def must_not_run(_: Sequence[Any]) -> list[Any]:
            raise AssertionError("live audit called")

        code, out, _ = run_main(
            "--offline", "--advisory-db", str(snapshot), live_audit=must_not_run
        )
        assert code == 1
        assert "offline snapshot" in out

    def test_environment_variable_locates_the_snapshot(self, snapshot: Path) -> None:
        """``OMNI_ADVISORY_DB`` is honoured when no flag is given."""
        code, out, _ = run_main(environ={"OMNI_ADVISORY_DB": str(snapshot)})
        assert code == 1
        assert str(snapshot) in out

    def test_missing_snapshot_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        """A missing snapshot exits 2 with a single clear line on stderr."""
        code, _, err = run_main("--advisory-db", str(tmp_path / "missing"))
        assert code == 2
        assert err.count("\n") == 1
        assert err.startswith("audit: error: advisory snapshot not found")

    def test_malformed_ignore_file_is_exit_2(self, snapshot: Path, tmp_path: Path) -> None:
        """A broken ignore file is a setup error, not a silent pass."""
        ignores = tmp_path / "audit-ignore.toml"
        ignores.write_text('[[ignore]]\nid = "X"\n')
        code, _, err = run_main("--advisory-db", str(snapshot), "--ignore-file", str(ignores))
        assert code == 2
        assert "reason" in err

    def test_bad_usage_is_exit_2(self) -> None:
        """An unknown option exits 2."""
        code, _, _ = run_main("--no-such-option")
        assert code == 2


class TestNoAdvisorySource:
    """A fresh clone with no snapshot beside it and no live service (issue 16, item 1)."""

    @pytest.fixture
    def bare_clone(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        root = tmp_path / "nothing-beside" / "clone"
        root.mkdir(parents=True)
        monkeypatch.setattr(audit, "REPO_ROOT", root)
        return root

    def test_outside_ci_the_audit_is_skipped_loudly(self, bare_clone: Path) -> None:
        """Outside CI a missing default snapshot exits 0 with one SKIPPED line on stderr."""
        code, out, err = run_main()
        assert code == 0
        assert err.count("\n") == 1
        assert err.startswith("audit: SKIPPED: no advisory source is reachable")
        assert "NOT audited" in err
        assert "fake service down" in out
        assert "passed" not in out

    def test_under_ci_it_stays_required(self, bare_clone: Path) -> None:
        """With CI=true the same situation is a setup error (exit 2)."""
        code, _, err = run_main(environ={"CI": "true"})
        assert code == 2
        assert err.startswith("audit: error: advisory snapshot not found")

    def test_an_explicit_missing_snapshot_is_never_skipped(self, bare_clone: Path) -> None:
        """A path given by flag or OMNI_ADVISORY_DB that is missing is an error, CI or not."""
        missing = str(bare_clone / "missing")
        assert run_main("--advisory-db", missing)[0] == 2
        assert run_main(environ={"OMNI_ADVISORY_DB": missing})[0] == 2

    def test_a_live_answer_needs_no_snapshot(self, bare_clone: Path) -> None:
        """When the live service answers, the missing snapshot does not matter."""
        code, out, err = run_main(live_audit=lambda packages: [])
        assert code == 0
        assert "audit: passed" in out
        assert err == ""
