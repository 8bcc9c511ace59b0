"""``promtool`` on the shipped alert rules and the dashboard's PromQL (deploy/).

promtool comes from Debian's ``prometheus`` package (``.ci/run`` unpacks it into ``.ci-tools``).
Without it these tests are skipped on a workstation, and fail under ``CI=true``: CI must check the
rules for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy_files import (
    RULES_FILE,
    RULES_LONG_TEST_FILE,
    RULES_TEST_FILE,
    alert_rules,
    dashboard_exprs,
    grafana_to_promql,
    load_dashboard,
    load_rules,
)


@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool executable on PATH (skip locally, fail under CI=true when missing)."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required under CI=true but is not on PATH", pytrace=False)
        pytest.skip("promtool is not on PATH (apt-get install prometheus, or run .ci/run)")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


class TestPromtool:
    def test_rules_file_is_valid(self, promtool: str) -> None:
        """promtool check rules accepts the rules file and counts every alert."""
        result = run(promtool, "check", "rules", str(RULES_FILE))
        assert result.returncode == 0, result.stdout + result.stderr
        expected = len(list(alert_rules(load_rules())))
        assert expected >= 15  # section 6, integrity and section 12 (GSM events) ones
        assert f"SUCCESS: {expected} rules found" in result.stdout

    def test_rule_unit_tests_pass(self, promtool: str) -> None:
        """promtool test rules runs every firing/not-firing case green."""
        result = run(promtool, "test", "rules", str(RULES_TEST_FILE))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_long_rule_unit_tests_pass(self, promtool: str) -> None:
        """The 30-day alerts' file (its own evaluation interval) runs green too."""
        result = run(promtool, "test", "rules", str(RULES_LONG_TEST_FILE))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_a_rollout_does_not_restart_the_30_days(self, promtool: str, tmp_path: Path) -> None:
        """Without ``max by`` the new pod's series would start the 30 days again: caught."""
        broken = RULES_FILE.read_text().replace(
            "max by (job, secret_type) (omni_secret_enabled_versions) > 2",
            "omni_secret_enabled_versions > 2",
        )
        assert broken != RULES_FILE.read_text()
        (tmp_path / RULES_FILE.name).write_text(broken)
        shutil.copy(RULES_LONG_TEST_FILE, tmp_path / RULES_LONG_TEST_FILE.name)
        result = run(promtool, "test", "rules", RULES_LONG_TEST_FILE.name, cwd=tmp_path)
        assert result.returncode != 0
        assert "OmniSecretsStaleVersionsEnabled" in result.stdout + result.stderr

    def test_a_broken_rule_is_caught(self, promtool: str, tmp_path: Path) -> None:
        """The unit tests fail when an alert's threshold changes (they test something)."""
        broken = RULES_FILE.read_text().replace(
            "increase(omni_audit_write_failures_total[5m]) > 0",
            "increase(omni_audit_write_failures_total[5m]) > 5",
        )
        assert broken != RULES_FILE.read_text()
        (tmp_path / RULES_FILE.name).write_text(broken)
        shutil.copy(RULES_TEST_FILE, tmp_path / RULES_TEST_FILE.name)
        result = run(promtool, "test", "rules", RULES_TEST_FILE.name, cwd=tmp_path)
        assert result.returncode != 0
        assert "OmniSecretsAuditWriteFailures" in result.stdout + result.stderr

    def test_dashboard_promql_parses(self, promtool: str, tmp_path: Path) -> None:
        """Every dashboard query (Grafana variables substituted) is valid PromQL."""
        exprs = [grafana_to_promql(expr) for _, expr in dashboard_exprs(load_dashboard())]
        rules = {
            "groups": [
                {
                    "name": "dashboard",
                    "rules": [
                        {"record": f"dashboard:query_{i}:value", "expr": expr}
                        for i, expr in enumerate(exprs)
                    ],
                }
            ]
        }
        path = tmp_path / "dashboard.rules.yml"
        path.write_text(yaml.safe_dump(rules))
        result = run(promtool, "check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
