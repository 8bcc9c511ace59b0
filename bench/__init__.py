"""Benchmarks of omni-secrets (not tests): ``make bench`` runs ``python -m bench``.

Each module measures one target of design.md "Performance targets" and returns a result that
``__main__`` prints next to its target; every comparison is a ratio taken in the same run on the
same machine. The numbers of record live in ``docs/benchmarks.md``.

- ``cache_hit``: ``OmniSecretCache.get`` vs ``aws_secretsmanager_caching.SecretCache`` (warm, fake
  client) vs the floor (a bare dict plus a monotonic-clock check).
- ``hydration``: hydrating the whole catalog with 100 ms of injected fetch latency.
- ``single_flight``: 1,000 concurrent refresh requests.
- ``readers``: reader latency while a refresh hangs on GSM.
"""
