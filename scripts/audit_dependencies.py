"""Audit the runtime dependencies of omni-secrets for known vulnerabilities.

Usage (from the repo root, inside the dev venv; ``make audit`` runs exactly this)::

    .venv/bin/python scripts/audit_dependencies.py [--offline] [--advisory-db PATH]
                                                   [--ignore-file PATH] [--today YYYY-MM-DD] [-v]

What it audits: the packages and versions actually installed in this interpreter's environment for
``omni-secrets``' runtime requirements, transitively, extras included (``psycopg[binary]``,
``uvicorn[standard]``, ...) and environment markers evaluated. The dev and bench tools are not part
of the service and are left out.

Where the advisories come from, in this order:

1. ``pip-audit``'s live PyPI service, when a short probe of it answers within a few seconds and
   pip-audit then audits every package (a service that answers "not found" for a release would make
   pip-audit skip it and report a false "clean", so a skipped package counts as unavailable too);
2. otherwise the offline snapshot of the PyPA Advisory Database (OSV YAML): ``--advisory-db``, else
   ``$OMNI_ADVISORY_DB``, else ``../shared/advisories/pypa`` relative to the repo root. Its age is
   printed, since a clean result against an old snapshot is a floor, not a guarantee.

Findings are silenced only by an unexpired entry in ``audit-ignore.toml`` (repo root); an expired
entry fails the audit. See docs/dependency-audit.md.

Exit codes: 0 no finding left; 1 a finding not ignored, or an expired ignore entry; 2 usage or
setup error (snapshot missing, malformed ignore file, a runtime requirement not installed), reported
as one line on stderr.

No advisory source at all (the live service unreachable and no snapshot at the default location,
as on a fresh clone with nothing beside it): outside CI the audit prints a loud
``audit: SKIPPED`` line on stderr and exits 0, so ``make test`` still runs the tests (as the
promtool step does); with ``CI=true`` it stays a setup error (exit 2). A snapshot asked for
explicitly (``--advisory-db`` or ``$OMNI_ADVISORY_DB``) that is missing is always an error.

This is read-only: it never installs, upgrades or writes anything.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PROJECT = "omni-secrets"
REPO_ROOT = Path(__file__).resolve().parent.parent
ADVISORY_DB_ENV = "OMNI_ADVISORY_DB"
DEFAULT_ADVISORY_DB = Path("..") / "shared" / "advisories" / "pypa"  # relative to the repo root
DEFAULT_IGNORE_FILE = "audit-ignore.toml"

# pip-audit's default service asks this URL once per package; the probe asks it once, so a
# service that is down, firewalled or a mirror without the per-release API is seen in seconds.
PYPI_RELEASE_JSON = "https://pypi.org/pypi/{name}/{version}/json"
PROBE_TIMEOUT_SECONDS = 3.0
PIP_AUDIT_SOCKET_TIMEOUT_SECONDS = 5
PIP_AUDIT_TIMEOUT_SECONDS = 120.0

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_SETUP = 2

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_README_COMMIT_RE = re.compile(r"\bcommit\s+([0-9a-f]{7,40})\b", re.IGNORECASE)
_README_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


class AuditSetupError(Exception):
    """The audit cannot run as configured (exit 2): the message is the one line shown."""


class SnapshotMissing(AuditSetupError):
    """The offline snapshot is not where it was looked for (no ``vulns/`` folder there)."""


class LiveServiceUnavailable(Exception):
    """pip-audit's live service did not give a complete answer; the message says why."""


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Package:
    """One installed distribution: ``name`` is PEP 503-normalised, ``version`` as installed."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class InstalledDistribution:
    """What the audit needs from an installed distribution's metadata."""

    name: str
    version: str
    requires: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """One advisory that applies to one installed package."""

    package: str
    version: str
    advisory_id: str
    aliases: tuple[str, ...] = ()
    fixed_in: tuple[str, ...] = ()

    def ids(self) -> frozenset[str]:
        """The advisory id and its aliases, case-folded, for matching ignore entries."""
        return frozenset(i.casefold() for i in (self.advisory_id, *self.aliases))


EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True, slots=True)
class RangeEvent:
    """One OSV range event; ``version`` is the raw string (``"0"`` means "from the start")."""

    kind: EventKind
    version: str


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """One PyPI ``affected[]`` entry: the ECOSYSTEM ranges and the explicit version list."""

    name: str
    ranges: tuple[tuple[RangeEvent, ...], ...] = ()
    versions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Advisory:
    """One OSV advisory, reduced to what matching and reporting need."""

    id: str
    aliases: tuple[str, ...] = ()
    affected: tuple[AffectedPackage, ...] = ()
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """Where the offline snapshot came from, read from its README (``None`` when not stated)."""

    commit: str | None
    date: str | None


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    """An accepted advisory: silences findings whose id or alias is ``advisory_id``."""

    advisory_id: str
    reason: str
    expires: date

    def is_expired(self, today: date) -> bool:
        """True after the expiry date; the entry still holds on the date itself."""
        return today > self.expires


@dataclass(frozen=True, slots=True)
class Verdict:
    """The findings after the ignore list: what fails the audit and what was silenced."""

    reported: tuple[Finding, ...]
    ignored: tuple[tuple[Finding, IgnoreEntry], ...] = ()
    expired: tuple[IgnoreEntry, ...] = ()
    unused: tuple[IgnoreEntry, ...] = ()

    @property
    def passed(self) -> bool:
        """No finding left and no expired ignore entry."""
        return not self.reported and not self.expired


# --------------------------------------------------------------------------------------------------
# The runtime dependency set
# --------------------------------------------------------------------------------------------------

DistributionLookup = Callable[[str], InstalledDistribution | None]


def installed_distribution(name: str) -> InstalledDistribution | None:
    """Read an installed distribution's name, version and requirements from ``importlib.metadata``.

    Args:
        name: the distribution name, in any spelling (lookup is normalised).

    Returns:
        The distribution, or ``None`` when nothing of that name is installed.
    """
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return InstalledDistribution(
        name=dist.metadata["Name"] or name,
        version=dist.version,
        requires=tuple(dist.requires or ()),
    )


def _applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    # Evaluate once with no extra (plain requirements) and once per extra asked for, so that
    # `extra == "crypto"` holds exactly when [crypto] was requested.
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras))


def runtime_dependencies(
    project: str = PROJECT, *, lookup: DistributionLookup = installed_distribution
) -> list[Package]:
    """Resolve the installed runtime dependency set of ``project``, transitively.

    Walks ``Requires-Dist`` from the project down, evaluating environment markers for this
    interpreter and following the extras each requirement asks for (``psycopg[binary]`` pulls in
    ``psycopg-binary``). The project's own extras (dev, bench) are never requested, so the dev tools
    stay out. A package reached twice with different extras is revisited for the new extras.

    Args:
        project: the root distribution (not itself part of the result).
        lookup: how to read an installed distribution; injectable for tests.

    Returns:
        The packages, sorted by normalised name, with the versions actually installed.

    Raises:
        AuditSetupError: the project or a runtime requirement is not installed, or its metadata
            holds an unparsable requirement.
    """
    root = lookup(project)
    if root is None:
        raise AuditSetupError(
            f"{project} is not installed in this environment ({sys.executable}); "
            "run `make .venv/.installed-dev` first"
        )
    root_key = canonicalize_name(project)
    found: dict[str, Package] = {}
    extras_done: dict[str, set[str]] = {}
    queue: list[tuple[InstalledDistribution, frozenset[str], str]] = [(root, frozenset(), project)]
    while queue:
        dist, extras, wanted_by = queue.pop()
        for line in dist.requires:
            try:
                req = Requirement(line)
            except InvalidRequirement as exc:
                raise AuditSetupError(
                    f"unparsable requirement {line!r} in {dist.name}: {exc}"
                ) from exc
            if not _applies(req, extras):
                continue
            key = canonicalize_name(req.name)
            if key == root_key:
                continue
            req_extras = {canonicalize_name(e) for e in req.extras}
            done = extras_done.get(key)
            if done is not None and req_extras <= done:
                continue
            child = lookup(req.name)
            if child is None:
                raise AuditSetupError(
                    f"runtime requirement {req} of {dist.name} (needed by {wanted_by}) is not "
                    "installed; run `make .venv/.installed-dev`"
                )
            found[key] = Package(name=key, version=child.version)
            new_extras = req_extras - (done or set())
            extras_done[key] = (done or set()) | req_extras
            # A revisit passes only the extras not walked yet; the plain requirements it meets
            # again are already in extras_done and skipped above.
            queue.append((child, frozenset(new_extras), dist.name))
    return [found[k] for k in sorted(found)]


