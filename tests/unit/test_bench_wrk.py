"""The benchmark's reading of wrk's report: units, percentiles and every kind of failure."""

from __future__ import annotations

import pytest
from bench.wrk import parse

REPORT = """Running 2s test @ http://127.0.0.1:8080/healthz
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.57ms  500.00us  12.00ms   90.00%
  Latency Distribution
     50%  850.00us
     75%    1.60ms
     90%    2.00ms
     99%    1.20s
  19000 requests in 2.00s, 2.5MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   9500.00
Transfer/sec:      1.25MB
"""


def test_a_report_is_read_in_milliseconds_with_failures_counted() -> None:
    result = parse(REPORT)
    assert result.requests == 19000
    assert result.requests_per_second == 9500.0
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (0.85, 2.0, 1200.0)
    assert (result.non_2xx, result.socket_errors, result.failures) == (5, 3, 8)


def test_a_clean_run_has_no_failures() -> None:
    clean = REPORT.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    clean = clean.replace("  Non-2xx or 3xx responses: 5\n", "")
    assert parse(clean).failures == 0


def test_a_truncated_report_is_refused() -> None:
    with pytest.raises(ValueError, match="unexpected wrk output"):
        parse(REPORT.replace("     99%    1.20s\n", ""))
