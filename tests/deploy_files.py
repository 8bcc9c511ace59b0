"""Reading the shipped monitoring files (``deploy/``) and naming the metrics their PromQL uses.

Shared by the dashboard/rules unit tests and the promtool integration test. The PromQL reading is
deliberately small: strings, label matchers, ranges, grouping clauses and Grafana variables are
cut out first; what remains is numbers, operators, function calls and metric names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES_FILE = ROOT / "deploy" / "prometheus" / "omni-secrets.rules.yml"
RULES_TEST_FILE = ROOT / "deploy" / "prometheus" / "omni-secrets.rules.test.yml"
#: The alerts that wait for days, on an evaluation interval of their own.
RULES_LONG_TEST_FILE = ROOT / "deploy" / "prometheus" / "omni-secrets.rules.long.test.yml"
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "omni-secrets.json"

#: Series Prometheus itself makes for every scrape target.
PROMETHEUS_BUILTINS = frozenset({"up"})

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GRAFANA_VARIABLES = re.compile(r"\$\{?\w+\}?")
_TOKENS = re.compile(
    r"(?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)"
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?"
)
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
    }
)
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,")

#: Sample-name suffix -> the family types that expose it (prometheus_client text format).
_SUFFIXES: Mapping[str, frozenset[str]] = {
    "_total": frozenset({"counter"}),
    "_created": frozenset({"counter", "histogram"}),
    "_bucket": frozenset({"histogram"}),
    "_sum": frozenset({"histogram", "summary"}),
    "_count": frozenset({"histogram", "summary"}),
}
_BARE_NAME_TYPES = frozenset({"gauge", "untyped", "unknown"})


def metric_names(expr: str) -> set[str]:
    """The metric (series) names a PromQL expression selects, e.g. ``omni_x_bucket``."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _GRAFANA_VARIABLES.sub(" ", text)
    names: set[str] = set()
    for token in _TOKENS.finditer(text):
        name = token.group("name")
        if name is None or token.group("call") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def family_of(sample_name: str, families: Mapping[str, str]) -> str | None:
    """The family a sample name belongs to, given ``{family name: type}``; None when none does.

    A counter is only selectable as ``<name>_total`` and a histogram only through ``_bucket``,
    ``_sum`` or ``_count``: a bare counter or histogram name selects nothing in Prometheus.
    """
    if families.get(sample_name) in _BARE_NAME_TYPES:
        return sample_name
    for suffix, kinds in _SUFFIXES.items():
        if sample_name.endswith(suffix):
            family = sample_name.removesuffix(suffix)
            if families.get(family) in kinds:
                return family
    return None


def load_dashboard() -> dict[str, Any]:
    model: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return model


def load_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    return rules


def load_rule_tests() -> dict[str, Any]:
    """Both promtool test files' cases, as one document (``{"tests": [...]}``)."""
    cases: list[Any] = []
    for path in (RULES_TEST_FILE, RULES_LONG_TEST_FILE):
        cases.extend(yaml.safe_load(path.read_text())["tests"])
    return {"tests": cases}


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def dashboard_exprs(model: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, PromQL)`` for every panel target of the dashboard."""
    for panel in iter_panels(model["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]


def dashboard_variable_metrics(model: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, metric)`` for every ``label_values(metric, label)`` template variable."""
    for variable in model.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        for match in _LABEL_VALUES.finditer(text):
            yield f"variable {variable['name']!r}", match.group(1)


def alert_rules(rules: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                yield rule


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced, so Prometheus can parse it."""
    for variable, value in (
        ("$__rate_interval", "5m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
        ("$instance", ".*"),
    ):
        expr = expr.replace(variable, value)
    return expr