# --------------------------------------------------------------------------------------------------
# The offline snapshot (OSV YAML)
# --------------------------------------------------------------------------------------------------


def advisory_db_path(repo_root: Path, environ: Mapping[str, str]) -> Path:
    """Where the offline snapshot is: ``$OMNI_ADVISORY_DB``, else ``../shared/...`` of the repo.

    Without the variable, the first existing ``shared/advisories/pypa`` beside the repo root
    (CI's layout: the clone with a copy of shared/ beside it) or, failing that, beside one of its
    ancestors (a git worktree nested a level deeper than the main checkout) is used; no further up.

    Args:
        repo_root: the checkout's root directory.
        environ: the process environment (injectable for tests).

    Returns:
        The snapshot directory (the one holding ``vulns/``). When none exists, the path beside
        the repo root, so that the error names where it was expected.
    """
    override = environ.get(ADVISORY_DB_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    root = repo_root.resolve()
    primary = (root / DEFAULT_ADVISORY_DB).resolve()
    relative = DEFAULT_ADVISORY_DB.relative_to("..")
    # Two levels only: beside the checkout, or beside its parent (a nested worktree). Searching
    # further up would let an unrelated shared/ folder elsewhere on the machine answer.
    for ancestor in list(root.parents)[:2]:
        candidate = ancestor / relative
        if (candidate / "vulns").is_dir():
            return candidate
    return primary


def _vulns_dir(db: Path) -> Path:
    vulns = db / "vulns"
    if not vulns.is_dir():
        raise SnapshotMissing(
            f"advisory snapshot not found: {vulns} is not a directory "
            f"(set {ADVISORY_DB_ENV} or --advisory-db to the folder holding vulns/)"
        )
    return vulns


def read_snapshot_info(db: Path) -> SnapshotInfo:
    """Read the snapshot's commit and date from a README beside or above ``db``.

    Args:
        db: the snapshot directory.

    Returns:
        The commit and date; either is ``None`` when no README states it.
    """
    for folder in (db, db.parent):
        for name in ("README.md", "README"):
            readme = folder / name
            if readme.is_file():
                text = readme.read_text(encoding="utf-8", errors="replace")
                commit = _README_COMMIT_RE.search(text)
                when = _README_DATE_RE.search(text)
                return SnapshotInfo(
                    commit=commit.group(1) if commit else None,
                    date=when.group(1) if when else None,
                )
    return SnapshotInfo(commit=None, date=None)


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value if isinstance(item, (str, int, float)))


def _parse_affected(entry: Any) -> AffectedPackage | None:
    if not isinstance(entry, dict):
        return None
    package = entry.get("package")
    if not isinstance(package, dict) or package.get("ecosystem") != "PyPI":
        return None
    name = package.get("name")
    if not isinstance(name, str) or not name:
        return None
    ranges: list[tuple[RangeEvent, ...]] = []
    for rng in entry.get("ranges") or ():
        # GIT ranges speak commits and SEMVER is not PyPI's scheme; only ECOSYSTEM compares
        # with packaging.version.
        if not isinstance(rng, dict) or rng.get("type") != "ECOSYSTEM":
            continue
        events: list[RangeEvent] = []
        for event in rng.get("events") or ():
            if not isinstance(event, dict):
                continue
            for kind in _EVENT_KINDS:
                if kind in event and event[kind] is not None:
                    events.append(RangeEvent(kind=kind, version=str(event[kind])))
        if events:
            ranges.append(tuple(events))
    return AffectedPackage(
        name=canonicalize_name(name),
        ranges=tuple(ranges),
        versions=_str_list(entry.get("versions")),
    )


