"""Conventions of the shipped Prometheus alert rules, and that their unit tests cover each alert."""

from __future__ import annotations

import re

from tests.deploy_files import ROOT, alert_rules, load_rule_tests, load_rules

#: Runbooks other work streams write (rotation, break-glass); missing here until they land.
_CAMEL_CASE = re.compile(r"^OmniSecrets(?:[A-Z][a-z0-9]*)+$")


class TestAlertRules:
    def test_names_are_camel_case_and_unique(self) -> None:
        """Alert names are CamelCase, prefixed OmniSecrets, and unique."""
        names = [rule["alert"] for rule in alert_rules(load_rules())]
        assert len(names) == len(set(names))
        assert all(_CAMEL_CASE.match(name) for name in names), names

    def test_every_rule_has_severity_and_annotations(self) -> None:
        """Each rule has a severity label and summary, description and runbook_url annotations."""
        for rule in alert_rules(load_rules()):
            assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
            annotations = rule["annotations"]
            assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
            assert all(str(v).strip() for v in annotations.values()), rule["alert"]

    def test_runbook_urls_point_at_docs(self) -> None:
        """Every runbook_url names a file under docs/ that exists."""
        for rule in alert_rules(load_rules()):
            path = rule["annotations"]["runbook_url"].split("#", 1)[0]
            assert path.startswith("docs/"), rule["alert"]
            assert (ROOT / path).is_file(), f"{rule['alert']}: {path} does not exist"

    def test_every_alert_is_tested_firing_and_not_firing(self) -> None:
        """The promtool test file has a firing and a not-firing expectation for each alert."""
        firing: set[str] = set()
        quiet: set[str] = set()
        for case in load_rule_tests()["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
        names = {rule["alert"] for rule in alert_rules(load_rules())}
        assert names - firing == set()
        assert names - quiet == set()
