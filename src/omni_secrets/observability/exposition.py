"""Prometheus text exposition, byte for byte ``prometheus_client.generate_latest``, faster.

``generate_latest`` re-validates and re-escapes every label name and value of every sample on
every scrape; with the ~550 pre-created series of a catalog that was most of a scrape's
several milliseconds (profile in ``docs/benchmarks.md``). Our label sets are bounded (catalog
types, reasons, codes), so :class:`TextExposition` renders each series' ``name{labels}`` prefix
once and reuses it; only the values are formatted per scrape. A family whose name or label names
need the UTF-8 escaping rules is rendered by the library instead, so the output never differs.
"""

from __future__ import annotations

import re

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_CACHED_SERIES = 20_000
_LEGACY_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")
_TYPE_NAMES = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}


class _NeedsLibrary(Exception):
    """A name outside the legacy character set: let prometheus_client escape it."""


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(name: str, documentation: str) -> str:
    escaped = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {escaped}\n"


class TextExposition:
    """Renders a registry in the Prometheus text format (version 0.0.4), caching series prefixes.

    Not thread-safe: one instance per event loop (the app's probe path owns one).
    """

    def __init__(self) -> None:
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def render(self, registry: CollectorRegistry) -> bytes:
        try:
            return self._render(registry)
        except _NeedsLibrary:
            return generate_latest(registry)

    def _render(self, registry: CollectorRegistry) -> bytes:
        if len(self._prefixes) > MAX_CACHED_SERIES:  # bounded even if a label set is not
            self._prefixes.clear()
        output: list[str] = []
        for metric in registry.collect():
            name = metric.name
            if not _LEGACY_NAME.match(name):
                raise _NeedsLibrary
            mtype = metric.type
            exposed = name
            if mtype == "counter":
                exposed = name + "_total"
            elif mtype == "info":
                exposed = name + "_info"
            output.append(_help(exposed, metric.documentation))
            output.append(f"# TYPE {exposed} {_TYPE_NAMES.get(mtype, mtype)}\n")
            extra: dict[str, list[str]] = {}
            for sample in metric.samples:
                line = self._line(sample)
                for suffix in _OPENMETRICS_SUFFIXES:
                    if sample.name == name + suffix:
                        extra.setdefault(suffix, []).append(line)
                        break
                else:
                    output.append(line)
            for suffix, lines in sorted(extra.items()):
                output.append(_help(name + suffix, metric.documentation))
                output.append(f"# TYPE {name + suffix} gauge\n")
                output.extend(lines)
        return "".join(output).encode("utf-8")

    def _line(self, sample: Sample) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = self._prefixes[key] = _prefix(sample)
        timestamp = ""
        if sample.timestamp is not None:
            timestamp = f" {int(float(sample.timestamp) * 1000):d}"
        value: str = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
        return f"{prefix} {value}{timestamp}\n"


def _prefix(sample: Sample) -> str:
    if not _LEGACY_NAME.match(sample.name):
        raise _NeedsLibrary
    if not sample.labels:
        return sample.name
    parts = []
    for label, value in sorted(sample.labels.items()):
        if not _LEGACY_LABEL.match(label):
            raise _NeedsLibrary
        parts.append(f'{label}="{_escape_value(value)}"')
    return f"{sample.name}{{{','.join(parts)}}}"