def parse_advisory(document: Any, *, source: str = "<advisory>") -> Advisory:
    """Reduce one loaded OSV document to an :class:`Advisory`.

    Args:
        document: the YAML (or JSON) document, as loaded.
        source: where it came from, for the error message.

    Returns:
        The advisory; ``affected`` keeps only PyPI entries.

    Raises:
        AuditSetupError: the document is not a mapping with a string ``id``.
    """
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        raise AuditSetupError(f"malformed advisory {source}: expected a mapping with an 'id'")
    affected = tuple(
        parsed
        for parsed in (_parse_affected(entry) for entry in document.get("affected") or ())
        if parsed is not None
    )
    return Advisory(
        id=document["id"],
        aliases=_str_list(document.get("aliases")),
        affected=affected,
        withdrawn=bool(document.get("withdrawn")),
    )


def load_advisories(db: Path) -> list[Advisory]:
    """Load every advisory of the snapshot at ``db`` (``db/vulns/<package>/*.yaml``).

    Args:
        db: the snapshot directory.

    Returns:
        All advisories, withdrawn ones included (matching skips them).

    Raises:
        AuditSetupError: ``db/vulns`` is missing, or a file is not valid YAML / not an advisory.
    """
    vulns = _vulns_dir(db)
    # The C loader reads the ~2,700 files in about a second; the pure-Python one takes ~10x.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    advisories: list[Advisory] = []
    for path in sorted(vulns.glob("*/*.y*ml")):
        try:
            document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise AuditSetupError(f"cannot read advisory {path}: {exc}") from exc
        advisories.append(parse_advisory(document, source=str(path)))
    return advisories


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: Sequence[RangeEvent]) -> bool:
    # OSV evaluation: walk the events in version order ("0" first); each one at or below the
    # installed version switches "affected" on (introduced) or off (fixed; last_affected strictly
    # below). Events whose version does not parse cannot be placed and are skipped.
    placed: list[tuple[tuple[int, Version], RangeEvent]] = []
    for event in events:
        if event.kind == "introduced" and event.version == "0":
            placed.append(((0, Version("0")), event))
            continue
        parsed = _version(event.version)
        if parsed is not None:
            placed.append(((1, parsed), event))
    placed.sort(key=lambda item: item[0])
    affected = False
    for (_, at), event in placed:
        if event.kind == "limit":
            if version >= at:
                return False
            continue
        if event.kind == "introduced":
            if event.version == "0" or version >= at:
                affected = True
        elif event.kind == "fixed":
            if version >= at:
                affected = False
        elif version > at:  # last_affected
            affected = False
    return affected


def is_affected(version: str, affected: AffectedPackage) -> bool:
    """Whether ``version`` falls in ``affected``: listed explicitly or inside an ECOSYSTEM range.

    Versions compare with ``packaging.version`` (so ``1.0`` equals ``1.0.0``); an installed version
    that is not PEP 440 matches only an identical string in the explicit list.

    Args:
        version: the installed version.
        affected: one PyPI ``affected[]`` entry.

    Returns:
        True when that version is affected.
    """
    parsed = _version(version)
    if parsed is None:
        return version in affected.versions
    for listed in affected.versions:
        other = _version(listed)
        if (other == parsed) if other is not None else (listed == version):
            return True
    return any(_in_range(parsed, events) for events in affected.ranges)


def _fixed_versions(version: str, entries: Iterable[AffectedPackage]) -> tuple[str, ...]:
    # Only fixes above the installed version help; a fix of an older branch would be a downgrade.
    installed = _version(version)
    fixes: dict[Version, str] = {}
    for entry in entries:
        for events in entry.ranges:
            for event in events:
                fixed = _version(event.version) if event.kind == "fixed" else None
                if fixed is not None and (installed is None or fixed > installed):
                    fixes.setdefault(fixed, event.version)
    return tuple(fixes[v] for v in sorted(fixes))


def audit_against_snapshot(
    packages: Iterable[Package], advisories: Iterable[Advisory]
) -> list[Finding]:
    """Match installed packages against snapshot advisories.

    Names compare PEP 503-normalised (``PyJWT`` = ``pyjwt``, ``typing_extensions`` =
    ``typing-extensions``); withdrawn advisories are skipped. One finding per package and advisory.

    Args:
        packages: the installed runtime packages.
        advisories: the snapshot's advisories.

    Returns:
        The findings, sorted by package then advisory id.
    """
    by_name: dict[str, list[tuple[Advisory, AffectedPackage]]] = {}
    for advisory in advisories:
        if advisory.withdrawn:
            continue
        for entry in advisory.affected:
            by_name.setdefault(entry.name, []).append((advisory, entry))
    findings: list[Finding] = []
    for package in packages:
        matched: dict[str, tuple[Advisory, list[AffectedPackage]]] = {}
        for advisory, entry in by_name.get(canonicalize_name(package.name), ()):
            if is_affected(package.version, entry):
                matched.setdefault(advisory.id, (advisory, []))[1].append(entry)
        for advisory, entries in matched.values():
            findings.append(
                Finding(
                    package=canonicalize_name(package.name),
                    version=package.version,
                    advisory_id=advisory.id,
                    aliases=advisory.aliases,
                    fixed_in=_fixed_versions(package.version, entries),
                )
            )
    return sorted(findings, key=lambda f: (f.package, f.advisory_id))


# --------------------------------------------------------------------------------------------------
# pip-audit against its live service
# --------------------------------------------------------------------------------------------------

LiveAudit = Callable[[Sequence[Package]], list[Finding]]


def _fetch_release_json(target: str, timeout: float) -> Any:
    request = urllib.request.Request(target, headers={"Accept": "application/json"})  # noqa: S310
    try:
        # The URL is our https constant, never user input.
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise LiveServiceUnavailable(f"HTTP {exc.code} from {target}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LiveServiceUnavailable(f"no answer from {target} ({reason})") from exc
    except ValueError as exc:
        raise LiveServiceUnavailable(f"{target} did not answer JSON") from exc


def probe_pypi(
    package: Package, *, timeout: float = PROBE_TIMEOUT_SECONDS, url: str = PYPI_RELEASE_JSON
) -> None:
    """Check that pip-audit's PyPI service answers for one release, within ``timeout`` seconds.

    Asks the same per-release JSON endpoint pip-audit asks and requires its ``vulnerabilities``
    key: a proxy or mirror that answers "404" there would otherwise make pip-audit skip every
    package and report a false clean. The request runs in a daemon thread joined with a deadline,
    because urllib's timeout does not cover name resolution, which can hang far longer.

    Args:
        package: a release that exists on PyPI.
        timeout: connect/read timeout in seconds; the whole probe gives up one second later.
        url: the endpoint template (``{name}``, ``{version}``).

    Raises:
        LiveServiceUnavailable: no answer in time, an HTTP error, or not the expected JSON.
    """
    target = url.format(name=package.name, version=package.version)
    outcome: list[Any] = []

    def fetch() -> None:
        try:
            outcome.append(_fetch_release_json(target, timeout))
        except LiveServiceUnavailable as exc:
            outcome.append(exc)

    worker = threading.Thread(target=fetch, name="audit-probe", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    if not outcome:
        raise LiveServiceUnavailable(f"no answer from {target} within {timeout + 1.0:.0f}s")
    body = outcome[0]
    if isinstance(body, LiveServiceUnavailable):
        raise body
    if not isinstance(body, dict) or "vulnerabilities" not in body:
        raise LiveServiceUnavailable(f"{target} answered without vulnerability data")


def parse_pip_audit_json(text: str) -> list[Finding]:
    """Turn ``pip-audit -f json`` output into findings.

    Args:
        text: pip-audit's stdout.

    Returns:
        The findings, sorted by package then advisory id.

    Raises:
        LiveServiceUnavailable: the output is not pip-audit's JSON, or pip-audit skipped a package
            (its result would be incomplete, not clean).
    """
    try:
        report = json.loads(text)
        dependencies = report["dependencies"]
        if not isinstance(dependencies, list):
            raise TypeError("dependencies is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise LiveServiceUnavailable(f"unexpected pip-audit output ({exc})") from exc
    skipped = [d for d in dependencies if isinstance(d, dict) and "skip_reason" in d]
    if skipped:
        raise LiveServiceUnavailable(
            f"pip-audit could not audit {len(skipped)} of {len(dependencies)} packages "
            f"(first: {skipped[0]['skip_reason']})"
        )
    findings: list[Finding] = []
    for dep in dependencies:
        for vuln in dep.get("vulns") or ():
            findings.append(
                Finding(
                    package=canonicalize_name(str(dep["name"])),
                    version=str(dep["version"]),
                    advisory_id=str(vuln["id"]),
                    aliases=_str_list(vuln.get("aliases")),
                    fixed_in=_str_list(vuln.get("fix_versions")),
                )
            )
    return sorted(findings, key=lambda f: (f.package, f.advisory_id))


def pip_audit_live(packages: Sequence[Package]) -> list[Finding]:
    """Audit ``packages`` with pip-audit against its live PyPI service.

    Probes the service first (a few seconds at most), then runs pip-audit from this venv on the
    exact pins (``--no-deps --disable-pip``: nothing is resolved or installed) with a hard timeout.

    Args:
        packages: the runtime packages to audit (at least one).

    Returns:
        pip-audit's findings.

    Raises:
        LiveServiceUnavailable: pip-audit is not installed, the probe fails, pip-audit fails, times
            out or skips a package.
    """
    if not packages:
        return []
    if importlib.util.find_spec("pip_audit") is None:
        raise LiveServiceUnavailable("pip-audit is not installed in this environment")
    probe_pypi(packages[0])
    with tempfile.TemporaryDirectory(prefix="omni-audit-") as tmp:
        requirements = Path(tmp) / "runtime-requirements.txt"
        requirements.write_text("".join(f"{p.name}=={p.version}\n" for p in packages))
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "--requirement",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "--format",
            "json",
            "--aliases",
            "on",
            "--desc",
            "off",
            "--progress-spinner",
            "off",
            "--timeout",
            str(PIP_AUDIT_SOCKET_TIMEOUT_SECONDS),
        ]
        try:
            # Fixed argv (this interpreter, our temp file); no shell.
            done = subprocess.run(  # noqa: S603
                command,
                capture_output=True,
                text=True,
                timeout=PIP_AUDIT_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LiveServiceUnavailable(
                f"pip-audit did not finish within {PIP_AUDIT_TIMEOUT_SECONDS:.0f}s"
            ) from exc
    # pip-audit exits 1 when it found something; anything else is its own failure.
    if done.returncode not in (0, 1):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LiveServiceUnavailable(f"pip-audit exited {done.returncode}: {last}")
    return parse_pip_audit_json(done.stdout)


# --------------------------------------------------------------------------------------------------
# The ignore list
# --------------------------------------------------------------------------------------------------


def _parse_expiry(value: Any, where: str) -> date:
    # TOML reads `2025-01-31` as a date and `"2025-01-31"` as a string; accept both, but not a
    # datetime (a date is what reviewers agree on).
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise AuditSetupError(f"{where}: 'expires' must be a date YYYY-MM-DD, got {value!r}")


def parse_ignore_entries(document: Mapping[str, Any], *, source: str) -> list[IgnoreEntry]:
    """Validate a loaded ``audit-ignore.toml``.

    The file holds ``[[ignore]]`` tables with exactly ``id``, ``reason`` and ``expires``; anything
    else (unknown keys, an empty reason, a duplicate id) is rejected rather than half-applied.

    Args:
        document: the parsed TOML.
        source: the file name, for messages.

    Returns:
        The entries, in file order.

    Raises:
        AuditSetupError: the document does not have that shape.
    """
    unknown = set(document) - {"ignore"}
    if unknown:
        raise AuditSetupError(f"{source}: unknown top-level keys {sorted(unknown)}")
    raw = document.get("ignore", [])
    if not isinstance(raw, list):
        raise AuditSetupError(f"{source}: 'ignore' must be an array of tables ([[ignore]])")
    entries: list[IgnoreEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        where = f"{source}: ignore entry {index}"
        if not isinstance(item, dict):
            raise AuditSetupError(f"{where}: must be a table")
        extra = set(item) - {"id", "reason", "expires"}
        if extra:
            raise AuditSetupError(f"{where}: unknown keys {sorted(extra)}")
        advisory_id, reason = item.get("id"), item.get("reason")
        if not isinstance(advisory_id, str) or not advisory_id.strip():
            raise AuditSetupError(f"{where}: 'id' must be a non-empty string")
        if not isinstance(reason, str) or not reason.strip():
            raise AuditSetupError(f"{where} ({advisory_id}): 'reason' must say why")
        if advisory_id.casefold() in seen:
            raise AuditSetupError(f"{where}: duplicate id {advisory_id}")
        seen.add(advisory_id.casefold())
        expires = _parse_expiry(item.get("expires"), f"{where} ({advisory_id})")
        entries.append(
            IgnoreEntry(advisory_id=advisory_id.strip(), reason=reason.strip(), expires=expires)
        )
    return entries


def load_ignore_file(path: Path) -> list[IgnoreEntry]:
    """Read the ignore list; a missing file means no entries.

    Args:
        path: the TOML file.

    Returns:
        The entries.

    Raises:
        AuditSetupError: the file is not valid TOML or not of the expected shape.
    """
    if not path.exists():
        return []
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AuditSetupError(f"cannot read {path}: {exc}") from exc
    return parse_ignore_entries(document, source=path.name)


def apply_ignores(
    findings: Iterable[Finding], entries: Sequence[IgnoreEntry], today: date
) -> Verdict:
    """Silence findings named by unexpired entries; report expired entries.

    An entry matches a finding whose advisory id or one of whose aliases equals the entry's id
    (case-insensitive), so the same entry holds whether the live service reports the GHSA id or
    the snapshot the PYSEC id. An expired entry silences nothing and fails the audit.

    Args:
        findings: what the audit found.
        entries: the ignore list.
        today: the date to judge expiry by (injectable for tests).

    Returns:
        The verdict.
    """
    active = [e for e in entries if not e.is_expired(today)]
    expired = tuple(e for e in entries if e.is_expired(today))
    used: set[str] = set()
    reported: list[Finding] = []
    ignored: list[tuple[Finding, IgnoreEntry]] = []
    for finding in findings:
        ids = finding.ids()
        entry = next((e for e in active if e.advisory_id.casefold() in ids), None)
        if entry is None:
            reported.append(finding)
        else:
            ignored.append((finding, entry))
            used.add(entry.advisory_id.casefold())
    unused = tuple(e for e in active if e.advisory_id.casefold() not in used)
    return Verdict(reported=tuple(reported), ignored=tuple(ignored), expired=expired, unused=unused)


# --------------------------------------------------------------------------------------------------
# Output and entry point
# --------------------------------------------------------------------------------------------------


def format_finding(finding: Finding) -> str:
    """One line per finding: package, version, advisory id, aliases and fixed-in versions."""
    aliases = ",".join(finding.aliases) or "-"
    fixed = ",".join(finding.fixed_in) or "none"
    return (
        f"VULNERABLE {finding.package} {finding.version} {finding.advisory_id} "
        f"aliases={aliases} fixed-in={fixed}"
    )


def describe_snapshot(db: Path, info: SnapshotInfo, today: date) -> str:
    """The source line for the offline snapshot, with its commit, date and age."""
    parts = []
    if info.commit:
        parts.append(f"commit {info.commit[:12]}")
    if info.date:
        try:
            age = (today - date.fromisoformat(info.date)).days
            parts.append(f"{info.date}, {age} days old")
        except ValueError:
            parts.append(info.date)
    stated = "; ".join(parts) if parts else "date and commit unknown: no README states them"
    return (
        f"source: offline snapshot of the PyPA Advisory Database at {db} ({stated}); "
        "newer advisories are not in it"
    )


@dataclass
class _Output:
    stdout: TextIO
    stderr: TextIO

    def say(self, line: str) -> None:
        print(line, file=self.stdout)

    def error(self, line: str) -> None:
        print(f"audit: error: {line}", file=self.stderr)

    def skipped(self, line: str) -> None:
        print(f"audit: SKIPPED: {line}", file=self.stderr)


def _may_skip(flag: Path | None, environ: Mapping[str, str]) -> bool:
    """Whether a missing snapshot may skip the audit: outside CI, at the default location only."""
    explicit = flag is not None or bool(environ.get(ADVISORY_DB_ENV, "").strip())
    return not explicit and environ.get("CI", "").strip().lower() != "true"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audit_dependencies.py",
        description="Audit omni-secrets' runtime dependencies for known vulnerabilities.",
        epilog="Exit codes: 0 clean, 1 findings or expired ignore entries, 2 usage/setup error.",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="skip pip-audit's live service and use the offline snapshot",
    )
    parser.add_argument(
        "--advisory-db",
        type=Path,
        help=f"snapshot folder holding vulns/ (default: ${ADVISORY_DB_ENV}, "
        f"else {DEFAULT_ADVISORY_DB} from the repo root)",
    )
    parser.add_argument(
        "--ignore-file",
        type=Path,
        default=REPO_ROOT / DEFAULT_IGNORE_FILE,
        help=f"ignore list (default: {DEFAULT_IGNORE_FILE} at the repo root)",
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        help="judge ignore-entry expiry as of this date (YYYY-MM-DD; default: today)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list every audited package")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    today: date | None = None,
    environ: Mapping[str, str] | None = None,
    lookup: DistributionLookup = installed_distribution,
    live_audit: LiveAudit | None = pip_audit_live,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the audit and return its exit code (0 clean, 1 findings, 2 usage/setup error).

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
        today: the date for ignore expiry (default: ``--today`` or the system date).
        environ: the environment for ``OMNI_ADVISORY_DB`` (default: ``os.environ``).
        lookup: reads installed distributions (injectable for tests).
        live_audit: the live auditor, or ``None`` to always use the snapshot.
        stdout: where the report goes.
        stderr: where setup errors go (one line).

    Returns:
        The exit code.
    """
    out = _Output(stdout=stdout or sys.stdout, stderr=stderr or sys.stderr)
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error already
        return exc.code if isinstance(exc.code, int) else EXIT_SETUP
    today = today or args.today or date.today()
    environ = os.environ if environ is None else environ
    try:
        entries = load_ignore_file(args.ignore_file)
        packages = runtime_dependencies(lookup=lookup)
        out.say(
            f"audit: {len(packages)} runtime packages of {PROJECT} (dev and bench tools excluded)"
        )
        if args.verbose:
            out.say("audit: " + ", ".join(f"{p.name} {p.version}" for p in packages))
        findings: list[Finding] | None = None
        if live_audit is not None and not args.offline:
            try:
                findings = live_audit(packages)
                out.say("audit: source: pip-audit against its live PyPI vulnerability service")
            except LiveServiceUnavailable as exc:
                out.say(f"audit: pip-audit's live service is unavailable: {exc}")
        if findings is None:
            db = args.advisory_db or advisory_db_path(REPO_ROOT, environ)
            try:
                advisories = load_advisories(db)
            except SnapshotMissing as exc:
                if not _may_skip(args.advisory_db, environ):
                    raise
                out.skipped(
                    f"no advisory source is reachable ({exc}); the dependencies were NOT "
                    f"audited. Set {ADVISORY_DB_ENV} to a PyPA advisory-database checkout's "
                    "folder (the one holding vulns/), or run where pip-audit's service answers. "
                    "Under CI=true this is an error."
                )
                return EXIT_OK
            out.say("audit: " + describe_snapshot(db, read_snapshot_info(db), today))
            live = [a for a in advisories if not a.withdrawn]
            out.say(
                f"audit: {len(live)} advisories loaded ({len(advisories) - len(live)} withdrawn)"
            )
            findings = audit_against_snapshot(packages, advisories)
    except AuditSetupError as exc:
        out.error(str(exc))
        return EXIT_SETUP
    verdict = apply_ignores(findings, entries, today)
    for finding in verdict.reported:
        out.say(format_finding(finding))
    for finding, entry in verdict.ignored:
        out.say(
            f"IGNORED {finding.package} {finding.version} {finding.advisory_id} "
            f"until {entry.expires.isoformat()}: {entry.reason}"
        )
    for entry in verdict.expired:
        out.say(
            f"EXPIRED ignore entry {entry.advisory_id} in {args.ignore_file.name} expired on "
            f"{entry.expires.isoformat()} ({entry.reason}): upgrade, or renew the entry with a "
            "new reason and date"
        )
    for entry in verdict.unused:
        out.say(f"audit: note: ignore entry {entry.advisory_id} matches no finding; remove it?")
    summary = (
        f"{len(verdict.reported)} finding(s), {len(verdict.ignored)} ignored, "
        f"{len(verdict.expired)} expired ignore entr{'y' if len(verdict.expired) == 1 else 'ies'}"
    )
    if verdict.passed:
        out.say(f"audit: passed: {summary}")
        return EXIT_OK
    out.say(f"audit: FAILED: {summary}")
    return EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(main())
